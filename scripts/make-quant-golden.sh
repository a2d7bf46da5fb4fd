#!/usr/bin/env bash
# Regenerates testdata/quant/ from the peer llama.cpp build (../shared/peers/setup.sh llama):
# ggml's bytes for every block format on fixed inputs (see scripts/quant-golden.c).
set -euo pipefail
source "${POCKET_PEERS:-$HOME/.cache/pocket-peers}/env.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cc -O2 -I"$LLAMA/ggml/include" "$here/scripts/quant-golden.c" -L"$LLAMA/build/bin" -lggml-base -lm -o "$tmp/quant-golden"
rm -rf "$here/testdata/quant"; mkdir -p "$here/testdata/quant"
"$tmp/quant-golden" "$here/testdata/quant"
echo "wrote testdata/quant ($(ls "$here/testdata/quant" | wc -l) files, $(du -sh "$here/testdata/quant" | cut -f1))"
