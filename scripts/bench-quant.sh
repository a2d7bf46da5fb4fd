#!/usr/bin/env bash
# Block-format kernels, pocket vs ggml, same run, same values (512 rows x 4096, xorshift gaussian):
# quantize_chunk vs ggml_quantize_chunk per type, plain and with an importance matrix, on 1 and on
# NTHREADS threads (default 2), then decoding (to_float / dequantize_row, 1 thread, imatrix column
# "deq"). Prints both times, the ratio (ggml / pocket: >1 means pocket is faster) and whether the
# outputs are identical (fnv-1a of the bytes or of the f32s).
set -euo pipefail
source "${POCKET_PEERS:-$HOME/.cache/pocket-peers}/env.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-2}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cc -O2 -I"$LLAMA/ggml/include" "$here/scripts/bench-quant.c" -L"$LLAMA/build/bin" -lggml-base -lpthread -lm -o "$tmp/bench-ggml"
(cd "$here" && cargo build --release --quiet --example bench_quant)
LD_LIBRARY_PATH="$LLAMA/build/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/bench-ggml" "$n" > "$tmp/ggml.txt"
"$here/target/release/examples/bench_quant" "$n" > "$tmp/pocket.txt"
printf '%-6s %-8s %-7s %10s %10s %7s  %s\n' type imatrix threads ggml_s pocket_s ratio bytes
paste -d' ' "$tmp/ggml.txt" "$tmp/pocket.txt" | while read -r t i th gs gh t2 i2 th2 ps ph; do
    [ "$t $i $th" = "$t2 $i2 $th2" ] || { echo "row mismatch: $t $i $th / $t2 $i2 $th2" >&2; exit 1; }
    same=identical; [ "$gh" = "$ph" ] || same=DIFFERENT
    printf '%-6s %-8s %-7s %10s %10s %7.2f  %s\n' "$t" "$i" "$th" "$gs" "$ps" "$(echo "$gs / $ps" | bc -l)" "$same"
done
