#!/usr/bin/env bash
# Budgeted requantization against llama-quantize's standard mixes (issue 24, parts 2-3), same run:
# for each standard mix (default Q3_K_M, Q4_K_S, Q4_K_M, IQ4_XS), llama-quantize makes the standard
# file with an importance matrix; `pocket requantize --target-size <that file's size> --measure`
# makes a budgeted one and writes its --tensor-type-file; llama-quantize given that file must write
# the same bytes; then llama-perplexity measures both files' KL-divergence from the source.
#   scripts/check-budget.sh [SOURCE.gguf] [MIX...]
# SOURCE defaults to an F16 copy of $GEMMA (made by llama-quantize, cached like bench-types.sh's).
# Texts: the imatrix and --measure read one half of Python's pydoc topics (plain English prose
# about Python), the KL-divergence is measured on the other half (8 chunks of 512 tokens), so the
# choice is not scored on the text it was made with.
# Note: $GEMMA's only public form is Q4_K_M, so its F16 copy holds exactly the values of that mix:
# the standard Q4_K_M remakes the original (KLD ~0) and can at best be tied there.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
POCKET=${POCKET:-target/release/pocket}
[ -x "$POCKET" ] || cargo build --release
DIR=${POCKET_BUDGET_DIR:-$HOME/.cache/pocket-peers/budget}
mkdir -p "$DIR"
SRC=${1:-}
if [ -z "$SRC" ]; then
  SRC=$HOME/.cache/pocket-peers/types/f16.gguf
  if [ ! -f "$SRC" ]; then
    mkdir -p "$(dirname "$SRC")"
    llama-quantize --allow-requantize "$GEMMA" "$SRC.tmp" F16 > "$DIR/f16.log" 2>&1
    mv "$SRC.tmp" "$SRC"
  fi
fi
shift || true
MIXES=("$@")
[ ${#MIXES[@]} -gt 0 ] || MIXES=(Q3_K_M Q4_K_S Q4_K_M IQ4_XS)
name=$(basename "$SRC" .gguf)
python3 - "$DIR" <<'PY'
import sys, sysconfig, os
d = sys.argv[1]
src = os.path.join(sysconfig.get_paths()["stdlib"], "pydoc_data", "topics.py")
s = open(src).read().encode().decode("unicode_escape", errors="ignore")
prose = [l.strip() for l in s.split("\n")]
prose = [l for l in prose if len(l) > 60 and not l.startswith((">>>", "...")) and l.count(" ") > 8]
t = "\n".join(prose)
open(os.path.join(d, "calib.txt"), "w").write(t[: len(t) // 2][:80000])
open(os.path.join(d, "eval.txt"), "w").write(t[len(t) // 2 :][:80000])
PY
IM=$DIR/$name-imatrix.gguf
[ -f "$IM" ] || "$POCKET" imatrix "$SRC" -f "$DIR/calib.txt" -o "$IM" -c 512 --chunks 12 -q
BASE=$DIR/$name-eval.kld
[ -f "$BASE" ] || llama-perplexity -m "$SRC" -f "$DIR/eval.txt" -c 512 -t 2 --chunks 8 \
  --kl-divergence-base "$BASE" > "$DIR/base.log" 2>&1
kld() {
  llama-perplexity -m "$1" -t 2 --kl-divergence-base "$BASE" --kl-divergence 2>&1 \
    | awk '/^Mean    KLD/{k=$3} /^Same top p/{s=$4} END{printf "%s %s", k, s}'
}
printf "%-8s %14s %10s %9s   %14s %10s %9s   %s\n" mix "std bytes" "std KLD" "std top" \
  "budget bytes" "bud KLD" "bud top" "llama-quantize --tensor-type-file"
fail=0
for m in "${MIXES[@]}"; do
  std=$DIR/$name-std-$m.gguf
  [ -f "$std" ] || llama-quantize --imatrix "$IM" "$SRC" "$std" "$m" 2 > "$DIR/std-$m.log" 2>&1
  size=$(stat -c %s "$std")
  bud=$DIR/$name-budget-$m.gguf tt=$DIR/$name-budget-$m.txt
  "$POCKET" requantize "$SRC" "$bud" Q4_K_M --imatrix "$IM" --target-size "$size" \
    --measure "$DIR/calib.txt" --write-tensor-types "$tt" --force > "$DIR/budget-$m.log"
  llama-quantize --imatrix "$IM" --tensor-type-file "$tt" "$SRC" "$DIR/llq.gguf" Q4_K_M 2 \
    > "$DIR/llq-$m.log" 2>&1
  if cmp -s "$bud" "$DIR/llq.gguf"; then same="identical"; else same="DIFFERS"; fail=1; fi
  rm -f "$DIR/llq.gguf"
  read -r sk st <<< "$(kld "$std")"
  read -r bk bt <<< "$(kld "$bud")"
  printf "%-8s %14s %10s %8s%%   %14s %10s %8s%%   %s\n" "$m" "$size" "$sk" "$st" \
    "$(stat -c %s "$bud")" "$bk" "$bt" "$same"
done
exit $fail
