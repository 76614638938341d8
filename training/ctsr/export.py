"""Export a Student to a ctsr-student safetensors file, and load one back.

CLI (run from training/):
    python3 -m ctsr.export --config default --random-seed 0 --out x.safetensors [--dtype F16]
"""
import argparse
import json

import torch

from . import safetensors_io
from .student import CONFIGS, FORMAT_VERSION, Student, config_json

FORMAT_NAME = "ctsr-student"


def export(model, path, dtype="F32", provenance=None):
    meta = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": config_json(model.cfg),
        "provenance": json.dumps(provenance or {}, sort_keys=True),
    }
    sd = {k: v.detach().cpu().float() for k, v in model.state_dict().items()}
    safetensors_io.save(path, sd, meta, dtype=dtype)


def load_student(path):
    tensors, meta = safetensors_io.load(path)
    if meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: not a {FORMAT_NAME} file")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise ValueError(f"{path}: unsupported format_version {meta.get('format_version')}")
    model = Student(json.loads(meta["config"]))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model


def main(argv=None):
    torch.set_num_threads(2)
    ap = argparse.ArgumentParser(description="export a random-weight CTSR student")
    ap.add_argument("--config", default="default", choices=sorted(CONFIGS))
    ap.add_argument("--random-seed", type=int, default=0)
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16"])
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.manual_seed(a.random_seed)
    model = Student(CONFIGS[a.config])
    export(model, a.out, a.dtype, {"name": f"random-{a.config}", "random_seed": a.random_seed})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
