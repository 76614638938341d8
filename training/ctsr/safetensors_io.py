"""Minimal safetensors writer/reader (no dependency on the safetensors package).

Layout: u64 little-endian header length N, then N bytes of JSON header (padded with
spaces to a multiple of 8), then the raw little-endian tensor data. The header maps each
tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
start of the data section) and holds "__metadata__": {str: str}. Tensors are laid out
contiguously in sorted-name order.
"""
import json
import struct

import numpy as np
import torch

_NP_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2")}


def save(path, tensors, metadata=None, dtype="F32"):
    """Write dict name -> tensor as `dtype` ("F32" or "F16") with string metadata."""
    if dtype not in _NP_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_NP_DTYPES)}")
    npd = _NP_DTYPES[dtype]
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        a = t.detach().cpu().float().contiguous().numpy() if torch.is_tensor(t) else np.asarray(t, np.float32)
        b = np.ascontiguousarray(a.astype(npd)).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    if meta:
        header["__metadata__"] = meta
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def load(path):
    """Read a safetensors file -> (dict name -> float32 tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("file too short")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("header length exceeds file size")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _NP_DTYPES:
            raise ValueError(f"{name}: unsupported dtype {dt}")
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= b <= e <= len(body) or e - b != count * _NP_DTYPES[dt].itemsize:
            raise ValueError(f"{name}: bad data_offsets")
        a = np.frombuffer(body[b:e], dtype=_NP_DTYPES[dt]).astype(np.float32).reshape(shape)
        out[name] = torch.from_numpy(a.copy())
    return out, dict(meta)
