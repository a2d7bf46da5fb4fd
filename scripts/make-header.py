#!/usr/bin/env python3
"""Writes a header-only GGUF (metadata and tensor infos, no tensor data) for a model from its
published configuration, with gguf-py 0.19.0: `src/verify/calib/<name>.f16.header.gguf` for each
configuration below (or the names given). Every weight is F16 (norms F32); pocket derives a quantized
file's tensor types from it with its port of llama-quantize's choices (`pocket::requant::plan`), so
one header serves every quantization of the model. The vocabulary arrays are left out to keep the
files small (`{arch}.vocab_size` says how many tokens there are).

The configurations are the models' Hugging Face `config.json` values, as llama.cpp's converter maps
them; the tensor lists follow llama.cpp's `src/llama-arch.cpp` per architecture and are checked
against the tensor counts llama.cpp printed when loading the published GGUF files (PocketPal's
benchmark logs: qwen2 338/339, qwen3 311, gemma3 340, llama 218, phi3 197/196).

    python3 scripts/make-header.py            # all
    python3 scripts/make-header.py qwen3-1.7b # one
"""
import os
import sys

import numpy as np
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "src", "verify", "calib")
F16, F32 = gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32

# name: (arch, display name, hf config source, n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim,
#        n_vocab, tied, ctx, rope_base, extra)
CONFIGS = {
    "qwen2.5-1.5b": ("qwen2", "Qwen2.5 1.5B Instruct", "huggingface.co/Qwen/Qwen2.5-1.5B-Instruct/blob/main/config.json",
                     28, 1536, 8960, 12, 2, 128, 151936, True, 32768, 1e6, {"qkv_bias": True}),
    "deepseek-r1-distill-qwen-1.5b": ("qwen2", "DeepSeek R1 Distill Qwen 1.5B",
                     "huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/blob/main/config.json",
                     28, 1536, 8960, 12, 2, 128, 151936, False, 131072, 1e4, {"qkv_bias": True}),
    "qwen3-1.7b": ("qwen3", "Qwen3 1.7B", "huggingface.co/Qwen/Qwen3-1.7B/blob/main/config.json",
                   28, 2048, 6144, 16, 8, 128, 151936, False, 32768, 1e6, {"qk_norm": True}),
    "gemma-3-1b": ("gemma3", "Gemma 3 1B it", "huggingface.co/google/gemma-3-1b-it/blob/main/config.json",
                   26, 1152, 6912, 4, 1, 256, 262144, True, 32768, 1e6,
                   {"qk_norm": True, "post_norms": True, "sliding_window": 512}),
    "smollm2-1.7b": ("llama", "SmolLM2 1.7B Instruct", "huggingface.co/HuggingFaceTB/SmolLM2-1.7B-Instruct/blob/main/config.json",
                     24, 2048, 8192, 32, 32, 64, 49152, True, 8192, 130000.0, {}),
    "phi-3.5-mini": ("phi3", "Phi 3.5 mini instruct", "huggingface.co/microsoft/Phi-3.5-mini-instruct/blob/main/config.json",
                     32, 3072, 8192, 32, 32, 96, 32064, False, 131072, 1e4, {"fused": True}),
    "phi-4-mini": ("phi3", "Phi 4 mini instruct", "huggingface.co/microsoft/Phi-4-mini-instruct/blob/main/config.json",
                   32, 3072, 8192, 24, 8, 128, 200064, True, 131072, 1e4, {"fused": True}),
    "llama-3.2-1b": ("llama", "Llama 3.2 1B Instruct", "huggingface.co/meta-llama/Llama-3.2-1B-Instruct/blob/main/config.json",
                     16, 2048, 8192, 32, 8, 64, 128256, True, 131072, 500000.0, {}),
    "llama-3.2-3b": ("llama", "Llama 3.2 3B Instruct", "huggingface.co/meta-llama/Llama-3.2-3B-Instruct/blob/main/config.json",
                     28, 3072, 8192, 24, 8, 128, 128256, True, 131072, 500000.0, {}),
    "llama-3-8b": ("llama", "Meta Llama 3 8B Instruct", "huggingface.co/meta-llama/Meta-Llama-3-8B-Instruct/blob/main/config.json",
                   32, 4096, 14336, 32, 8, 128, 128256, False, 8192, 500000.0, {}),
    "llama-2-7b": ("llama", "Llama 2 7B", "huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json",
                   32, 4096, 11008, 32, 32, 128, 32000, False, 4096, 10000.0, {}),
}


def write(name):
    (arch, display, src, n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim, n_vocab, tied, ctx,
     rope_base, extra) = CONFIGS[name]
    path = os.path.join(OUT, f"{name}.f16.header.gguf")
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"{display} (header only; config: {src})")
    w.add_block_count(n_layer)
    w.add_context_length(ctx)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(rope_base)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(n_vocab)
    if "sliding_window" in extra:
        w.add_sliding_window(extra["sliding_window"])
    w.add_file_type(1)  # MOSTLY_F16
    w.add_tokenizer_model("gpt2")

    def t(tname, shape_ggml, ty=F16):
        shape = list(reversed(shape_ggml))
        if ty == F32:
            w.add_tensor_info(tname, shape, np.dtype(np.float32), int(np.prod(shape)) * 4, ty)
        else:
            w.add_tensor_info(tname, shape, np.dtype(np.float16), int(np.prod(shape)) * 2, ty)

    q_dim, kv_dim = n_head * head_dim, n_head_kv * head_dim
    t("token_embd.weight", [n_embd, n_vocab])
    for i in range(n_layer):
        b = f"blk.{i}."
        t(b + "attn_norm.weight", [n_embd], F32)
        if extra.get("fused"):
            t(b + "attn_qkv.weight", [n_embd, q_dim + 2 * kv_dim])
        else:
            t(b + "attn_q.weight", [n_embd, q_dim])
            t(b + "attn_k.weight", [n_embd, kv_dim])
            t(b + "attn_v.weight", [n_embd, kv_dim])
            if extra.get("qkv_bias"):
                t(b + "attn_q.bias", [q_dim], F32)
                t(b + "attn_k.bias", [kv_dim], F32)
                t(b + "attn_v.bias", [kv_dim], F32)
            if extra.get("qk_norm"):
                t(b + "attn_q_norm.weight", [head_dim], F32)
                t(b + "attn_k_norm.weight", [head_dim], F32)
        t(b + "attn_output.weight", [q_dim, n_embd])
        if extra.get("post_norms"):
            t(b + "post_attention_norm.weight", [n_embd], F32)
        t(b + "ffn_norm.weight", [n_embd], F32)
        if extra.get("fused"):
            t(b + "ffn_up.weight", [n_embd, 2 * n_ff])
        else:
            t(b + "ffn_gate.weight", [n_embd, n_ff])
            t(b + "ffn_up.weight", [n_embd, n_ff])
        t(b + "ffn_down.weight", [n_ff, n_embd])
        if extra.get("post_norms"):
            t(b + "post_ffw_norm.weight", [n_embd], F32)
    t("output_norm.weight", [n_embd], F32)
    if not tied:
        t("output.weight", [n_embd, n_vocab])
    if extra.get("fused"):  # phi3 long/short rope factors
        t("rope_factors_long.weight", [head_dim // 2], F32)
        t("rope_factors_short.weight", [head_dim // 2], F32)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in sys.argv[1:] or CONFIGS:
        write(name)


if __name__ == "__main__":
    main()
