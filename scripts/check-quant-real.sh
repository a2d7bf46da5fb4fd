#!/usr/bin/env bash
# Real-weight check of the block formats: the tensors of a model (default: the gemma-3 270M Q4_K_M
# peer, tensors of blocks 0 and 17 and the norms) decoded and re-quantized to every ported type,
# plain and with an importance matrix, by ggml (scripts/check-quant-real.c) and by pocket
# (examples/check_quant_real.rs); prints how many outputs match and any that differ.
set -euo pipefail
source "${POCKET_PEERS:-$HOME/.cache/pocket-peers}/env.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-$GEMMA}
shift || true
prefixes=${*:-blk.0. blk.17. output_norm}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cc -O2 -I"$LLAMA/ggml/include" "$here/scripts/check-quant-real.c" -L"$LLAMA/build/bin" -lggml-base -lm -o "$tmp/check"
(cd "$here" && cargo build --release --quiet --example check_quant_real)
# shellcheck disable=SC2086
LD_LIBRARY_PATH="$LLAMA/build/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/check" "$model" $prefixes > "$tmp/ggml.txt"
# shellcheck disable=SC2086
"$here/target/release/examples/check_quant_real" "$model" $prefixes > "$tmp/pocket.txt"
total=$(wc -l < "$tmp/ggml.txt")
if diff "$tmp/ggml.txt" "$tmp/pocket.txt" > "$tmp/diff.txt"; then
    echo "all $total outputs identical ($(cut -d' ' -f1 "$tmp/ggml.txt" | sort -u | wc -l) tensors)"
else
    echo "DIFFERENT:"; cat "$tmp/diff.txt"; exit 1
fi
