#!/usr/bin/env python3
"""Regenerates the small GGUF files in testdata/ and their gguf-py goldens in testdata/expected/.

Needs the peers (../shared/peers/setup.sh): gguf-py 0.19.0 and numpy, and on PATH (source
~/.cache/pocket-peers/env.sh) llama-quantize and llama-gguf-split. Deterministic: fixed seeds.

    source ~/.cache/pocket-peers/env.sh && python3 testdata/make.py

What each file is, and how it was made, is in testdata/README.md.
"""
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import gguf
from gguf import GGUFWriter, GGUFEndian, GGMLQuantizationType as Q

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import importlib.util  # noqa: E402

spec = importlib.util.spec_from_file_location("golden", os.path.join(ROOT, "scripts", "gguf-py-golden.py"))
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)


def out(name):
    return os.path.join(HERE, name)


def write(w: GGUFWriter):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------------
# Every value type, arrays of every type, arrays of strings and of arrays, and tensors of many types.

def add_all_values(w: GGUFWriter):
    V = gguf.GGUFValueType
    w.add_uint8("t.u8", 250)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -2_000_000_000)
    w.add_float32("t.f32", 3.1415927)
    w.add_bool("t.bool_true", True)
    w.add_bool("t.bool_false", False)
    w.add_string("t.string", "héllo, wörld — ✓ 🦙")
    w.add_string("t.empty_string", "")
    w.add_string("t.multiline", "line one\nline two\ttabbed {{ jinja }}")
    w.add_uint64("t.u64", 18_000_000_000_000_000_000)
    w.add_int64("t.i64", -9_000_000_000_000_000_000)
    w.add_float64("t.f64", 2.718281828459045)
    w.add_float32("t.f32_neg_zero", -0.0)
    w.add_float32("t.f32_tiny", 1e-40)  # subnormal
    # Arrays of each scalar type.
    for key, vals, sub in [
        ("a.u8", [0, 1, 255], V.UINT8),
        ("a.i8", [-128, 0, 127], V.INT8),
        ("a.u16", [0, 65535], V.UINT16),
        ("a.i16", [-32768, 32767], V.INT16),
        ("a.u32", [0, 4294967295], V.UINT32),
        ("a.i32", [-1, 2147483647], V.INT32),
        ("a.f32", [0.5, -1.25, 1e30], V.FLOAT32),
        ("a.bool", [True, False, True], V.BOOL),
        ("a.u64", [0, 2**64 - 1], V.UINT64),
        ("a.i64", [-(2**63), 2**63 - 1], V.INT64),
        ("a.f64", [1e-300, -2.5], V.FLOAT64),
    ]:
        w.add_key_value(key, vals, V.ARRAY, sub_type=sub)
    w.add_array("a.strings", ["<pad>", "", "ünïcødé", "a b c", "\n"])
    # (gguf-py cannot write an empty array; tests/values.rs builds one by hand.)
    w.add_array("a.nested", [[1, 2, 3], [4], [5, 6]])
    w.add_array("a.nested_strings", [["x", "yy"], ["zzz"]])
    w.add_array("a.nested3", [[[1, 2], [3]], [[4]]])
    # Long arrays: compared through a sha256 in the goldens.
    rng = np.random.default_rng(7)
    w.add_key_value("a.long_i32", [int(x) for x in rng.integers(-(2**31), 2**31 - 1, 1000)], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("a.long_f32", [float(x) for x in rng.standard_normal(500).astype(np.float32)], V.ARRAY, sub_type=V.FLOAT32)
    w.add_array("a.long_strings", [f"tok{i}" + "é" * (i % 3) for i in range(300)])


def add_typed_tensors(w: GGUFWriter):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((4, 256)).astype(np.float32)
    w.add_tensor("f32", x)
    w.add_tensor("f16", x.astype(np.float16))
    w.add_tensor("f64", x[:1].astype(np.float64))
    w.add_tensor("i8", rng.integers(-128, 127, (3, 5), dtype=np.int8))
    w.add_tensor("i16", rng.integers(-30000, 30000, (7,), dtype=np.int16))
    w.add_tensor("i32", rng.integers(-(2**31), 2**31 - 1, (2, 3), dtype=np.int32))
    w.add_tensor("i64", rng.integers(-(2**62), 2**62, (5,), dtype=np.int64))
    w.add_tensor("vec3d", rng.standard_normal((2, 3, 32)).astype(np.float32))
    w.add_tensor("vec4d", rng.standard_normal((2, 1, 3, 32)).astype(np.float32))
    made = []
    for qt in [Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K,
               Q.IQ4_NL, Q.IQ4_XS, Q.TQ1_0, Q.TQ2_0, Q.MXFP4]:
        try:
            data = gguf.quants.quantize(x, qt)
        except NotImplementedError:
            continue
        w.add_tensor(qt.name.lower(), data, raw_dtype=qt)
        made.append(qt.name)
    return made


def values_file(name, endian, version=3, alignment=None):
    path = out(name)
    w = GGUFWriter(path, "testarch", endianess=endian)
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_name(f"pocket test file {name}")
    add_all_values(w)
    made = add_typed_tensors(w)
    write(w)
    if version != 3:
        with open(path, "r+b") as f:
            f.seek(4)
            f.write(struct.pack("<I" if endian == GGUFEndian.LITTLE else ">I", version))
    return made


def metadata_only(name):
    w = GGUFWriter(out(name), "llama")
    w.add_name("metadata only, no tensors")
    w.add_context_length(2048)
    write(w)


# ---------------------------------------------------------------------------------------------------
# A tiny llama: real structure (GQA, SentencePiece-style vocab) with random weights, quantized and
# split with llama.cpp's own tools.

N_EMBD, N_FF, N_LAYER, N_HEAD, N_HEAD_KV, N_VOCAB = 256, 512, 2, 4, 2, 288


def tiny_vocab():
    toks, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        toks.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(6)
    words = ["▁the", "▁a", "▁of", "▁to", "▁and", "▁in", "▁is", "▁it", "▁that", "▁on", "▁was", "▁for", "▁llama",
             "▁phone", "▁model", "er", "in", "on", "an", "re", "at", "en", "▁t", "▁s", "▁c", "▁w", "▁p", "▁m", "▁b"]
    for i, wd in enumerate(words[: N_VOCAB - len(toks)]):
        toks.append(wd)
        scores.append(-float(i + 1))
        types.append(1)
    return toks, scores, types


def tiny_llama(path):
    rng = np.random.default_rng(1234)
    w = GGUFWriter(path, "llama")
    w.add_name("tiny-llama")
    w.add_context_length(256)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(N_VOCAB)
    w.add_file_type(1)  # MOSTLY_F16
    toks, scores, types = tiny_vocab()
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")

    def mat(rows, cols, scale=0.05):
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float16)

    hd = N_EMBD // N_HEAD
    w.add_tensor("token_embd.weight", mat(N_VOCAB, N_EMBD, 1.0))
    for il in range(N_LAYER):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", (1 + 0.1 * rng.standard_normal(N_EMBD)).astype(np.float32))
        w.add_tensor(p + "attn_q.weight", mat(N_EMBD, N_EMBD))
        w.add_tensor(p + "attn_k.weight", mat(N_HEAD_KV * hd, N_EMBD))
        w.add_tensor(p + "attn_v.weight", mat(N_HEAD_KV * hd, N_EMBD))
        w.add_tensor(p + "attn_output.weight", mat(N_EMBD, N_EMBD))
        w.add_tensor(p + "ffn_norm.weight", (1 + 0.1 * rng.standard_normal(N_EMBD)).astype(np.float32))
        w.add_tensor(p + "ffn_gate.weight", mat(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_up.weight", mat(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_down.weight", mat(N_EMBD, N_FF))
    w.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(N_EMBD)).astype(np.float32))
    w.add_tensor("output.weight", mat(N_VOCAB, N_EMBD))
    write(w)


def run(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}")


def main():
    for tool in ["llama-quantize", "llama-gguf-split"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} not on PATH: source ~/.cache/pocket-peers/env.sh")
    os.makedirs(out("expected"), exist_ok=True)
    for f in os.listdir(HERE):
        if f.endswith(".gguf"):
            os.remove(out(f))
    for f in os.listdir(out("expected")):
        if not f.startswith("gemma-3-270m"):
            os.remove(os.path.join(out("expected"), f))

    made = values_file("values-le-v3.gguf", GGUFEndian.LITTLE)
    values_file("values-be-v3.gguf", GGUFEndian.BIG)
    values_file("values-le-v2.gguf", GGUFEndian.LITTLE, version=2)
    values_file("values-be-v2.gguf", GGUFEndian.BIG, version=2)
    values_file("values-align64.gguf", GGUFEndian.LITTLE, alignment=64)
    metadata_only("metadata-only.gguf")

    tiny_llama(out("tiny-llama-f16.gguf"))
    run("llama-quantize", out("tiny-llama-f16.gguf"), out("tiny-llama-q8_0.gguf"), "Q8_0")
    run("llama-quantize", out("tiny-llama-f16.gguf"), out("tiny-llama-q4_k_m.gguf"), "Q4_K_M")
    run("llama-gguf-split", "--split", "--split-max-tensors", "8", out("tiny-llama-q8_0.gguf"), out("tiny-llama-split"))

    for f in sorted(os.listdir(HERE)):
        if f.endswith(".gguf"):
            golden.write_golden(out(f), os.path.join(out("expected"), f[:-5] + ".json"))
    print("quantized tensor types made by gguf-py:", ", ".join(made))
    print("wrote", ", ".join(sorted(f for f in os.listdir(HERE) if f.endswith(".gguf"))))


if __name__ == "__main__":
    main()
