#!/usr/bin/env python3
"""Writes testdata/headers/llama-3-8b-q4_k_m.header.gguf (in a folder of its own: it is not a whole GGUF file): the header alone (no tensor data) of a llama-3-8B
Q4_K_M file, with gguf-py 0.19.0. Real hyper-parameters (Meta-Llama-3-8B config.json: 32 layers,
n_embd 4096, 32 heads, 8 KV heads, n_ff 14336, vocab 128256, rope theta 500000) and tensor infos with
the types llama-quantize's Q4_K_M mix gives (llama-quant.cpp: Q4_K everywhere, Q6_K for output,
and for attn_v / ffn_down on the layers `use_more_bits` picks; norms F32). The vocabulary arrays are
left out to keep the file small (llama.vocab_size says 128256), so its tokenizer check warns.
For `pocket verify --header-only --device ...`.

    python3 scripts/make-llama3-8b-header.py
"""
import os

import numpy as np
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "headers", "llama-3-8b-q4_k_m.header.gguf")

N_LAYER, N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_VOCAB = 32, 4096, 32, 8, 14336, 128256
HEAD = N_EMBD // N_HEAD
Q4_K, Q6_K, F32 = gguf.GGMLQuantizationType.Q4_K, gguf.GGMLQuantizationType.Q6_K, gguf.GGMLQuantizationType.F32


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def nbytes(shape, t):
    block, size = gguf.GGML_QUANT_SIZES[t]
    n = int(np.prod(shape))
    return n // block * size


def main():
    w = gguf.GGUFWriter(OUT, "llama")
    w.add_name("Meta Llama 3 8B Instruct (header only)")
    w.add_block_count(N_LAYER)
    w.add_context_length(8192)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(HEAD)
    w.add_vocab_size(N_VOCAB)
    w.add_file_type(15)  # MOSTLY_Q4_K_M
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_bos_token_id(128000)
    w.add_eos_token_id(128009)

    def t(name, shape_ggml, ty):
        # gguf-py takes numpy order (reversed); for quantized types, the byte shape.
        shape = list(reversed(shape_ggml))
        nb = nbytes(shape_ggml, ty)
        if ty == F32:
            w.add_tensor_info(name, shape, np.dtype(np.float32), nb, ty)
        else:
            block, size = gguf.GGML_QUANT_SIZES[ty]
            byte_shape = shape[:-1] + [shape[-1] // block * size]
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nb, ty)

    t("token_embd.weight", [N_EMBD, N_VOCAB], Q4_K)
    for i in range(N_LAYER):
        more = use_more_bits(i, N_LAYER)
        b = f"blk.{i}."
        t(b + "attn_norm.weight", [N_EMBD], F32)
        t(b + "attn_q.weight", [N_EMBD, N_EMBD], Q4_K)
        t(b + "attn_k.weight", [N_EMBD, HEAD * N_HEAD_KV], Q4_K)
        t(b + "attn_v.weight", [N_EMBD, HEAD * N_HEAD_KV], Q6_K if more else Q4_K)
        t(b + "attn_output.weight", [N_EMBD, N_EMBD], Q4_K)
        t(b + "ffn_norm.weight", [N_EMBD], F32)
        t(b + "ffn_gate.weight", [N_EMBD, N_FF], Q4_K)
        t(b + "ffn_up.weight", [N_EMBD, N_FF], Q4_K)
        t(b + "ffn_down.weight", [N_FF, N_EMBD], Q6_K if more else Q4_K)
    t("output_norm.weight", [N_EMBD], F32)
    t("output.weight", [N_EMBD, N_VOCAB], Q6_K)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
