#!/usr/bin/env python3
"""Makes the tiny random-weight models of tests/exec_arch21.rs: testdata/exec/tiny-{ARCH}-q8_0.gguf.

    source ~/.cache/pocket-peers/env.sh && python3 scripts/make-tiny-arch.py [ARCH...]

ARCH: gemma, gemma2, granite (default: all). Written directly in Q8_0 by gguf-py (gguf.quants), so
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

Vocabularies are real ones cut short, from llama.cpp's vocab-only files
($POCKET_PEERS/models/vocab-0.3.36): the gemmas take the SentencePiece vocabulary of
ggml-vocab-llama-spm (the same tokenizer model, "llama", as Gemma 1/2; <unk> <s> </s>, the 256
byte tokens and the next 253 pieces with their scores), granite the byte-level BPE of
ggml-vocab-refact (first 768 tokens, the merges among them).
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
SEEDS = {"gemma": 2101, "gemma2": 2102, "granite": 2103}


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


def spm_vocab(w, n):
    r = gguf.GGUFReader(os.path.join(VOCABS, "ggml-vocab-llama-spm.gguf"))
    toks = field(r, "tokenizer.ggml.tokens")[:n]
    w.add_tokenizer_model(field(r, "tokenizer.ggml.model"))
    w.add_tokenizer_pre(field(r, "tokenizer.ggml.pre"))
    w.add_token_list(toks)
    w.add_token_scores(field(r, "tokenizer.ggml.scores")[:n])
    w.add_token_types(field(r, "tokenizer.ggml.token_type")[:n])
    w.add_bos_token_id(field(r, "tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(field(r, "tokenizer.ggml.eos_token_id"))
    w.add_unk_token_id(field(r, "tokenizer.ggml.unknown_token_id"))
    w.add_add_bos_token(field(r, "tokenizer.ggml.add_bos_token"))
    w.add_add_eos_token(field(r, "tokenizer.ggml.add_eos_token"))
    return len(toks)


def bpe_vocab(w, n):
    r = gguf.GGUFReader(os.path.join(VOCABS, "ggml-vocab-refact.gguf"))
    toks = field(r, "tokenizer.ggml.tokens")[:n]
    keep = set(toks)
    merges = [m for m in field(r, "tokenizer.ggml.merges")
              if all(p in keep for p in m.split(" ")) and m.replace(" ", "") in keep]
    w.add_tokenizer_model(field(r, "tokenizer.ggml.model"))
    w.add_tokenizer_pre(field(r, "tokenizer.ggml.pre"))
    w.add_token_list(toks)
    w.add_token_types(field(r, "tokenizer.ggml.token_type")[:n])
    w.add_token_merges(merges)
    w.add_bos_token_id(field(r, "tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(field(r, "tokenizer.ggml.eos_token_id"))
    w.add_unk_token_id(field(r, "tokenizer.ggml.unknown_token_id"))
    return len(toks)


def tiny(arch, path):
    rng = np.random.default_rng(SEEDS[arch])
    w = GGUFWriter(path, arch)
    w.add_name(f"tiny-{arch}")
    w.add_context_length(512)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
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
    for il in range(N_LAYER):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", norm(N_EMBD))
        w.add_tensor(p + "attn_q.weight", mat(N_HEAD * HEAD_DIM, N_EMBD, std), raw_dtype=q8)
        w.add_tensor(p + "attn_k.weight", mat(N_HEAD_KV * HEAD_DIM, N_EMBD, std), raw_dtype=q8)
        w.add_tensor(p + "attn_v.weight", mat(N_HEAD_KV * HEAD_DIM, N_EMBD, std), raw_dtype=q8)
        w.add_tensor(p + "attn_output.weight", mat(N_EMBD, N_HEAD * HEAD_DIM, std), raw_dtype=q8)
        if arch == "gemma2":
            w.add_tensor(p + "post_attention_norm.weight", norm(N_EMBD))
        w.add_tensor(p + "ffn_norm.weight", norm(N_EMBD))
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
