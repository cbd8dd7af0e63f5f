"""safetensors conformance, Python side (run by test-safetensors-python).

  st_conformance.py DIR

Checks that DIR/ours.safetensors, written by Fathom, loads in the `safetensors` package with the
dtypes, shapes, bytes and metadata listed in DIR/ours.json; then writes DIR/theirs.safetensors
with safetensors.numpy.save_file and DIR/theirs.json listing what Fathom must read back.
Exit 0 when everything matches, 1 with the differences on stderr otherwise."""
import json
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def main(d):
    expected = json.load(open(os.path.join(d, "ours.json")))
    problems = []
    with safe_open(os.path.join(d, "ours.safetensors"), framework="numpy") as f:
        if sorted(f.keys()) != sorted(expected["tensors"]):
            problems.append(f"keys {sorted(f.keys())} != {sorted(expected['tensors'])}")
        if (f.metadata() or {}) != expected["metadata"]:
            problems.append(f"metadata {f.metadata()} != {expected['metadata']}")
        for name, want in expected["tensors"].items():
            if want["dtype"] == "BF16":
                continue  # numpy has no bfloat16; its bytes are checked through the raw header below
            a = f.get_tensor(name)
            if a.dtype != DTYPES[want["dtype"]]:
                problems.append(f"{name}: dtype {a.dtype} != {want['dtype']}")
            if list(a.shape) != want["shape"]:
                problems.append(f"{name}: shape {list(a.shape)} != {want['shape']}")
            if a.tobytes().hex() != want["hex"]:
                problems.append(f"{name}: values differ")
    # The header as the reference reader sees it, for the dtype numpy cannot hold.
    raw = open(os.path.join(d, "ours.safetensors"), "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    for name, want in expected["tensors"].items():
        h = header[name]
        b, e = h["data_offsets"]
        if h["dtype"] != want["dtype"] or h["shape"] != want["shape"] or \
                raw[8 + n + b:8 + n + e].hex() != want["hex"]:
            problems.append(f"{name}: header or bytes differ: {h}")

    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    theirs = {
        "weight": rng.standard_normal((3, 5)).astype(np.float32),
        "double": rng.standard_normal(4),
        "half": rng.standard_normal(6).astype(np.float16),
        "ids": rng.integers(-2**40, 2**40, size=(2, 3)),
        "bytes": rng.integers(0, 256, size=9).astype(np.uint8),
        "empty": np.zeros((0, 4), np.float32),
    }
    meta = {"format": "np", "producer": "st_conformance.py"}
    save_file(theirs, os.path.join(d, "theirs.safetensors"), metadata=meta)
    names = {np.float32: "F32", np.float64: "F64", np.float16: "F16", np.int64: "I64",
             np.uint8: "U8"}
    json.dump({"metadata": meta,
               "tensors": {k: {"dtype": names[v.dtype.type], "shape": list(v.shape),
                               "hex": v.tobytes().hex()} for k, v in theirs.items()}},
              open(os.path.join(d, "theirs.json"), "w"))
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
