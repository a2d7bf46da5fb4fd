#!/usr/bin/env bash
# llama.cpp's own noise per zoo model (issue #18 item 3), beside pocket's distance from llama.cpp:
# for gemma-3 270M Q4_K_M and Qwen2.5-Coder-1.5B-Instruct Q4_K_M, llama-perplexity's logits with its
# defaults (-t 2, --kl-divergence-base) on testdata/exec/ppl-text.txt at -c 128, 4 chunks, compared
# with llama-perplexity's own logits under other settings that change only the rounding (-t 1,
# -ub 16, -fa off), and with pocket's (`pocket kld BASE.kld MODEL`). Writes
# testdata/exec/kld-noise.txt, one line per comparison:
#   MODEL SETTING MEAN_KLD SAME_TOP_P_PERCENT
# (SETTING `pocket` is pocket against llama.cpp's default run). tests/zoo_exec.rs holds pocket within
# the largest llama-vs-llama spread of each model times a margin. Takes about 30 minutes on a busy
# 2-core machine (each Qwen pass is 1-4 minutes); runs one llama.cpp job at a time.
# Usage: scripts/kld-noise-zoo.sh [MODEL_NAME...]   (default: gemma qwen)
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
# The no-AMX build where one exists (CPUs that advertise AMX the VM does not grant), else PATH's.
NOAMX=$HOME/.cache/pocket-peers/llama.cpp/build-noamx/bin
if [ -x "$NOAMX/llama-perplexity" ]; then PPL=$NOAMX/llama-perplexity; export LD_LIBRARY_PATH=$NOAMX
else PPL=$(command -v llama-perplexity); fi
POCKET=./target/release/pocket
OUT=testdata/exec/kld-noise.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TEXT=testdata/exec/ppl-text.txt
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(gemma qwen)
stats() { awk -v m="$1" -v o="$2" '/^Mean    KLD/{k=$3} /^Same top p/{s=$4}
  END{if (k == "" || s == "") exit 1; printf "%s %s %s %s\n", m, o, k, s}' "$3"; }
: > "$TMP/out"
for name in "${models[@]}"; do
  model=$(bash scripts/fetch-models.sh "$name" | sed -n "s/^$name //p")
  run() { "$PPL" -m "$model" -f $TEXT -c 128 --chunks 4 "$@"; }
  run -t 2 --kl-divergence-base "$TMP/$name.kld" > "$TMP/base.log" 2>&1 || { cat "$TMP/base.log" >&2; exit 1; }
  for opts in "-t 1" "-t 2 -ub 16" "-t 2 -fa off"; do
    # shellcheck disable=SC2086
    run $opts --kl-divergence-base "$TMP/$name.kld" --kl-divergence > "$TMP/kld.log" 2>&1 \
      || { cat "$TMP/kld.log" >&2; exit 1; }
    stats "$name" "${opts// /}" "$TMP/kld.log" | tee -a "$TMP/out"
  done
  cargo build -q --release
  "$POCKET" kld "$TMP/$name.kld" "$model" > "$TMP/pocket.log" 2>&1 || { cat "$TMP/pocket.log" >&2; exit 1; }
  stats "$name" pocket "$TMP/pocket.log" | tee -a "$TMP/out"
  [ -z "${KEEP_KLD:-}" ] || cp "$TMP/$name.kld" "$KEEP_KLD/$name-c128.kld"
done
if [ $# -eq 0 ]; then cp "$TMP/out" "$OUT"; echo "wrote $OUT"; fi
