#!/usr/bin/env bash
# Golden of `pocket imatrix` (tests/imatrix.rs): llama-imatrix's importance matrix of the tiny qwen3
# (testdata/exec/tiny-qwen3-q4_k_m.gguf) on testdata/exec/ppl-text.txt, 8 chunks of 128 tokens,
# 2 threads, default batch (so llama-imatrix evaluates the 8 chunks as 8 sequences of one batch),
# run from the repository root (the file names the text as `testdata/exec/ppl-text.txt`).
# Needs the peers (source ~/.cache/pocket-peers/env.sh).
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
OUT=testdata/exec/tiny-qwen3-q4_k_m-imatrix-c128.gguf
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
llama-imatrix -m testdata/exec/tiny-qwen3-q4_k_m.gguf -f testdata/exec/ppl-text.txt -c 128 --chunks 8 \
  -t 2 -o "$OUT" > "$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }
grep -E 'compute_imatrix: computing|Final estimate' "$LOG"
ls -l "$OUT"
