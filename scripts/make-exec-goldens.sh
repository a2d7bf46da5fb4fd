#!/usr/bin/env bash
# Goldens of the executor tests (testdata/exec/), from llama.cpp built without AMX
# (scripts/peers-noamx.sh). Needs the peers (source ~/.cache/pocket-peers/env.sh).
#  - tiny-llama-*.logits.f32: llama.cpp's logits for TOKENS (all positions) of each tiny llama;
#  - gemma-greedy.txt: for each prompt of gemma-prompts.txt, its ids and 16 greedy ids (llama-simple's
#    loop, scripts/exec-logits-golden.c --greedy);
#  - gemma-ppl-c128.txt: llama-perplexity's output on ppl-text.txt at -c 128 (per-chunk values, PPL).
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
# The no-AMX build's tools if it has them; else the default build's tools and libllama with the
# no-AMX ggml libraries first on the library path (same sources; the binaries use RUNPATH, which
# LD_LIBRARY_PATH overrides), since only ggml-cpu's AMX kernels die on this CPU.
NOAMX=$HOME/.cache/pocket-peers/llama.cpp/build-noamx/bin
[ -f "$NOAMX/libggml-cpu.so" ] || { echo "no no-AMX ggml in $NOAMX: run scripts/peers-noamx.sh" >&2; exit 2; }
if [ -x "$NOAMX/llama-perplexity" ]; then BIN=$NOAMX; else BIN=$HOME/.cache/pocket-peers/llama.cpp/build/bin; fi
export LD_LIBRARY_PATH=$NOAMX:$BIN
OUT=testdata/exec
TOOL=$(mktemp -d)/exec-logits-golden
cc -O2 -o "$TOOL" scripts/exec-logits-golden.c -I"$LLAMA/include" -I"$LLAMA/ggml/include" \
   -L"$BIN" -lllama
TOKENS="1 50 100 150 200 250 287 3 17 42 99 128 64 32 16 8"
echo "$TOKENS" > $OUT/tiny-llama.tokens
for q in q8_0 q4_k_m f16; do
  "$TOOL" testdata/tiny-llama-$q.gguf $OUT/tiny-llama-$q.logits.f32 $TOKENS
done
: > $OUT/gemma-greedy.txt
while IFS= read -r p; do
  printf '%s\n' "$p" >> $OUT/gemma-greedy.txt
  "$TOOL" --greedy "$GEMMA" 16 "$p" >> $OUT/gemma-greedy.txt
done < $OUT/gemma-prompts.txt
"$BIN/llama-perplexity" -m "$GEMMA" -f $OUT/ppl-text.txt -c 128 -t 2 2>&1 \
  | grep -E '^\[1\]|Final estimate' > $OUT/gemma-ppl-c128.txt
cat $OUT/gemma-ppl-c128.txt
# Per CPU class (CLASS=avx2 on an AVX2-only machine): greedy ids and the logits of one 30-token
# batch (every 64th), which tests/exec_gemma.rs holds at the matching POCKET_CPU level.
if [ -n "${CLASS:-}" ]; then
  : > $OUT/gemma-greedy.$CLASS.txt
  while IFS= read -r p; do
    printf '%s\n' "$p" >> $OUT/gemma-greedy.$CLASS.txt
    "$TOOL" --greedy "$GEMMA" 16 "$p" >> $OUT/gemma-greedy.$CLASS.txt
  done < $OUT/gemma-prompts.txt
  "$TOOL" "$GEMMA" /tmp/pocket-gemma-seq.f32 $(cat $OUT/gemma-seq.tokens)
  python3 -c "
import numpy as np
np.fromfile('/tmp/pocket-gemma-seq.f32', dtype='<f4').reshape(-1, 262144)[:, ::64].astype('<f4').tofile('$OUT/gemma-seq-logits-every64.$CLASS.f32')"
  rm -f /tmp/pocket-gemma-seq.f32
  exit 0
fi
# gemma-3 270M logits after BOS alone (position 0: no attention mixing), every 64th of the 262144.
"$TOOL" "$GEMMA" /tmp/pocket-gemma-bos.f32 2
python3 -c "
import numpy as np
np.fromfile('/tmp/pocket-gemma-bos.f32', dtype='<f4')[::64].astype('<f4').tofile('$OUT/gemma-bos-logits-every64.f32')"
rm -f /tmp/pocket-gemma-bos.f32
