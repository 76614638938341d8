"""`torchrun` for Debian 12: torch 1.13's launcher on Python 3.11.

    /usr/bin/python3 -m ctsr.torchrun --standalone --nproc_per_node 2 train.py ...   (from training/)

Same options as torchrun (torch.distributed.run). Debian 12's /usr/bin/torchrun fails at start
on Python 3.11 with "AttributeError: 'NoneType' object has no attribute 'get'": its
Std.from_str finds the value of --redirects / --tee by iterating over the IntFlag Std, and
Python 3.11 no longer yields the zero member (NONE) or multi-bit ones (ALL) when iterating a
flag, so "0" (the default) parses to None. Here the value is looked up by value instead
(Std(int(v))), which is what torch 2.x does; everything else is torchrun's.
"""
import re
import sys

from torch.distributed.elastic.multiprocessing import api


def _from_str(cls, vm):
    if re.match(api._VALUE_REGEX, vm):
        return cls(int(vm))
    if re.match(api._MAPPING_REGEX, vm):
        return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    raise ValueError(f"{vm} does not match: <{api._VALUE_REGEX}> or <{api._MAPPING_REGEX}>")


api.Std.from_str = classmethod(_from_str)


def main():
    from torch.distributed.run import main as run_main
    run_main()


if __name__ == "__main__":
    sys.exit(main())
