#!/usr/bin/env bash
# `pocket imatrix` against llama-imatrix, in the same run, on the same text, context and chunks
# (issue #24, part 1). For each model:
#  1. llama-imatrix -t 2 and pocket imatrix -t 2, timed (wall and CPU seconds, speed ratio);
#  2. scripts/compare-imatrix.py: keys, tensor names/shapes/types and counts equal, every in_sum2
#     entry within REL (1e-3) relative — and the same comparison of llama-imatrix against itself with
#     only its matmul summation order changed (GGML_CPU_TILED_MM=0): the spread of llama.cpp's own
#     numbers, which an executor that is not bit-identical cannot be held inside of more tightly;
#  3. llama-quantize --imatrix POCKET.gguf to IQ2_XS (a type that refuses to work without an imatrix)
#     must succeed, and `pocket requantize --imatrix POCKET.gguf` to Q4_K_M must write the same bytes
#     as llama-quantize given the same file;
#  4. IQ2_XS and Q2_K_S quantizations of MODEL made with pocket's imatrix and with llama-imatrix's:
#     mean KLD against MODEL itself (llama-perplexity, -c 512, 8 chunks of a held-out text: the second
#     half of Python's pydoc topics) within KLD_REL (2%) of each other.
# usage: scripts/check-imatrix.sh [MODEL...]   (default: $GEMMA and the Qwen 1.5B zoo model if present)
# env: CTX (default 128), CHUNKS (default 8), TEXT (default testdata/exec/ppl-text.txt), REL (1e-3),
#      SPREAD=0 to skip the llama-against-itself run, KLD=0 to skip step 4, KLD_REL (0.02).
set -uo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
CTX=${CTX:-128}
CHUNKS=${CHUNKS:-8}
TEXT=${TEXT:-testdata/exec/ppl-text.txt}
REL=${REL:-1e-3}
SPREAD=${SPREAD:-1}
KLD=${KLD:-1}
KLD_REL=${KLD_REL:-0.02}
QWEN=$POCKET_PEERS/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
if [ $# -gt 0 ]; then MODELS=("$@"); else MODELS=("$GEMMA"); [ -f "$QWEN" ] && MODELS+=("$QWEN"); fi
cargo build --release -q || exit 2
POCKET=$PWD/target/release/pocket
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0

# timed LOG CMD...: runs CMD with stdout+stderr to LOG; sets WALL and CPU (user+sys seconds).
timed() {
  local log=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$TMP/time" "$@" > "$log" 2>&1
  local rc=$?
  read -r WALL U S < "$TMP/time"
  CPU=$(python3 -c "print(round($U + $S, 2))")
  return $rc
}

for M in "${MODELS[@]}"; do
  name=$(basename "$M" .gguf)
  echo "=== $name: -c $CTX --chunks $CHUNKS on $TEXT"
  if ! timed "$TMP/llama.log" llama-imatrix -m "$M" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" -t 2 \
      -o "$TMP/llama.gguf"; then
    tail -5 "$TMP/llama.log"; fail=1; continue
  fi
  lw=$WALL lc=$CPU
  if ! timed "$TMP/pocket.json" "$POCKET" imatrix "$M" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" -t 2 \
      -o "$TMP/pocket.gguf" --force --json; then
    cat "$TMP/pocket.json"; fail=1; continue
  fi
  pw=$WALL pc=$CPU
  echo "time: llama-imatrix ${lw}s wall ${lc}s cpu; pocket ${pw}s wall ${pc}s cpu;" \
    "pocket is $(python3 -c "print(f'{$lw/$pw:.2f}x')") llama-imatrix's speed (wall)," \
    "$(python3 -c "print(f'{$lc/$pc:.2f}x')") (cpu)"
  echo "-- pocket against llama-imatrix:"
  python3 scripts/compare-imatrix.py "$TMP/pocket.gguf" "$TMP/llama.gguf" --rel "$REL" | tail -8 || fail=1
  if [ "$SPREAD" = 1 ]; then
    echo "-- llama-imatrix against itself (GGML_CPU_TILED_MM=0, the vec_dot summation order):"
    GGML_CPU_TILED_MM=0 llama-imatrix -m "$M" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" -t 2 \
      -o "$TMP/llama-notiled.gguf" > "$TMP/llama2.log" 2>&1 || tail -5 "$TMP/llama2.log"
    python3 scripts/compare-imatrix.py "$TMP/llama-notiled.gguf" "$TMP/llama.gguf" --rel "$REL" | tail -4
  fi
  echo "-- llama-quantize --imatrix pocket's file (IQ2_XS):"
  if llama-quantize --allow-requantize --imatrix "$TMP/pocket.gguf" "$M" "$TMP/iq2.gguf" IQ2_XS 2 \
      > "$TMP/q.log" 2>&1; then
    echo "accepted: $(grep -c 'converting to iq2_xs' "$TMP/q.log") tensors to iq2_xs, $(stat -c %s "$TMP/iq2.gguf") bytes"
  else
    echo "REFUSED:"; tail -5 "$TMP/q.log"; fail=1
  fi
  rm -f "$TMP/iq2.gguf"
  echo "-- pocket requantize and llama-quantize, both --imatrix pocket's file (Q4_K_M):"
  llama-quantize --allow-requantize --imatrix "$TMP/pocket.gguf" "$M" "$TMP/l-q4.gguf" Q4_K_M 2 \
    > "$TMP/q.log" 2>&1 || { tail -5 "$TMP/q.log"; fail=1; }
  "$POCKET" -q requantize --allow-requantize --imatrix "$TMP/pocket.gguf" "$M" "$TMP/p-q4.gguf" Q4_K_M 2 \
    > "$TMP/pq.log" 2>&1 || { tail -5 "$TMP/pq.log"; fail=1; }
  if cmp -s "$TMP/l-q4.gguf" "$TMP/p-q4.gguf"; then echo "identical bytes"; else echo "DIFFER"; fail=1; fi
  rm -f "$TMP"/*q4.gguf
  if [ "$KLD" = 1 ]; then
    echo "-- IQ2_XS and Q2_K_S with each imatrix: mean KLD against $name (llama-perplexity -c 512, 8 chunks, held-out text)"
    [ -f "$TMP/eval.txt" ] || python3 - "$TMP/eval.txt" <<'PY'
import sys, sysconfig, os
src = os.path.join(sysconfig.get_paths()["stdlib"], "pydoc_data", "topics.py")
s = open(src).read().encode().decode("unicode_escape", errors="ignore")
prose = [l.strip() for l in s.split("\n")]
prose = [l for l in prose if len(l) > 60 and not l.startswith((">>>", "...")) and l.count(" ") > 8]
t = "\n".join(prose)
open(sys.argv[1], "w").write(t[len(t) // 2 :][:80000])
PY
    llama-perplexity -m "$M" -f "$TMP/eval.txt" -c 512 -t 2 --chunks 8 \
      --kl-divergence-base "$TMP/base.kld" > "$TMP/base.log" 2>&1 || { tail -5 "$TMP/base.log"; fail=1; }
    for ty in IQ2_XS Q2_K_S; do
      for who in pocket llama; do
        llama-quantize --allow-requantize --imatrix "$TMP/$who.gguf" "$M" "$TMP/$who-$ty.gguf" "$ty" 2 \
          > "$TMP/q.log" 2>&1 || { tail -5 "$TMP/q.log"; fail=1; }
        llama-perplexity -m "$TMP/$who-$ty.gguf" -t 2 --kl-divergence-base "$TMP/base.kld" \
          --kl-divergence > "$TMP/kld-$who.log" 2>&1 || { tail -5 "$TMP/kld-$who.log"; fail=1; }
        rm -f "$TMP/$who-$ty.gguf"
      done
      pk=$(awk '/^Mean    KLD/{print $3}' "$TMP/kld-pocket.log")
      lk=$(awk '/^Mean    KLD/{print $3}' "$TMP/kld-llama.log")
      if python3 -c "import sys; p,l,r=map(float,sys.argv[1:]); sys.exit(0 if abs(p-l) <= r*l else 1)" \
          "${pk:-nan}" "${lk:-nan}" "$KLD_REL"; then verdict=ok; else verdict=FAIL; fail=1; fi
      echo "$ty: mean KLD with pocket's imatrix ${pk:-?}, with llama-imatrix's ${lk:-?}," \
        "$(python3 -c "import sys; p,l=map(float,sys.argv[1:]); print(f'{100*(p-l)/l:+.2f}%')" "${pk:-nan}" "${lk:-nan}") ($verdict, limit ${KLD_REL})"
    done
    rm -f "$TMP/base.kld"
  fi
done
[ $fail = 0 ] && echo "check-imatrix: all checks passed" || echo "check-imatrix: some checks FAILED"
exit $fail
