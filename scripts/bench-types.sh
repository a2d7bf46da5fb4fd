#!/usr/bin/env bash
# Weight types benchmark (issue 20): gemma-3 270M re-quantized by llama-quantize from an F16 copy of
# $GEMMA into F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_M, Q5_K_M, IQ4_XS, Q2_K_PURE, Q3_K_PURE, TQ2_0, Q1_0,
# IQ3_S, IQ2_XS (cached under ~/.cache/pocket-peers/types/; a `_PURE` type is `llama-quantize --pure`:
# gemma-3 270M's Q2_K mix holds no Q2_K tensor and its Q3_K_M mix no Q3_K tensor, its 640-column
# matrices falling back to Q4_0, so these two put Q2_K / Q3_K in every matrix whose rows allow it;
# IQ2_XXS/IQ2_XS/IQ2_S with an importance matrix that llama-imatrix makes from the F16 copy over
# testdata/exec/ppl-text.txt, -c 128), then for each: `pocket bench` and `llama-bench` in the same run,
# 2 threads, pp128 and tg64, alternating test by test (scripts/bench-exec.py's helpers), and a table
# type x test x llama / pocket x ratio, with tg's fraction of the memory-bandwidth limit.
# With --ppl, also `pocket perplexity` against `llama-perplexity` (-c 128, testdata/exec/ppl-text.txt,
# every chunk, 2 threads) per type, with their ratio.
#
# Usage: source ~/.cache/pocket-peers/env.sh && bash scripts/bench-types.sh [-r REPS] [--ppl|--ppl-only] [TYPE...]
# Exit status 1 if pocket is below 1.0x llama-bench on a test, or (with --ppl) off by more than 1%.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
REPS=3 PPL=0 BENCH=1 TYPES=()
while [ $# -gt 0 ]; do
  case "$1" in
    -r) REPS=$2; shift 2 ;;
    --ppl) PPL=1; shift ;;
    --ppl-only) PPL=1 BENCH=0; shift ;;
    *) TYPES+=("$1"); shift ;;
  esac
done
[ ${#TYPES[@]} -gt 0 ] || TYPES=(F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_M Q5_K_M IQ4_XS Q2_K_PURE Q3_K_PURE TQ2_0 Q1_0 IQ3_S IQ2_XS)
DIR=$POCKET_PEERS/types
mkdir -p "$DIR"
if [ ! -f "$DIR/f16.gguf" ]; then
  llama-quantize --allow-requantize "$GEMMA" "$DIR/f16.gguf.tmp" F16 > "$DIR/quantize.log" 2>&1
  mv "$DIR/f16.gguf.tmp" "$DIR/f16.gguf"
fi
for t in "${TYPES[@]}"; do
  f=$DIR/$(echo "$t" | tr 'A-Z' 'a-z').gguf
  if [ ! -f "$f" ]; then
    IM=()
    case "$t" in IQ2_XXS|IQ2_XS|IQ2_S)
      if [ ! -f "$DIR/imatrix-f16.gguf" ]; then
        llama-imatrix -m "$DIR/f16.gguf" -f testdata/exec/ppl-text.txt -c 128 -t 2 \
          -o "$DIR/imatrix-f16.tmp.gguf" >> "$DIR/quantize.log" 2>&1
        mv "$DIR/imatrix-f16.tmp.gguf" "$DIR/imatrix-f16.gguf"
      fi
      IM=(--imatrix "$DIR/imatrix-f16.gguf") ;;
    esac
    if [[ $t == *_PURE ]]; then
      llama-quantize --pure "${IM[@]}" "$DIR/f16.gguf" "$f.tmp" "${t%_PURE}" >> "$DIR/quantize.log" 2>&1
    else
      llama-quantize "${IM[@]}" "$DIR/f16.gguf" "$f.tmp" "$t" >> "$DIR/quantize.log" 2>&1
    fi
    mv "$f.tmp" "$f"
  fi
done
cargo build --release -q
python3 - "$DIR" "$REPS" "$PPL" "$BENCH" "${TYPES[@]}" <<'PY'
import importlib.util, json, os, re, subprocess, sys
spec = importlib.util.spec_from_file_location("bench_exec", "scripts/bench-exec.py")
be = importlib.util.module_from_spec(spec)
spec.loader.exec_module(be)
if not os.path.exists(os.path.join(be.NOAMX, "llama-bench")):
    # No no-AMX build (scripts/peers-noamx.sh): the default build is the one for CPUs without AMX.
    import shutil
    be.NOAMX = os.path.dirname(shutil.which("llama-bench"))
d, reps, ppl, bench, types = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1", sys.argv[5:]
rows, ppls, ok = [], [], True
for t in types:
    model = os.path.join(d, t.lower() + ".gguf")
    for test in [("pp", 128), ("tg", 64)] if bench else []:
        lm, ls = be.llama_bench(model, test, reps)
        pm, ps, doc = be.pocket_bench(model, test, reps, bandwidth=test[0] == "tg")
        ratio = pm / lm
        ok &= ratio >= 1.0
        frac = ""
        if test[0] == "tg" and doc.get("memory_bandwidth"):
            limit = doc["memory_bandwidth"] / doc["weight_bytes_per_token"]
            frac = f"{100 * pm / limit:.0f}% / {100 * lm / limit:.0f}%"
        rows.append((t, f"{test[0]}{test[1]}", lm, ls, pm, ps, ratio, frac))
        print(f"{t} {test[0]}{test[1]}: llama {lm:.2f} pocket {pm:.2f} ({ratio:.2f}x) {frac}", flush=True)
    if ppl:
        text = "testdata/exec/ppl-text.txt"
        # pocket perplexity runs on rayon's pool: 2 threads as llama-perplexity's -t 2.
        penv = dict(os.environ, RAYON_NUM_THREADS="2")
        ours = json.loads(subprocess.run(["target/release/pocket", "perplexity", model, "-f", text, "-c", "128",
                                          "--json"], capture_output=True, text=True, check=True, env=penv).stdout)
        env = dict(os.environ, LD_LIBRARY_PATH=be.NOAMX)
        out = subprocess.run([os.path.join(be.NOAMX, "llama-perplexity"), "-m", model, "-f", text, "-c", "128",
                              "-t", "2"], capture_output=True, text=True, env=env)
        m = re.search(r"Final estimate: PPL = ([0-9.]+)", out.stdout + out.stderr)
        theirs = float(m.group(1)) if m else float("nan")
        r = ours["ppl"] / theirs
        ok &= abs(r - 1) <= 0.01
        ppls.append((t, ours["ppl"], theirs, r, len(ours["chunks"])))
        print(f"{t} perplexity: pocket {ours['ppl']:.4f} llama {theirs:.4f} ({r:.4f})", flush=True)
if rows:
    print("\n| type | test | llama-bench t/s | pocket t/s | pocket / llama | tg: % of bandwidth limit (pocket / llama) |")
    print("|---|---|---|---|---|---|")
for t, test, lm, ls, pm, ps, ratio, frac in rows:
    print(f"| {t} | {test} | {lm:.2f} ± {ls:.2f} | {pm:.2f} ± {ps:.2f} | {ratio:.2f}x | {frac} |")
if ppls:
    print("\n| type | pocket PPL | llama-perplexity PPL | ratio | chunks |")
    print("|---|---|---|---|---|")
    for t, a, b, r, c in ppls:
        print(f"| {t} | {a:.4f} | {b:.4f} | {r:.4f} | {c} |")
sys.exit(0 if ok else 1)
PY
