#!/usr/bin/env python3
"""Writes testdata/damaged/: GGUF files each damaged in one way, made from the good testdata files,
and testdata/damaged/expected.json naming the check of `pocket verify` that must fail on each (and a
phrase its message must contain). Deterministic. Needs gguf-py 0.19.0 and llama-gguf-split (the
peers: source ~/.cache/pocket-peers/env.sh).

    python3 scripts/make-damaged.py
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TD = os.path.join(ROOT, "testdata")
OUT = os.path.join(TD, "damaged")
Q4KM = os.path.join(TD, "tiny-llama-q4_k_m.gguf")
VALUES = os.path.join(TD, "values-le-v3.gguf")

expected = {}


def cut(src, dst, n, phrase):
    data = open(src, "rb").read()[:n]
    open(os.path.join(OUT, dst), "wb").write(data)
    expected[dst] = {"check": "truncation", "contains": phrase}


def patch(src, dst, offset, raw, check, phrase):
    data = bytearray(open(src, "rb").read())
    data[offset:offset + len(raw)] = raw
    open(os.path.join(OUT, dst), "wb").write(bytes(data))
    expected[dst] = {"check": check, "contains": phrase}


def rewrite(src, dst, drop=(), reshape=None, kv_edit=None):
    """Copies src through gguf-py's writer (as gguf_new_metadata.py does), leaving out tensors in
    `drop`, giving tensors in `reshape` a new numpy byte shape, and editing metadata with kv_edit."""
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(os.path.join(OUT, dst), arch)
    for f in r.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF."):
            continue
        vt = f.types[0]
        sub = f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        val = f.contents()
        if kv_edit and f.name in kv_edit:
            val = kv_edit[f.name](val)
        w.add_key_value(f.name, val, vt, sub_type=sub)
    keep = [t for t in r.tensors if t.name not in drop]
    for t in keep:
        data = t.data
        if reshape and t.name in reshape:
            data = data.reshape(reshape[t.name])
        w.add_tensor_info(t.name, data.shape, data.dtype, data.nbytes, t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for t in keep:
        data = t.data
        if reshape and t.name in reshape:
            data = data.reshape(reshape[t.name])
        w.write_tensor_data(data)
    w.close()


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)

    r = gguf.GGUFReader(Q4KM)
    size = os.path.getsize(Q4KM)
    first = min(t.data_offset for t in r.tensors)
    last = max(r.tensors, key=lambda t: t.data_offset)
    last_end = last.data_offset + last.n_bytes
    tinfo0 = r.tensors[0].field.offset

    # Truncated: inside the metadata, inside the tensor infos, half-way through the data, one byte
    # short of the last tensor's end.
    cut(Q4KM, "trunc-in-metadata.gguf", 1000, "inside its header")
    cut(Q4KM, "trunc-in-tensor-infos.gguf", tinfo0 + 40, "inside its header")
    cut(Q4KM, "trunc-in-data.gguf", first + (last_end - first) // 2, "bytes missing")
    cut(Q4KM, "trunc-last-byte.gguf", last_end - 1, "1 bytes missing")

    # A NaN in the d (f16 at byte 0 of each 144-byte block) of block 3 of the first Q4_K tensor.
    q4k = next(t for t in r.tensors if t.tensor_type == gguf.GGMLQuantizationType.Q4_K)
    patch(Q4KM, "nan-in-q4_k-d.gguf", q4k.data_offset + 3 * 144, struct.pack("<H", 0x7E00),
          "numbers", f"'{q4k.name}' (q4_K): 1 NaN")

    # An Inf in element 5 of the F16 tensor of the values file.
    rv = gguf.GGUFReader(VALUES)
    f16 = next(t for t in rv.tensors if t.tensor_type == gguf.GGMLQuantizationType.F16)
    patch(VALUES, "inf-in-f16.gguf", f16.data_offset + 5 * 2, struct.pack("<H", 0x7C00),
          "numbers", f"'{f16.name}' (f16): 0 NaN and 1 Inf")

    # A layer tensor missing.
    rewrite(Q4KM, "missing-layer-tensor.gguf", drop={"blk.1.ffn_up.weight"})
    expected["missing-layer-tensor.gguf"] = {"check": "completeness", "contains": "blk.1.ffn_up.weight"}

    # A wrong shape: blk.0.ffn_gate.weight [256, 512] stored as [512, 256] (same bytes).
    gate = next(t for t in r.tensors if t.name == "blk.0.ffn_gate.weight")
    assert list(gate.shape) == [256, 512], gate.shape
    rewrite(Q4KM, "wrong-shape.gguf", reshape={"blk.0.ffn_gate.weight": (256, 2 * 144)})
    expected["wrong-shape.gguf"] = {"check": "completeness", "contains": "'blk.0.ffn_gate.weight' has shape [512, 256]"}

    # The vocabulary 8 tokens shorter than token_embd's rows.
    rewrite(Q4KM, "vocab-mismatch.gguf", kv_edit={
        "tokenizer.ggml.tokens": lambda v: v[:-8],
        "tokenizer.ggml.scores": lambda v: v[:-8],
        "tokenizer.ggml.token_type": lambda v: v[:-8],
    })
    expected["vocab-mismatch.gguf"] = {"check": "tokenizer", "contains": "280 tokens but token_embd.weight has 288 rows"}

    # Split sets: the Q4_K_M model in 3 shards (8 tensors each), then one shard missing, and one
    # doubled (shard 2 copied over shard 3's name).
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["llama-gguf-split", "--split", "--split-max-tensors", "8", Q4KM,
                        os.path.join(tmp, "s")], check=True, stdout=subprocess.DEVNULL)
        names = sorted(n for n in os.listdir(tmp) if n.endswith(".gguf"))
        assert len(names) == 3, names
        for d in ("missing-shard", "doubled-shard"):
            os.makedirs(os.path.join(OUT, d))
        shutil.copy(os.path.join(tmp, names[0]), os.path.join(OUT, "missing-shard", names[0]))
        shutil.copy(os.path.join(tmp, names[2]), os.path.join(OUT, "missing-shard", names[2]))
        shutil.copy(os.path.join(tmp, names[0]), os.path.join(OUT, "doubled-shard", names[0]))
        shutil.copy(os.path.join(tmp, names[1]), os.path.join(OUT, "doubled-shard", names[1]))
        shutil.copy(os.path.join(tmp, names[1]), os.path.join(OUT, "doubled-shard", names[2]))
        expected["missing-shard/" + names[0]] = {"check": "split", "contains": "shard 2 of 3 is missing"}
        expected["doubled-shard/" + names[0]] = {"check": "split", "contains": "shard 2 appears twice"}

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(expected)} damaged models to {OUT}")


if __name__ == "__main__":
    sys.exit(main())
