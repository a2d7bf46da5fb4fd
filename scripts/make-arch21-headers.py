#!/usr/bin/env python3
"""Writes testdata/headers/NAME.bf16.header.gguf for issue #21: the header alone (metadata and tensor
infos, no tensor data) of a BF16 GGUF of each published model, as convert_hf_to_gguf.py lays it out
(2-D weights BF16, norms and rope factors F32, output tied to token_embd where the model ties it).
No vocabulary arrays (ARCH.vocab_size holds n_vocab), to stay a few KB.

    python3 scripts/make-arch21-headers.py                 # the committed headers
    python3 scripts/make-arch21-headers.py --llama DIR     # copies llama.cpp can load (for the goldens):
        a placeholder SentencePiece vocabulary of n_vocab tokens, and the file extended (sparse) to the
        size its tensor data would have

The hyper-parameters are the models' config.json values (Hugging Face, as of 2026), written here
from those configs by hand — the project has no network access to fetch them; each row names its
repository. Llama-3.2-1B's rope_freqs (llama3 scaling: factor 32, low 1, high 4, original 8192) and
Phi-4-mini's LongRoPE factors are stored as the converter stores them (F32, head_dim/2 and rot/2 values).
"""
import os
import sys

import numpy as np
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BF16, F32 = gguf.GGMLQuantizationType.BF16, gguf.GGMLQuantizationType.F32

# name: (arch, HF repository, n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train, extra keys)
MODELS = {
    "llama-3.2-1b": ("llama", "meta-llama/Llama-3.2-1B-Instruct", 16, 2048, 32, 8, 64, 8192, 128256, 131072,
                     {"rope.freq_base": 500000.0}),
    "phi-4-mini": ("phi3", "microsoft/Phi-4-mini-instruct", 32, 3072, 24, 8, 128, 8192, 200064, 131072,
                   {"rope.freq_base": 10000.0, "rope.dimension_count": 96, "rope.scaling.original_context_length": 4096,
                    "rope.scaling.attn_factor": float(np.sqrt(1 + np.log(32) / np.log(4096))),
                    "attention.sliding_window": 262144}),
    "smollm3-3b": ("smollm3", "HuggingFaceTB/SmolLM3-3B", 36, 2048, 16, 4, 128, 11008, 128256, 65536,
                   {"rope.freq_base": 5000000.0}),
    "granite-3.3-2b": ("granite", "ibm-granite/granite-3.3-2b-instruct", 40, 2048, 32, 8, 64, 8192, 49159, 131072,
                       {"rope.freq_base": 10000000.0, "embedding_scale": 12.0, "residual_scale": 0.22,
                        "attention.scale": 0.015625, "logit_scale": 8.0}),
    "ministral-3-3b": ("mistral3", "mistralai/Ministral-3-3B-Instruct-2512", 26, 3072, 32, 8, 128, 9216, 131072, 262144,
                       {"rope.freq_base": 1000000.0, "rope.scaling.type": "yarn", "rope.scaling.factor": 16.0,
                        "rope.scaling.original_context_length": 16384, "rope.scaling.yarn_beta_fast": 32.0,
                        "rope.scaling.yarn_beta_slow": 1.0, "rope.scaling.yarn_log_multiplier": 1.0,
                        "attention.temperature_scale": 0.1}),
    "gemma-2-2b": ("gemma2", "google/gemma-2-2b-it", 26, 2304, 8, 4, 256, 9216, 256000, 8192,
                   {"attention.sliding_window": 4096, "attn_logit_softcapping": 50.0,
                    "final_logit_softcapping": 30.0}),
    "gemma-2b": ("gemma", "google/gemma-2b-it", 18, 2048, 8, 1, 256, 16384, 256000, 8192, {}),
    "qwen3-1.7b": ("qwen3", "Qwen/Qwen3-1.7B", 28, 2048, 16, 8, 128, 6144, 151936, 40960,
                   {"rope.freq_base": 1000000.0}),
}


def write(name, path, llama_copy):
    arch, repo, n_layer, n_embd, n_head, n_kv, hd, n_ff, n_vocab, n_ctx, extra = MODELS[name]
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"{repo} (header only)")
    w.add_block_count(n_layer)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    if arch != "phi3":
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_layer_norm_rms_eps(1e-6 if arch in ("gemma", "gemma2", "qwen3") else 1e-5)
    w.add_file_type(32)  # MOSTLY_BF16
    for k, v in extra.items():
        key = f"{arch}.{k}"
        if isinstance(v, str):
            w.add_string(key, v)
        elif isinstance(v, int):
            w.add_uint32(key, v)
        else:
            w.add_float32(key, v)
    w.add_vocab_size(n_vocab)
    if llama_copy:
        toks = [b"<unk>", b"<s>", b"</s>"] + [f"<t{i}>".encode() for i in range(3, n_vocab)]
        if arch == "phi3":
            toks[3] = b"<|endoftext|>"
        w.add_tokenizer_model("llama")
        w.add_token_list(toks)
        w.add_token_scores([0.0] * n_vocab)
        w.add_token_types([1] * n_vocab)
    sizes = []

    def t(tname, shape, ty=BF16):
        n = int(np.prod(shape))
        nb = n * (4 if ty == F32 else 2)
        dt = np.float32 if ty == F32 else np.uint8
        s = list(reversed(shape))
        if ty == BF16:
            s[-1] *= 2
        w.add_tensor_info(tname, s, np.dtype(dt), nb, ty)
        sizes.append(nb)

    nq, nkv = n_head * hd, n_kv * hd
    t("token_embd.weight", [n_embd, n_vocab])
    if arch == "llama":
        t("rope_freqs.weight", [hd // 2], F32)
    if arch == "phi3":
        t("rope_factors_long.weight", [extra["rope.dimension_count"] // 2], F32)
        t("rope_factors_short.weight", [extra["rope.dimension_count"] // 2], F32)
    for i in range(n_layer):
        b = f"blk.{i}."
        t(b + "attn_norm.weight", [n_embd], F32)
        if arch == "phi3":
            t(b + "attn_qkv.weight", [n_embd, nq + 2 * nkv])
        else:
            t(b + "attn_q.weight", [n_embd, nq])
            t(b + "attn_k.weight", [n_embd, nkv])
            t(b + "attn_v.weight", [n_embd, nkv])
        if arch == "qwen3":
            t(b + "attn_q_norm.weight", [hd], F32)
            t(b + "attn_k_norm.weight", [hd], F32)
        t(b + "attn_output.weight", [nq, n_embd])
        if arch == "gemma2":
            t(b + "post_attention_norm.weight", [n_embd], F32)
        t(b + "ffn_norm.weight", [n_embd], F32)
        if arch == "phi3":
            t(b + "ffn_up.weight", [n_embd, 2 * n_ff])
        else:
            t(b + "ffn_gate.weight", [n_embd, n_ff])
            t(b + "ffn_up.weight", [n_embd, n_ff])
        t(b + "ffn_down.weight", [n_ff, n_embd])
        if arch == "gemma2":
            t(b + "post_ffw_norm.weight", [n_embd], F32)
    t("output_norm.weight", [n_embd], F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    if llama_copy:
        pad = lambda x: (x + 31) // 32 * 32
        os.truncate(path, pad(os.path.getsize(path)) + sum(pad(x) for x in sizes))


def main():
    llama_dir = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--llama" else None
    for name in MODELS:
        if llama_dir:
            path = os.path.join(llama_dir, f"{name}.bf16.gguf")
        else:
            path = os.path.join(ROOT, "testdata", "headers", f"{name}.bf16.header.gguf")
        write(name, path, llama_dir is not None)
        print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
