#!/usr/bin/env python3
"""Benchmark and cross-check: `pocket tokenize` against llama.cpp's `llama-tokenize` on a large mixed
text (every .inp test string of testdata/vocab, the repository's README files, the gemma hard
strings and 300 random strings from a fixed seed, repeated to about SIZE bytes), for gemma-3, the BPE
vocabularies of testdata/vocab, and from the model zoo (scripts/fetch-models.sh) gemma-4's BPE, the
qwen35 and command-r pre-tokenizers, WordPiece (bert-bge, nomic-embed-text-v1.5) and Unigram
(nomic-bert-moe).

For each vocabulary: both tools tokenize the same file (`-f FILE --no-escape --ids`); the ids must be
identical (exit status 1 if not), and the wall time of each (median of N runs, one warm-up, loading
the vocabulary included, so also timed on an empty text) is printed with pocket/llama ratios.

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/bench-tokenize.py [SIZE_KB=512] [N=3]
"""
import glob
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def zoo(name):
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch-models.sh"), name],
                         check=True, capture_output=True, text=True).stdout
    return next(line[len(name) + 1:].strip() for line in out.splitlines() if line.startswith(name + " "))


def text_corpus(size):
    parts = []
    for inp in sorted(glob.glob(os.path.join(ROOT, "testdata", "vocab", "*.inp"))):
        parts += open(inp, encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
    for md in ("README.md", "testdata/README.md"):
        parts.append(open(os.path.join(ROOT, md), encoding="utf-8").read())
    hard = json.load(open(os.path.join(ROOT, "testdata", "tokenizer", "gemma-3-hard.json"), encoding="utf-8"))
    parts += [c["text"] for c in hard["cases"]]
    # Random text from a fixed seed: ASCII, whitespace, CJK, emoji, combining marks, any code point.
    rnd = random.Random(1234)
    pools = ["abZ07'.,!$_(<>|", "  \t\n\r\u00a0\u3000\u000b", "中文日の한국яéßا",
             "😀🎉👍\U0001F3FD\u200d🇫🇷", "\u0301\u0308\u200b\ufeff\u2581", None]
    for _ in range(300):
        chars = []
        for _ in range(rnd.randrange(60)):
            pool = rnd.choice(pools)
            if pool is None:
                c = rnd.randrange(1, 0x110000)
                while 0xD800 <= c < 0xE000:
                    c = rnd.randrange(1, 0x110000)
                chars.append(chr(c))
            else:
                chars.append(rnd.choice(pool))
        parts.append("".join(chars))
    out, i = [], 0
    while sum(len(p.encode()) for p in out) < size:
        out.append(parts[i % len(parts)])
        i += 1
    return "\n".join(out)


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def timed(cmd, n):
    run(cmd)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        run(cmd)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    size = int(sys.argv[1]) * 1024 if len(sys.argv) > 1 else 512 * 1024
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    pocket = os.path.join(ROOT, "target", "release", "pocket")
    models = [("gemma-3", os.environ["GEMMA"])]
    for v in ["llama-bpe", "qwen2", "gpt-2", "deepseek-llm", "deepseek-coder", "starcoder", "falcon"]:
        models.append((v, os.path.join(ROOT, "testdata", "vocab", f"ggml-vocab-{v}.gguf")))
    vocab = zoo("vocab")
    for v in ["gemma-4", "qwen35", "command-r", "bert-bge", "nomic-bert-moe"]:
        models.append((v, os.path.join(vocab, f"ggml-vocab-{v}.gguf")))
    models.append(("nomic-embed", zoo("nomic")))
    ok = True
    with tempfile.TemporaryDirectory() as d:
        big = os.path.join(d, "big.txt")
        empty = os.path.join(d, "empty.txt")
        open(big, "w", encoding="utf-8").write(text_corpus(size))
        open(empty, "w").close()
        print(f"text: {os.path.getsize(big)} bytes; median of {n} runs; seconds")
        print(f"{'vocab':16} {'tokens':>8} {'pocket':>8} {'llama':>8} {'ratio':>6}   {'load p':>7} {'load l':>7}")
        for name, model in models:
            def p(f):
                return [pocket, "tokenize", model, "-f", f, "--no-escape", "--ids"]

            def l(f):
                return ["llama-tokenize", "-m", model, "-f", f, "--no-escape", "--ids", "--log-disable"]

            ids_p = json.loads(run(p(big)))
            ids_l = json.loads(run(l(big)))
            same = ids_p == ids_l
            if not same:
                ok = False
                k = next((i for i, (a, b) in enumerate(zip(ids_p, ids_l)) if a != b), min(len(ids_p), len(ids_l)))
                print(f"{name}: ids differ at token {k}: pocket {ids_p[k:k+8]} llama {ids_l[k:k+8]}")
            tp, tl = timed(p(big), n), timed(l(big), n)
            ep, el = timed(p(empty), n), timed(l(empty), n)
            print(f"{name:16} {len(ids_l):8} {tp:8.3f} {tl:8.3f} {tp/tl:6.2f}   {ep:7.3f} {el:7.3f}" + ("" if same else "  IDS DIFFER"))
    sys.exit(0 if ok else 1)


main()
