#!/usr/bin/env python3
"""Makes the tiny random-weight models of tests/exec_arch21.rs: testdata/exec/tiny-{ARCH}-q8_0.gguf.

    source ~/.cache/pocket-peers/env.sh && python3 scripts/make-tiny-arch.py [ARCH...]

ARCH: gemma, gemma2, granite, phi3, smollm3, mistral3, lfm2 (default: all). Written directly in Q8_0 by gguf-py (gguf.quants), so
the bytes depend on this script, numpy (seed per architecture) and gguf-py only, not on llama.cpp.
Every 2-D weight is Q8_0, norms are f32. Shapes: n_embd 128, 4 query heads and 2 KV heads of
head_dim 64 (n_head x head_dim = 256 != n_embd, so key_length decides the head size), n_ff 256,
2 layers, output tied to token_embd. Weights std 0.25, embeddings std 0.02: small beside what the
layers add, else the tied output makes every model repeat its last token.

- gemma: Gemma 1 (embeddings x sqrt(n_embd), GELU, Q x 1/sqrt(head_dim), NeoX RoPE).
- gemma2: as gemma plus post-attention and post-FFW norms, attention logit soft-capping (2.0) and
  final logit soft-capping (5.0) - small caps so that tanh bends the values this model produces -,
  sliding window 6 on layer 0 (llama.cpp's pattern 2: even layers slide), layer 1 global.
- granite: llama-style (adjacent-pair RoPE, SwiGLU) with Granite 3's embedding_scale 12,
  residual_scale 0.22, attention.scale 1/128 and logit_scale 8.
- phi3: as Phi-4-mini converts: fused attn_qkv, fused ffn_up (2 n_ff rows), NeoX RoPE on 48 of
  64 head dims (partial_rotary_factor 0.75), 2 query heads and 1 KV head (phi3's Q is n_embd wide),
  LongRoPE: rope_factors_long/short of 24, context_length 4096 over original_context_length 256
  and its rope.scaling.attn_factor sqrt(1 + ln 16 / ln 256); a sliding_window of 6 that llama.cpp
  disables for phi3 (it would change the logits from the seventh token if applied).
- smollm3: llama-style, 4 layers so that the fourth is a NoPE layer (llama.cpp's
  n_no_rope_layer_step 4), Q/K/V biases on layer 0 (optional in its loader).
- mistral3: llama-style with Ministral 3's YaRN (factor 16, yarn_log_multiplier 1) and llama4
  attention temperature (temperature_scale 0.1) over an original context of 8, so that positions
  8-15 of the 16-token golden are tempered; YaRN betas 0.05 / 0.005 so that its ramp falls on
  dimension pairs 7-13 (base 1e6) of this tiny original context (Ministral's 32 / 1 over 16384 do that at
  real size).
- lfm2 (issue #22): LFM2's hybrid of 5 layers, conv conv attn conv attn (LFM2-350M begins so):
  double-gated short convolutions (`shortconv.in_proj` of 3 n_embd rows B, C, X; a depthwise
  f32 kernel of `shortconv.l_cache` 3 over the last two B*X inputs kept as state; `out_proj` of
  C * conv) and GQA blocks of 2 query heads and 1 KV head of 64 (n_embd / n_head: LFM2 writes no
  key_length), Q and K RMS-normed per head, NeoX RoPE (base 1e6); `attention.head_count_kv` the
  per-layer array with 0 on conv layers, as convert_hf_to_gguf writes it; the final norm named
  `token_embd_norm` as LFM2's files name it. Tokenizer: the refact vocabulary under pre-type
  "lfm2" (llama.cpp's llama3 pre-tokenizer, merges ignored, BOS added).

Vocabularies are real ones cut short, from llama.cpp's vocab-only files
($POCKET_PEERS/models/vocab-0.3.36): the gemmas take the SentencePiece vocabulary of
ggml-vocab-llama-spm (the same tokenizer model, "llama", as Gemma 1/2; <unk> <s> </s>, the 256
byte tokens and the next 253 pieces with their scores; phi3 too, plus Phi-3's <|endoftext|> as
control token 512, which llama.cpp's vocabulary asks for in a model whose name says phi3), granite, smollm3 and mistral3 the
byte-level BPE of ggml-vocab-refact (first 768 tokens, the merges among them).
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGUFWriter, GGMLQuantizationType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "exec")
PEERS = os.environ.get("POCKET_PEERS") or sys.exit("POCKET_PEERS unset: source ~/.cache/pocket-peers/env.sh")
VOCABS = os.path.join(PEERS, "models", "vocab-0.3.36")

N_EMBD, N_FF, N_LAYER, N_HEAD, N_HEAD_KV, HEAD_DIM = 128, 256, 2, 4, 2, 64
SEEDS = {"gemma": 2101, "gemma2": 2102, "granite": 2103,
         "phi3": 2104, "smollm3": 2105, "mistral3": 2106, "lfm2": 2201}
LFM2_CONV = [True, True, False, True, False]  # per layer: a short-convolution block (else attention)
LFM2_L_CACHE = 3


def field(r, key):
    f = r.fields.get(key)
    if f is None:
        return None
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[-1]).decode("utf-8")
    return f.parts[-1][0].item()


def spm_vocab(w, n, extra=()):
    """The first `n` tokens, then `extra` control tokens (score 0)."""
    r = gguf.GGUFReader(os.path.join(VOCABS, "ggml-vocab-llama-spm.gguf"))
    toks = field(r, "tokenizer.ggml.tokens")[:n] + list(extra)
    w.add_tokenizer_model(field(r, "tokenizer.ggml.model"))
    w.add_tokenizer_pre(field(r, "tokenizer.ggml.pre"))
    w.add_token_list(toks)
    w.add_token_scores(field(r, "tokenizer.ggml.scores")[:n] + [0.0] * len(extra))
    w.add_token_types(field(r, "tokenizer.ggml.token_type")[:n] + [3] * len(extra))
    w.add_bos_token_id(field(r, "tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(field(r, "tokenizer.ggml.eos_token_id"))
    w.add_unk_token_id(field(r, "tokenizer.ggml.unknown_token_id"))
    w.add_add_bos_token(field(r, "tokenizer.ggml.add_bos_token"))
    w.add_add_eos_token(field(r, "tokenizer.ggml.add_eos_token"))
    return len(toks)


def bpe_vocab(w, n, pre=None):
    r = gguf.GGUFReader(os.path.join(VOCABS, "ggml-vocab-refact.gguf"))
    toks = field(r, "tokenizer.ggml.tokens")[:n]
    keep = set(toks)
    merges = [m for m in field(r, "tokenizer.ggml.merges")
              if all(p in keep for p in m.split(" ")) and m.replace(" ", "") in keep]
    w.add_tokenizer_model(field(r, "tokenizer.ggml.model"))
    w.add_tokenizer_pre(pre or field(r, "tokenizer.ggml.pre"))
    w.add_token_list(toks)
    w.add_token_types(field(r, "tokenizer.ggml.token_type")[:n])
    w.add_token_merges(merges)
    w.add_bos_token_id(field(r, "tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(field(r, "tokenizer.ggml.eos_token_id"))
    w.add_unk_token_id(field(r, "tokenizer.ggml.unknown_token_id"))
    return len(toks)


def tiny_lfm2(path, l_cache=LFM2_L_CACHE):
    rng = np.random.default_rng(SEEDS["lfm2"])
    n_layer, n_head, n_head_kv, head_dim = len(LFM2_CONV), 2, 1, 64
    w = GGUFWriter(path, "lfm2")
    w.add_name("tiny-lfm2")
    w.add_context_length(512)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(n_head)
    w.add_head_count_kv([0 if c else n_head_kv for c in LFM2_CONV])
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_shortconv_l_cache(l_cache)
    w.add_file_type(7)  # MOSTLY_Q8_0
    n_vocab = bpe_vocab(w, 768, pre="lfm2")
    w.add_vocab_size(n_vocab)

    def mat(rows, cols, scale):
        x = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
        return gguf.quants.quantize(x, GGMLQuantizationType.Q8_0)

    def norm(n):
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    q8 = GGMLQuantizationType.Q8_0
    std = 0.25
    w.add_tensor("token_embd.weight", mat(n_vocab, N_EMBD, 0.02), raw_dtype=q8)
    nq, nkv = n_head * head_dim, n_head_kv * head_dim
    for il, conv in enumerate(LFM2_CONV):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", norm(N_EMBD))
        if conv:
            w.add_tensor(p + "shortconv.conv.weight",
                         (0.5 * rng.standard_normal((N_EMBD, l_cache))).astype(np.float32))
            w.add_tensor(p + "shortconv.in_proj.weight", mat(3 * N_EMBD, N_EMBD, 0.1), raw_dtype=q8)
            w.add_tensor(p + "shortconv.out_proj.weight", mat(N_EMBD, N_EMBD, std), raw_dtype=q8)
        else:
            w.add_tensor(p + "attn_q.weight", mat(nq, N_EMBD, std), raw_dtype=q8)
            w.add_tensor(p + "attn_k.weight", mat(nkv, N_EMBD, std), raw_dtype=q8)
            w.add_tensor(p + "attn_v.weight", mat(nkv, N_EMBD, std), raw_dtype=q8)
            w.add_tensor(p + "attn_q_norm.weight", norm(head_dim))
            w.add_tensor(p + "attn_k_norm.weight", norm(head_dim))
            w.add_tensor(p + "attn_output.weight", mat(N_EMBD, nq, std), raw_dtype=q8)
        w.add_tensor(p + "ffn_norm.weight", norm(N_EMBD))
        w.add_tensor(p + "ffn_gate.weight", mat(N_FF, N_EMBD, std), raw_dtype=q8)
        w.add_tensor(p + "ffn_up.weight", mat(N_FF, N_EMBD, std), raw_dtype=q8)
        w.add_tensor(p + "ffn_down.weight", mat(N_EMBD, N_FF, std), raw_dtype=q8)
    w.add_tensor("token_embd_norm.weight", norm(N_EMBD))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def tiny(arch, path):
    if arch == "lfm2":
        return tiny_lfm2(path)
    rng = np.random.default_rng(SEEDS[arch])
    n_layer, n_head, n_head_kv = N_LAYER, N_HEAD, N_HEAD_KV
    if arch == "phi3":
        n_head, n_head_kv = N_EMBD // HEAD_DIM, 1
    if arch == "smollm3":
        n_layer = 4
    w = GGUFWriter(path, arch)
    w.add_name(f"tiny-{arch}")
    w.add_context_length(4096 if arch == "phi3" else 512)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    if arch != "phi3":  # phi3's head size is n_embd / n_head (its converter writes no key_length)
        w.add_key_length(HEAD_DIM)
        w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(7)  # MOSTLY_Q8_0
    if arch == "gemma2":
        w.add_sliding_window(6)
        w.add_attn_logit_softcapping(2.0)
        w.add_final_logit_softcapping(5.0)
    if arch == "granite":
        w.add_rope_freq_base(10000.0)
        w.add_float32("granite.embedding_scale", 12.0)
        w.add_float32("granite.residual_scale", 0.22)
        w.add_float32("granite.attention.scale", 0.0078125)
        w.add_float32("granite.logit_scale", 8.0)
        n_vocab = bpe_vocab(w, 768)
    elif arch == "phi3":
        w.add_rope_scaling_orig_ctx_len(256)
        w.add_rope_dimension_count(48)
        w.add_rope_freq_base(10000.0)
        w.add_rope_scaling_attn_factors(float(np.sqrt(1 + np.log(4096 / 256) / np.log(256))))
        w.add_sliding_window(6)
        n_vocab = spm_vocab(w, 512, ["<|endoftext|>"])
    elif arch == "smollm3":
        w.add_rope_freq_base(5000000.0)
        n_vocab = bpe_vocab(w, 768)
    elif arch == "mistral3":
        w.add_rope_freq_base(1000000.0)
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(16.0)
        w.add_rope_scaling_orig_ctx_len(8)
        w.add_float32("mistral3.rope.scaling.yarn_beta_fast", 0.05)
        w.add_float32("mistral3.rope.scaling.yarn_beta_slow", 0.005)
        w.add_float32("mistral3.rope.scaling.yarn_log_multiplier", 1.0)
        w.add_float32("mistral3.attention.temperature_scale", 0.1)
        n_vocab = bpe_vocab(w, 768)
    else:
        n_vocab = spm_vocab(w, 512)

    def mat(rows, cols, scale):
        x = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
        return gguf.quants.quantize(x, GGMLQuantizationType.Q8_0)

    def norm(n):
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    q8 = GGMLQuantizationType.Q8_0
    std = 0.25
    w.add_tensor("token_embd.weight", mat(n_vocab, N_EMBD, 0.02), raw_dtype=q8)
    if arch == "phi3":
        # LongRoPE factors as Phi's configs have them: short near 1, long growing to ~16.
        half = 48 // 2
        w.add_tensor("rope_factors_long.weight",
                     np.geomspace(1.0, 16.0, half).astype(np.float32))
        w.add_tensor("rope_factors_short.weight",
                     (1 + 0.05 * rng.random(half)).astype(np.float32))
    nq, nkv = n_head * HEAD_DIM, n_head_kv * HEAD_DIM
    for il in range(n_layer):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", norm(N_EMBD))
        if arch == "phi3":
            w.add_tensor(p + "attn_qkv.weight", mat(nq + 2 * nkv, N_EMBD, std), raw_dtype=q8)
        else:
            w.add_tensor(p + "attn_q.weight", mat(nq, N_EMBD, std), raw_dtype=q8)
            w.add_tensor(p + "attn_k.weight", mat(nkv, N_EMBD, std), raw_dtype=q8)
            w.add_tensor(p + "attn_v.weight", mat(nkv, N_EMBD, std), raw_dtype=q8)
        if arch == "smollm3" and il == 0:
            for t, n in (("attn_q", nq), ("attn_k", nkv), ("attn_v", nkv)):
                w.add_tensor(p + t + ".bias", (0.5 * rng.standard_normal(n)).astype(np.float32))
        w.add_tensor(p + "attn_output.weight", mat(N_EMBD, nq, std), raw_dtype=q8)
        if arch == "gemma2":
            w.add_tensor(p + "post_attention_norm.weight", norm(N_EMBD))
        w.add_tensor(p + "ffn_norm.weight", norm(N_EMBD))
        if arch == "phi3":
            w.add_tensor(p + "ffn_up.weight", mat(2 * N_FF, N_EMBD, std), raw_dtype=q8)
        else:
            w.add_tensor(p + "ffn_gate.weight", mat(N_FF, N_EMBD, std), raw_dtype=q8)
            w.add_tensor(p + "ffn_up.weight", mat(N_FF, N_EMBD, std), raw_dtype=q8)
        w.add_tensor(p + "ffn_down.weight", mat(N_EMBD, N_FF, std), raw_dtype=q8)
        if arch == "gemma2":
            w.add_tensor(p + "post_ffw_norm.weight", norm(N_EMBD))
    w.add_tensor("output_norm.weight", norm(N_EMBD))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def main():
    if sys.argv[1:2] == ["lfm2-wide"]:
        # The memory golden's variant (make-tiny-arch-goldens.sh): lfm2 with a 1025-tap convolution,
        # so that llama.cpp prints its state (in MiB to two decimals) as more than 0.00.
        tiny_lfm2(sys.argv[2], l_cache=1025)
        return
    archs = sys.argv[1:] or list(SEEDS)
    os.makedirs(OUT, exist_ok=True)
    for arch in archs:
        if arch not in SEEDS:
            sys.exit(f"unknown architecture {arch!r} (one of {', '.join(SEEDS)})")
        path = os.path.join(OUT, f"tiny-{arch}-q8_0.gguf")
        n_vocab = tiny(arch, path)
        print(path, os.path.getsize(path), "bytes, n_vocab", n_vocab)


if __name__ == "__main__":
    main()
