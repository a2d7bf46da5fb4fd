#!/usr/bin/env python3
"""Writes gguf-py's reading of a GGUF file as the JSON golden that tests/inspect_vs_gguf_py.rs compares
`pocket inspect --json` with. Uses gguf-py 0.19.0's GGUFReader only (no pocket code).

    python3 scripts/gguf-py-golden.py MODEL.gguf OUT.json

Schema (see testdata/README.md): version, endianness, alignment, tensor_data_offset, file_size,
kv_order, metadata {key: value object}, tensors [{name, type, type_id, shape, offset, n_bytes}].
A value object is {"type": T, "value": v} for scalars and strings, and for arrays
{"type": "ARRAY", "elem_type": E, "len": n} plus either "value" (a list: scalars, or value objects
for nested arrays) when n <= 64, or "sha256" of the canonical encoding of the elements when longer:
integers little-endian at their width, floats as their IEEE bits little-endian, bools one byte,
strings a u64 little-endian byte length then the UTF-8 bytes.

gguf-py flattens nested arrays in ReaderField.contents(), so the values are rebuilt here by walking
the field's parts (type, count, elements) in the order the reader produced them.
"""
import hashlib
import json
import os
import struct
import sys

import gguf
from gguf import GGUFReader, GGUFValueType as V

INLINE_MAX = 64
WIDTH = {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
         V.UINT64: "<Q", V.INT64: "<q", V.FLOAT32: "<f", V.FLOAT64: "<d", V.BOOL: "<?"}


def scalar(part, ty):
    v = part.tolist()[0]
    if ty == V.BOOL:
        return bool(v)
    if ty in (V.FLOAT32, V.FLOAT64):
        return float(v)
    return int(v)


def walk(parts, i, ty):
    """Decodes one value of type `ty` starting at parts[i]; returns (value object, next index)."""
    if ty == V.STRING:
        return {"type": "STRING", "value": bytes(parts[i + 1]).decode("utf-8")}, i + 2
    if ty != V.ARRAY:
        return {"type": ty.name, "value": scalar(parts[i], ty)}, i + 1
    et = V(int(parts[i][0]))
    n = int(parts[i + 1][0])
    i += 2
    elems = []
    for _ in range(n):
        obj, i = walk(parts, i, et)
        elems.append(obj)
    out = {"type": "ARRAY", "elem_type": et.name, "len": n}
    if n <= INLINE_MAX:
        out["value"] = elems if et == V.ARRAY else [e["value"] for e in elems]
    else:
        if et == V.ARRAY:
            raise SystemExit("nested arrays longer than 64 elements are not supported by the golden format")
        h = hashlib.sha256()
        for e in elems:
            if et == V.STRING:
                b = e["value"].encode("utf-8")
                h.update(struct.pack("<Q", len(b)) + b)
            else:
                h.update(struct.pack(WIDTH[et], e["value"]))
        out["sha256"] = h.hexdigest()
    return out, i


def golden(path):
    r = GGUFReader(path, "r")
    doc = {
        "source": f"gguf-py {getattr(gguf, '__version__', '0.19.0')} GGUFReader",
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "endianness": "big" if r.endianess == gguf.GGUFEndian.BIG else "little",
        "alignment": int(r.alignment),
        "tensor_data_offset": int(r.data_offset),
        "file_size": os.path.getsize(path),
        "kv_order": [],
        "metadata": {},
        "tensors": [],
    }
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        ty = V(int(field.parts[2][0]))
        obj, end = walk(field.parts, 3, ty)
        assert end == len(field.parts), f"{name}: {end} of {len(field.parts)} parts used"
        doc["kv_order"].append(name)
        doc["metadata"][name] = obj
    for t in r.tensors:
        doc["tensors"].append({
            "name": t.name,
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "shape": [int(d) for d in t.shape],
            "offset": int(t.data_offset) - int(r.data_offset),
            "n_bytes": int(t.n_bytes),
        })
    return doc


def write_golden(path, out):
    doc = golden(path)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    write_golden(sys.argv[1], sys.argv[2])
