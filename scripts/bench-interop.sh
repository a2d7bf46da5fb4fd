#!/usr/bin/env bash
# Times pocket's split, merge, convert and in-place meta edit against the peers in the same run, on
# the real model (gemma-3 270M Q4_K_M), checks the outputs are byte-identical where they should be,
# and prints the ratios (peer time / pocket time; > 1 means pocket is faster). Single-threaded tools
# on both sides. Usage: source ~/.cache/pocket-peers/env.sh && bash scripts/bench-interop.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
P=$PWD/target/release/pocket
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
now() { date +%s.%N; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a:.3f} s vs {b:.3f} s: x{a/b:.2f}')" "$1" "$2"; }

# split --split-max-size 100M
t0=$(now); llama-gguf-split --split --split-max-size 100M "$GEMMA" "$d/l" >/dev/null 2>&1; t1=$(now)
$P split "$GEMMA" "$d/p" --split-max-size 100M >/dev/null; t2=$(now)
for f in "$d"/l-*.gguf; do cmp -s "$f" "$d/p${f#"$d/l"}" || { echo "split: $f differs"; exit 1; }; done
echo "split   (llama-gguf-split vs pocket, shards byte-identical): $(ratio "$(echo "$t1-$t0"|bc)" "$(echo "$t2-$t1"|bc)")"

t0=$(now); llama-gguf-split --merge "$d/l-00001-of-00003.gguf" "$d/lm.gguf" >/dev/null 2>&1; t1=$(now)
$P merge "$d/p-00001-of-00003.gguf" "$d/pm.gguf" >/dev/null; t2=$(now)
cmp -s "$d/lm.gguf" "$d/pm.gguf" || { echo "merge differs"; exit 1; }
echo "merge   (llama-gguf-split vs pocket, byte-identical):        $(ratio "$(echo "$t1-$t0"|bc)" "$(echo "$t2-$t1"|bc)")"
rm -f "$d"/l-* "$d"/p-* "$d/lm.gguf" "$d/pm.gguf"

# convert: gguf-convert-endian refuses gemma's Q5_0 tensors, so the peer comparison is on the tiny
# Q4_K_M model (Q4_K, Q6_K, F32), which it handles; pocket alone on the real model.
cp testdata/tiny-llama-q4_k_m.gguf "$d/g.gguf"
t0=$(now); echo YES | python3 -m gguf.scripts.gguf_convert_endian "$d/g.gguf" big >/dev/null 2>&1; t1=$(now)
$P convert testdata/tiny-llama-q4_k_m.gguf "$d/p.gguf" --endian big >/dev/null; t2=$(now)
cmp -s "$d/g.gguf" "$d/p.gguf" || { echo "convert differs"; exit 1; }
echo "convert tiny Q4_K_M (gguf-convert-endian vs pocket, byte-identical): $(ratio "$(echo "$t1-$t0"|bc)" "$(echo "$t2-$t1"|bc)")"
t0=$(now); $P convert "$GEMMA" "$d/be.gguf" --endian big >/dev/null; t1=$(now)
echo "convert gemma-3 270M to big-endian, pocket: $(echo "$t1-$t0"|bc) s (gguf-convert-endian: refuses Q5_0)"
rm -f "$d/be.gguf"

# meta: one in-place scalar edit (the only kind gguf_set_metadata does)
cp "$GEMMA" "$d/a.gguf"; cp "$GEMMA" "$d/b.gguf"
t0=$(now); python3 -m gguf.scripts.gguf_set_metadata --force "$d/a.gguf" gemma3.context_length 4096 >/dev/null 2>&1; t1=$(now)
$P meta set "$d/b.gguf" gemma3.context_length 4096 >/dev/null; t2=$(now)
cmp -s "$d/a.gguf" "$d/b.gguf" || { echo "meta set differs"; exit 1; }
echo "meta set in place (gguf_set_metadata vs pocket, byte-identical): $(ratio "$(echo "$t1-$t0"|bc)" "$(echo "$t2-$t1"|bc)")"
