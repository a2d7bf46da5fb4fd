#!/usr/bin/env bash
# The tiny gemma, gemma2, granite, phi3, smollm3, mistral3 and lfm2 models and their llama.cpp
# goldens (tests/exec_arch21.rs, tests/exec_lfm2.rs). `make-tiny-arch-goldens.sh ARCH...` remakes those only.
# Needs the peers (source ~/.cache/pocket-peers/env.sh); uses the no-AMX build when there is one
# (scripts/peers-noamx.sh), else the default build. For each ARCH:
#  - testdata/exec/tiny-ARCH-q8_0.gguf: scripts/make-tiny-arch.py (gguf-py, seeded, byte-reproducible);
#  - testdata/exec/tiny-arch.tokens: the 16-token sequence (the same for all);
#  - testdata/exec/tiny-ARCH-q8_0.logits.f32: llama.cpp's logits at every position of it, one decode,
#    1 thread, default context settings (scripts/exec-logits-golden.c, as for the tiny qwen3);
#    phi3 also tiny-phi3-q8_0.long.logits.f32 at a context of 512 (above its original 256: the long
#    LongRoPE factors; every other golden's context pads to 256 cells: the short ones);
#  - testdata/exec/tiny-ARCH-greedy.txt: for each of two prompts, the prompt, its ids and 16 greedy ids
#    as llama-simple generates them (exec-logits-golden --greedy);
#  - testdata/exec/tiny-ARCH-ppl-c128.txt: llama-perplexity's running PPL per chunk and final estimate on
#    testdata/exec/ppl-text.txt at -c 128, 4 chunks, 2 threads, its other settings default;
#  - testdata/exec/tiny-arch-kv.txt: the KV caches llama-completion allocates (its common defaults:
#    n_ubatch 512, SWA cache not full-size) at -c 512 and 4096, one line per cache:
#    MODEL CTX CELLS LAYERS BYTES (as testdata/expected/kv-cache.txt; BYTES from the MiB it prints
#    to two decimals); the lines of the architectures not remade are kept;
#  - lfm2 instead: testdata/exec/tiny-lfm2-mem.txt, the memory llama-completion allocates at -c 512,
#    4096 and 32768, one line per cache: MODEL CTX kv CELLS LAYERS BYTES for the attention layers'
#    KV cache, MODEL CTX rs CELLS LAYERS BYTES for the recurrent (conv) state (LAYERS as llama.cpp
#    prints it: all layers; BYTES from its MiB to two decimals, 0 for the tiny model's 3 KiB). So
#    that the state is measured, the same lines for tiny-lfm2-wide-q8_0, a variant made here and
#    not kept (make-tiny-arch.py lfm2-wide: shortconv.l_cache 1025, 1.5 MiB of state); also
#    MODEL CTX compute 0 0 BYTES, its CPU compute buffer.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
ARCHS=${*:-gemma gemma2 granite phi3 smollm3 mistral3 lfm2}
python3 scripts/make-tiny-arch.py $ARCHS
NOAMX=$HOME/.cache/pocket-peers/llama.cpp/build-noamx/bin
if [ -f "$NOAMX/libllama.so" ]; then BIN=$NOAMX; else BIN=$LLAMA/build/bin; fi
export LD_LIBRARY_PATH=$BIN${NOAMX:+:$NOAMX}
OUT=testdata/exec
TMP=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
TOOL=$TMP/exec-logits-golden
cc -O2 -o "$TOOL" scripts/exec-logits-golden.c -I"$LLAMA/include" -I"$LLAMA/ggml/include" -L"$BIN" -lllama
# Ids below 512 (every vocabulary here): a control token first (<s> for the gemmas' SentencePiece
# vocabulary; <fim_suffix> for granite's), then byte tokens and merged pieces.
TOKENS="1 300 301 400 259 260 270 280 290 350 360 370 380 390 400 511"
echo "$TOKENS" > $OUT/tiny-arch.tokens
PROMPTS=("The cat is in the house." "Once upon a time, there was a small village by the sea")
: > "$TMP/kv"
for a in $ARCHS; do
  m=$OUT/tiny-$a-q8_0.gguf
  "$TOOL" "$m" $OUT/tiny-$a-q8_0.logits.f32 $TOKENS 2>"$TMP/log" || { cat "$TMP/log"; exit 1; }
  if [ "$a" = phi3 ]; then
    "$TOOL" --ctx 512 "$m" $OUT/tiny-$a-q8_0.long.logits.f32 $TOKENS 2>"$TMP/log" || { cat "$TMP/log"; exit 1; }
  fi
  : > $OUT/tiny-$a-greedy.txt
  for p in "${PROMPTS[@]}"; do
    echo "$p" >> $OUT/tiny-$a-greedy.txt
    "$TOOL" --greedy "$m" 16 "$p" 2>"$TMP/log" >> $OUT/tiny-$a-greedy.txt || { cat "$TMP/log"; exit 1; }
  done
  # A short run can exit before llama.cpp's logger thread has written its last lines (seen here about
  # one run in three): run again until the final estimate is there.
  for _ in 1 2 3 4 5; do
    rm -f "$TMP/ppl.log"
    "$BIN/llama-perplexity" -m "$m" -f $OUT/ppl-text.txt -c 128 --chunks 4 -t 2 --log-file "$TMP/ppl.log" \
      > "$TMP/ppl.out" 2>&1 || { cat "$TMP/ppl.out" >&2; exit 1; }
    grep -q 'Final estimate' "$TMP/ppl.log" && break
  done
  { grep -oE '\[[0-9]+\][0-9.]+,' "$TMP/ppl.log" | tr -d '\n'; echo
    grep -oE 'Final estimate.*' "$TMP/ppl.log"; } > $OUT/tiny-$a-ppl-c128.txt
  if [ "$a" = lfm2 ]; then
    python3 scripts/make-tiny-arch.py lfm2-wide "$TMP/tiny-lfm2-wide-q8_0.gguf" > /dev/null
    : > "$TMP/mem"
    for mm in "$m" "$TMP/tiny-lfm2-wide-q8_0.gguf"; do
      name=$(basename "$mm" .gguf)
      for ctx in 512 4096 32768; do
        log=$("$BIN/llama-completion" -m "$mm" -c $ctx -n 1 -p hi -no-cnv --no-warmup -t 2 -v 2>&1 || true)
        last=$(awk '/llama_context: n_ctx  /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' <<< "$log")
        sed -n 's/.*llama_kv_cache: size = *\([0-9.]*\) MiB ( *\([0-9]*\) cells, *\([0-9]*\) layers.*/kv \1 \2 \3/p;
                s/.*llama_memory_recurrent: size = *\([0-9.]*\) MiB ( *\([0-9]*\) cells, *\([0-9]*\) layers.*/rs \1 \2 \3/p;
                s/.*CPU compute buffer size = *\([0-9.]*\) MiB.*/compute \1 0 0/p' <<< "$last" \
          | while read -r kind mib cells layers; do
              echo "$name $ctx $kind $cells $layers $(python3 -c "print(round($mib*1048576))")" >> "$TMP/mem"
            done
      done
    done
    cp "$TMP/mem" $OUT/tiny-lfm2-mem.txt
    echo "== $a"; cat $OUT/tiny-$a-greedy.txt $OUT/tiny-$a-ppl-c128.txt $OUT/tiny-lfm2-mem.txt
    continue
  fi
  for ctx in 512 4096; do
    log=$("$BIN/llama-completion" -m "$m" -c $ctx -n 1 -p hi -no-cnv --no-warmup -t 2 -v 2>&1 || true)
    # Each context is created twice (llama.cpp first fits its parameters): the last one counts.
    last=$(awk '/llama_context: n_ctx  /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' <<< "$log")
    sed -n 's/.*llama_kv_cache: size = *\([0-9.]*\) MiB ( *\([0-9]*\) cells, *\([0-9]*\) layers.*/\1 \2 \3/p' <<< "$last" \
      | while read -r mib cells layers; do
          echo "tiny-$a-q8_0 $ctx $cells $layers $(python3 -c "print(round($mib*1048576))")" >> "$TMP/kv"
        done
  done
  echo "== $a"; cat $OUT/tiny-$a-greedy.txt $OUT/tiny-$a-ppl-c128.txt
done
# Keep the other architectures' lines, in the order of the default list.
for a in gemma gemma2 granite phi3 smollm3 mistral3; do
  if grep -q "^tiny-$a-q8_0 " "$TMP/kv"; then grep "^tiny-$a-q8_0 " "$TMP/kv"
  else grep "^tiny-$a-q8_0 " $OUT/tiny-arch-kv.txt || true; fi
done > "$TMP/kv.all"
cp "$TMP/kv.all" $OUT/tiny-arch-kv.txt
cat $OUT/tiny-arch-kv.txt
