#!/usr/bin/env python3
"""Goldens for `pocket split` / `pocket merge`: runs llama-gguf-split on the tiny models with several
--split-max-tensors and --split-max-size settings and records each shard's name and sha256, and the
sha256 of llama-gguf-split --merge of those shards, in testdata/interop/gguf-split.json.

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/make-split-golden.py
"""
import hashlib, json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [
    ("tiny-llama-q8_0.gguf", ["--split-max-tensors", "1"]),
    ("tiny-llama-q8_0.gguf", ["--split-max-tensors", "5"]),
    ("tiny-llama-q8_0.gguf", ["--split-max-tensors", "8"]),
    ("tiny-llama-q8_0.gguf", ["--split-max-tensors", "8", "--no-tensor-first-split"]),
    ("tiny-llama-q8_0.gguf", ["--split-max-tensors", "1000"]),
    ("tiny-llama-q8_0.gguf", ["--split-max-size", "1M"]),
    ("tiny-llama-q8_0.gguf", ["--split-max-size", "1M", "--no-tensor-first-split"]),
    ("tiny-llama-q4_k_m.gguf", ["--split-max-tensors", "4"]),
    ("tiny-llama-q4_k_m.gguf", ["--split-max-tensors", "7", "--no-tensor-first-split"]),
    ("tiny-llama-q4_k_m.gguf", ["--split-max-size", "1M"]),
    ("tiny-llama-f16.gguf", ["--split-max-size", "1M"]),
    ("tiny-llama-f16.gguf", ["--split-max-size", "2M"]),
]


def sha(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    out = []
    for name, args in CASES:
        with tempfile.TemporaryDirectory() as d:
            prefix = os.path.join(d, "shard")
            subprocess.run(["llama-gguf-split", "--split", *args, os.path.join(ROOT, "testdata", name), prefix],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shards = sorted(f for f in os.listdir(d) if f.endswith(".gguf"))
            merged = os.path.join(d, "merged.gguf")
            subprocess.run(["llama-gguf-split", "--merge", os.path.join(d, shards[0]), merged],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out.append({
                "input": name,
                "args": args,
                "shards": [{"name": s, "sha256": sha(os.path.join(d, s)), "size": os.path.getsize(os.path.join(d, s))}
                           for s in shards],
                "merged_sha256": sha(merged),
                "merged_size": os.path.getsize(merged),
            })
    # The committed split model (testdata/tiny-llama-split-*) merged by llama-gguf-split.
    with tempfile.TemporaryDirectory() as d:
        merged = os.path.join(d, "merged.gguf")
        subprocess.run(["llama-gguf-split", "--merge", os.path.join(ROOT, "testdata", "tiny-llama-split-00001-of-00003.gguf"),
                        merged], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        committed = {"first_shard": "tiny-llama-split-00001-of-00003.gguf", "merged_sha256": sha(merged)}
    path = os.path.join(ROOT, "testdata", "interop", "gguf-split.json")
    with open(path, "w") as f:
        json.dump({"cases": out, "committed_split_merge": committed}, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(out)} cases")


if __name__ == "__main__":
    sys.exit(main())
