#!/usr/bin/env python3
"""Checks that gguf-py reads pocket's big-endian output: for every little-endian testdata file,
`pocket convert FILE BE --endian big`, then gguf-py's GGUFReader on both files must agree on every
key (type and value), every tensor (name, type, shape, offset) and, for plain numeric tensor types,
every value (gguf-py reads them in the file's byte order). Block-format data is raw bytes to gguf-py;
its scales are compared by tests/convert_endian.rs against gguf-convert-endian's output instead.

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/check-endian-gguf-py.py
"""
import os, subprocess, sys, tempfile

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as Q

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAIN = {Q.F32, Q.F16, Q.F64, Q.I8, Q.I16, Q.I32, Q.I64}


def main():
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    pocket = os.path.join(ROOT, "target", "release", "pocket")
    files = sorted(f for f in os.listdir(os.path.join(ROOT, "testdata")) if f.endswith(".gguf") and "-be-" not in f)
    bad = 0
    for name in files:
        src = os.path.join(ROOT, "testdata", name)
        with tempfile.TemporaryDirectory() as d:
            be = os.path.join(d, "be.gguf")
            subprocess.run([pocket, "convert", src, be, "--endian", "big"], check=True, stdout=subprocess.DEVNULL)
            a, b = GGUFReader(src), GGUFReader(be)
            assert b.endianess.name == "BIG", name
            problems = []
            if list(a.fields) != list(b.fields):
                problems.append("key order")
            for k, fa in a.fields.items():
                fb = b.fields[k]
                if fa.types != fb.types or fa.contents() != fb.contents():
                    problems.append(f"key {k}")
            for ta, tb in zip(a.tensors, b.tensors, strict=True):
                if (ta.name, ta.tensor_type, list(ta.shape), ta.data_offset) != (tb.name, tb.tensor_type, list(tb.shape), tb.data_offset):
                    problems.append(f"tensor {ta.name} info")
                elif ta.tensor_type in PLAIN and not np.array_equal(np.asarray(ta.data), np.asarray(tb.data), equal_nan=True):
                    problems.append(f"tensor {ta.name} values")
            n_plain = sum(t.tensor_type in PLAIN for t in a.tensors)
            status = "ok" if not problems else "DIFFERS: " + ", ".join(problems[:5])
            bad += bool(problems)
            print(f"{name}: gguf-py reads pocket's big-endian output: {len(a.fields)} keys, {len(a.tensors)} tensors "
                  f"({n_plain} plain compared by value): {status}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
