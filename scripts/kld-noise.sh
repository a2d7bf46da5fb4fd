#!/usr/bin/env bash
# How much llama.cpp's own next-token distributions move with its evaluation settings alone: the mean
# KLD and same-top-p of MODEL against itself, base run with llama-perplexity's defaults, compared runs
# with a smaller micro-batch (-ub 16, -ub 1) or without flash attention (-fa off). On gemma-3 270M this
# rounding noise (mean KLD about 0.006) is as large as the Q8_0/Q4_K_M divergence, which bounds how
# closely any other implementation can reproduce llama-perplexity's KLD for that pair.
# Usage: scripts/kld-noise.sh [MODEL] [CHUNKS]   (default: $GEMMA, 4 chunks of 128 of ppl-text.txt)
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
MODEL=${1:-$GEMMA}
CHUNKS=${2:-4}
NOAMX=$HOME/.cache/pocket-peers/llama.cpp/build-noamx/bin
export LD_LIBRARY_PATH=$NOAMX
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ppl() { "$NOAMX/llama-perplexity" -m "$MODEL" -f testdata/exec/ppl-text.txt -c 128 -t 2 --chunks "$CHUNKS" "$@"; }
ppl --kl-divergence-base "$TMP/base.kld" > "$TMP/base.log" 2>&1 || { cat "$TMP/base.log" >&2; exit 1; }
for opts in "-b 128" "-b 128 -ub 16" "-b 128 -ub 1" "-fa off"; do
  # shellcheck disable=SC2086
  ppl $opts --kl-divergence-base "$TMP/base.kld" --kl-divergence 2>&1 \
    | awk -v o="$opts" '/^Mean    KLD/{k=$3} /^Same top p/{s=$4} END{printf "%-14s mean KLD %s  same top p %s %%\n", o, k, s}'
done
