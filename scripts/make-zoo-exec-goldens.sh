#!/usr/bin/env bash
# Goldens of tests/zoo_exec.rs from llama.cpp on the zoo's Qwen2.5-Coder-1.5B-Instruct Q4_K_M
# (scripts/fetch-models.sh qwen):
#  - testdata/exec/qwen-ppl-c128.txt: llama-perplexity's running PPL per chunk and final estimate on
#    testdata/exec/ppl-text.txt at -c 128, 4 chunks, 2 threads, its other settings default (the
#    --kl-divergence-base file it also writes is the base of scripts/kld-noise-zoo.sh; it does not
#    change the perplexity);
#  - testdata/exec/{gemma,qwen}-llama-top64-c128.bin: the top 64 log-probabilities per position of
#    that run's --kl-divergence-base file (scripts/kld-top-k.py), for gemma-3 270M too.
# Each Qwen pass takes 1-4 minutes on a busy 2-core machine. Needs the peers.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
NOAMX=$HOME/.cache/pocket-peers/llama.cpp/build-noamx/bin
if [ -x "$NOAMX/llama-perplexity" ]; then PPL=$NOAMX/llama-perplexity; export LD_LIBRARY_PATH=$NOAMX
else PPL=$(command -v llama-perplexity); fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for name in qwen gemma; do
  model=$(bash scripts/fetch-models.sh "$name" | sed -n "s/^$name //p")
  "$PPL" -m "$model" -f testdata/exec/ppl-text.txt -c 128 --chunks 4 -t 2 \
    --kl-divergence-base "$TMP/$name.kld" > "$TMP/$name.log" 2>&1 || { cat "$TMP/$name.log" >&2; exit 1; }
  if [ $name = qwen ]; then
    grep -E '^\[1\]|Final estimate' "$TMP/$name.log" | sed 's/^[0-9.]* I //' > testdata/exec/qwen-ppl-c128.txt
    cat testdata/exec/qwen-ppl-c128.txt
  fi
  python3 scripts/kld-top-k.py "$TMP/$name.kld" "testdata/exec/$name-llama-top64-c128.bin" 64
done
