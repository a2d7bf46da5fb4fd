"""Top-K of a llama-perplexity --kl-divergence-base file, small enough to commit: for each scored
position the K most likely tokens with llama.cpp's stored log-probability (scale * step + minimum, as
perplexity.cpp reads it back). tests/zoo_exec.rs measures pocket's KL-divergence from llama.cpp over
these K tokens plus one bucket for the rest of the vocabulary — by the data-processing inequality a
lower bound of the full KLD that `pocket kld BASE.kld MODEL` gives (scripts/kld-noise-zoo.sh prints
both, and the gap).

Output (little-endian): b"PKTOPK1\\0", u32 n_ctx, n_chunk, K, n_vocab, the n_ctx*n_chunk tokens (u32),
then per scored position (n_ctx - 1 - n_ctx/2 per chunk) K pairs (u32 token, f32 log-probability),
most likely first.

    python3 scripts/kld-top-k.py BASE.kld OUT.bin [K]
"""
import struct
import sys

import numpy as np

src, out = sys.argv[1], sys.argv[2]
k = int(sys.argv[3]) if len(sys.argv) > 3 else 64
b = open(src, "rb").read()
assert b[:8] == b"_logits_", "not a --kl-divergence-base file"
n_ctx, n_vocab, n_chunk = struct.unpack_from("<Iii", b, 8)
tokens = np.frombuffer(b, "<i4", n_ctx * n_chunk, 20)
row = 2 * ((n_vocab + 1) // 2) + 4
n_scored = n_ctx - 1 - n_ctx // 2
rows = np.frombuffer(b, "<u2", row * n_scored * n_chunk, 20 + 4 * n_ctx * n_chunk).reshape(-1, row)
with open(out + ".tmp", "wb") as f:
    f.write(b"PKTOPK1\0" + struct.pack("<IIII", n_ctx, n_chunk, k, n_vocab))
    f.write(tokens.astype("<u4").tobytes())
    for r in rows:
        scale, lo = np.frombuffer(r[:4].tobytes(), "<f4")
        q = r[4:4 + n_vocab]
        top = np.argsort(-q.astype(np.int64), kind="stable")[:k]
        lp = (np.float32(scale) * q[top].astype(np.float32) + np.float32(lo)).astype("<f4")
        pairs = np.empty(k, dtype=[("id", "<u4"), ("lp", "<f4")])
        pairs["id"], pairs["lp"] = top, lp
        f.write(pairs.tobytes())
import os
os.replace(out + ".tmp", out)
print(f"{out}: {n_chunk} chunks of {n_ctx}, top {k} of {n_vocab}")
