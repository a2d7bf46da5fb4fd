#!/usr/bin/env python3
"""Golden dot products of llama.cpp's CPU kernels for Q2_K, Q3_K, TQ2_0 and Q1_0 (issue 20), for
src/exec/x86_k_low.rs's tests: weight rows quantized by ggml_quantize_chunk, activation rows by the
type's vec_dot_type `from_float` (Q8_K, Q8_0), and `vec_dot` of each pair as libggml-cpu.so computes
it on this machine (the AVX2 kernels of ggml-cpu/arch/x86/quants.c on an x86 CPU with AVX2), through
ctypes. The tests hold pocket's x86 kernels to these bits.

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/make-k-low-dot-golden.py
Writes testdata/exec/k_low_dots.bin: records of
  u32 type id, u32 values per row, u32 weight bytes, u32 activation bytes, f32 dot (bits),
  then the weight row and the activation row.
"""
import ctypes
import os
import struct
import sys

import numpy as np

LIB = os.path.join(os.environ["LLAMA"], "build", "bin")
base = ctypes.CDLL(os.path.join(LIB, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
cpu = ctypes.CDLL(os.path.join(LIB, "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)


class Traits(ctypes.Structure):
    _fields_ = [
        ("from_float", ctypes.c_void_p),
        ("vec_dot", ctypes.c_void_p),
        ("vec_dot_type", ctypes.c_int),
        ("nrows", ctypes.c_int64),
    ]


FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
VEC_DOT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                           ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                           ctypes.c_int)
cpu.ggml_get_type_traits_cpu.restype = ctypes.POINTER(Traits)
cpu.ggml_cpu_init.restype = None
cpu.ggml_cpu_has_avx2.restype = ctypes.c_int
base.ggml_quantize_chunk.restype = ctypes.c_size_t
base.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
base.ggml_row_size.restype = ctypes.c_size_t
base.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]

cpu.ggml_cpu_init()
if not cpu.ggml_cpu_has_avx2():
    sys.exit("make-k-low-dot-golden: this CPU has no AVX2; the goldens are ggml's AVX2 kernels' bits")

TYPES = {"q2_K": 10, "q3_K": 11, "tq2_0": 35, "q1_0": 41}
rng = np.random.default_rng(20)
out = bytearray()
count = 0
for name, ty in TYPES.items():
    tr = cpu.ggml_get_type_traits_cpu(ty).contents
    vd = cpu.ggml_get_type_traits_cpu(tr.vec_dot_type).contents
    from_float = FROM_FLOAT(vd.from_float)
    vec_dot = VEC_DOT(tr.vec_dot)
    for n in (256, 1024):
        for trial in range(3):
            w = rng.standard_normal(n).astype(np.float32)
            if name == "tq2_0":
                # Ternary weights, as TQ2_0 models hold them.
                w = (np.sign(w) * (np.abs(w) > 0.5)).astype(np.float32)
            x = (rng.standard_normal(n) * (1 + trial)).astype(np.float32)
            wq = ctypes.create_string_buffer(base.ggml_row_size(ty, n))
            base.ggml_quantize_chunk(ty, w.ctypes.data, wq, 0, 1, n, None)
            xq = ctypes.create_string_buffer(base.ggml_row_size(tr.vec_dot_type, n))
            from_float(x.ctypes.data, ctypes.addressof(xq), n)
            s = ctypes.c_float()
            vec_dot(n, ctypes.byref(s), 0, ctypes.addressof(wq), 0, ctypes.addressof(xq), 0, 1)
            out += struct.pack("<IIIIf", ty, n, len(wq.raw), len(xq.raw), s.value)
            out += wq.raw + xq.raw
            count += 1
path = os.path.join(os.path.dirname(__file__), "..", "testdata", "exec", "k_low_dots.bin")
with open(path + ".tmp", "wb") as f:
    f.write(out)
    f.flush()
    os.fsync(f.fileno())
os.replace(path + ".tmp", path)
print(f"make-k-low-dot-golden: {count} dots, {len(out)} bytes -> {os.path.normpath(path)}")
