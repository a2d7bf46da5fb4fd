#!/usr/bin/env python3
"""Makes the tiny qwen3 models of tests/exec_qwen3.rs: testdata/exec/tiny-qwen3-{f16,q8_0,q4_k_m}.gguf.

    source ~/.cache/pocket-peers/env.sh && python3 scripts/make-tiny-qwen3.py [WEIGHT_STD]

Real qwen3 structure with random weights (numpy seed 4321): n_embd 256, 2 layers, 2 query heads and
1 KV head of head_dim 64 (its own: n_head * head_dim = 128 != n_embd, like Qwen3's 16 x 128 over
1024), per-head RMS norms on Q and K (attn_q_norm/attn_k_norm), NeoX RoPE, n_ff 128, output tied to
token_embd (no output.weight, as the small Qwen3s). Tokenizer: byte-level BPE ("gpt2", pre "qwen2")
with the 256 byte symbols, 24 merges and Qwen's three control tokens; Qwen3-0.6B's chat template
(from $LLAMA/models/templates). Quantized by llama-quantize (Q8_0, Q4_K_M; in Q4_K_M the 128-wide
rows of attn_output and ffn_down are not multiples of 256, so llama-quantize falls back for them).
Scripts/make-qwen3-goldens.sh calls this, then records llama.cpp's logits.
"""
import os
import subprocess
import sys

import numpy as np
from gguf import GGUFWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "exec")
LLAMA = os.environ.get("LLAMA") or sys.exit("LLAMA unset: source ~/.cache/pocket-peers/env.sh")

N_EMBD, N_FF, N_LAYER, N_HEAD, N_HEAD_KV, HEAD_DIM = 256, 128, 2, 2, 1, 64
STD = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05


def bytes_to_unicode():
    """GPT-2's printable stand-ins for the 256 byte values."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def vocab():
    b2u = bytes_to_unicode()
    toks = [b2u[b] for b in range(256)]
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"),
              ("Ġ", "s"), ("r", "e"), ("a", "t"), ("e", "n"), ("Ġ", "c"), ("o", "u"), ("Ġ", "w"),
              ("i", "s"), ("Ġ", "o"), ("in", "g"), ("Ġ", "f"), ("Ġ", "p"), ("a", "n"), ("Ġ", "m"),
              ("l", "l"), ("Ġa", "n"), ("Ġ", "Ġ")]
    for a, b in merges:
        toks.append(a + b)
    types = [1] * len(toks)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    toks += specials
    types += [3] * len(specials)
    return toks, types, [f"{a} {b}" for a, b in merges]


def tiny_qwen3(path):
    rng = np.random.default_rng(4321)
    w = GGUFWriter(path, "qwen3")
    w.add_name("tiny-qwen3")
    w.add_context_length(256)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(1)  # MOSTLY_F16
    toks, types, merges = vocab()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(toks.index("<|im_end|>"))
    w.add_pad_token_id(toks.index("<|endoftext|>"))
    w.add_bos_token_id(toks.index("<|endoftext|>"))
    w.add_add_bos_token(False)
    with open(os.path.join(LLAMA, "models", "templates", "Qwen-Qwen3-0.6B.jinja"), encoding="utf-8") as f:
        w.add_chat_template(f.read())
    n_vocab = len(toks)

    def mat(rows, cols, scale=STD):
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float16)

    def norm(n):
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(n_vocab, N_EMBD, 1.0))
    for il in range(N_LAYER):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", norm(N_EMBD))
        w.add_tensor(p + "attn_q.weight", mat(N_HEAD * HEAD_DIM, N_EMBD))
        w.add_tensor(p + "attn_k.weight", mat(N_HEAD_KV * HEAD_DIM, N_EMBD))
        w.add_tensor(p + "attn_v.weight", mat(N_HEAD_KV * HEAD_DIM, N_EMBD))
        w.add_tensor(p + "attn_output.weight", mat(N_EMBD, N_HEAD * HEAD_DIM))
        w.add_tensor(p + "attn_q_norm.weight", norm(HEAD_DIM))
        w.add_tensor(p + "attn_k_norm.weight", norm(HEAD_DIM))
        w.add_tensor(p + "ffn_norm.weight", norm(N_EMBD))
        w.add_tensor(p + "ffn_gate.weight", mat(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_up.weight", mat(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_down.weight", mat(N_EMBD, N_FF))
    w.add_tensor("output_norm.weight", norm(N_EMBD))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def main():
    os.makedirs(OUT, exist_ok=True)
    f16 = os.path.join(OUT, "tiny-qwen3-f16.gguf")
    n_vocab = tiny_qwen3(f16)
    for q in ["Q8_0", "Q4_K_M"]:
        dst = os.path.join(OUT, f"tiny-qwen3-{q.lower()}.gguf")
        r = subprocess.run(["llama-quantize", f16, dst, q], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            sys.exit(r.stdout)
        for line in r.stdout.splitlines():
            if "fallback" in line or "converting to" in line:
                print(q, line.strip())
    for f in sorted(os.listdir(OUT)):
        if f.startswith("tiny-qwen3"):
            print(f, os.path.getsize(os.path.join(OUT, f)), "bytes")
    print("n_vocab", n_vocab, "weight std", STD)


if __name__ == "__main__":
    main()
