#!/usr/bin/env bash
# Goldens of `pocket kld` (tests/kld.rs): llama-perplexity's --kl-divergence output, from llama.cpp
# built without AMX (scripts/peers-noamx.sh), 2 threads, on testdata/exec/ppl-text.txt at -c 128:
#  - gemma-kld-c128.txt: base gemma-3 270M Q8_0, compared model gemma-3 270M Q4_K_M ($GEMMA), 4 chunks.
#    The only gemma-3 270M file the project has is the Q4_K_M, so the Q8_0 is made from it
#    (llama-quantize --allow-requantize $GEMMA Q8_0; pocket requantize writes the same bytes, which
#    is how the test makes it);
#  - gemma-q4_0-kld-c128.txt: the same Q8_0 as base, compared model an all-Q4_0 made from $GEMMA the
#    same way (--pure Q4_0: a divergence large enough to stand out of the rounding noise of either
#    implementation, in a block format the executor runs fast), 2 chunks;
#  - tiny-llama-kld-c128.txt: base testdata/tiny-llama-q8_0.gguf, compared tiny-llama-q4_k_m.gguf,
#    8 chunks; and tiny-llama-q8_0-c128.kld, the --kl-divergence-base file of that run (llama.cpp's
#    log-probabilities of the tiny Q8_0, read by `pocket kld FILE OTHER`).
# Each file is what llama-perplexity prints from its per-chunk table to the end of its statistics.
# Needs the peers (source ~/.cache/pocket-peers/env.sh).
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
NOAMX=$HOME/.cache/pocket-peers/llama.cpp/build-noamx/bin
[ -x "$NOAMX/llama-perplexity" ] || { echo "no no-AMX llama-perplexity in $NOAMX: run scripts/peers-noamx.sh" >&2; exit 2; }
export LD_LIBRARY_PATH=$NOAMX
OUT=testdata/exec
TEXT=$OUT/ppl-text.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# kld BASE OTHER CHUNKS OUTPUT [BASE_LOGITS_COPY]
kld() {
  "$NOAMX/llama-perplexity" -m "$1" -f $TEXT -c 128 -t 2 --chunks "$3" \
    --kl-divergence-base "$TMP/base.kld" > "$TMP/base.log" 2>&1 \
    || { cat "$TMP/base.log" >&2; exit 1; }
  "$NOAMX/llama-perplexity" -m "$2" -f $TEXT -c 128 -t 2 --chunks "$3" \
    --kl-divergence-base "$TMP/base.kld" --kl-divergence > "$TMP/kld.log" 2>&1 \
    || { cat "$TMP/kld.log" >&2; exit 1; }
  sed -n '/^chunk /,$p' "$TMP/kld.log" > "$4"
  grep -q '^Same top p' "$4" || { echo "no statistics in llama-perplexity's output" >&2; exit 1; }
  echo "== $4"; cat "$4"
  [ -z "${5:-}" ] || cp "$TMP/base.kld" "$5"
}

llama-quantize --allow-requantize "$GEMMA" "$TMP/gemma-q8_0.gguf" Q8_0 > "$TMP/quantize.log" 2>&1 \
  || { cat "$TMP/quantize.log" >&2; exit 1; }
kld "$TMP/gemma-q8_0.gguf" "$GEMMA" 4 $OUT/gemma-kld-c128.txt
llama-quantize --allow-requantize --pure "$GEMMA" "$TMP/gemma-q4_0.gguf" Q4_0 > "$TMP/quantize.log" 2>&1 \
  || { cat "$TMP/quantize.log" >&2; exit 1; }
kld "$TMP/gemma-q8_0.gguf" "$TMP/gemma-q4_0.gguf" 2 $OUT/gemma-q4_0-kld-c128.txt
kld testdata/tiny-llama-q8_0.gguf testdata/tiny-llama-q4_k_m.gguf 8 $OUT/tiny-llama-kld-c128.txt \
  $OUT/tiny-llama-q8_0-c128.kld
