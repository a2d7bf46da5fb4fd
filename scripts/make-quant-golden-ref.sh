#!/usr/bin/env bash
# Regenerates testdata/quant_ref/ (Q8_K and Q8_1 through ggml's reference functions, see
# scripts/quant-golden-ref.c) from the peer llama.cpp build, on the inputs of testdata/quant/.
set -euo pipefail
source "${POCKET_PEERS:-$HOME/.cache/pocket-peers}/env.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cc -O2 "$here/scripts/quant-golden-ref.c" -L"$LLAMA/build/bin" -lggml-base -lm -o "$tmp/quant-golden-ref"
rm -rf "$here/testdata/quant_ref"; mkdir -p "$here/testdata/quant_ref"
LD_LIBRARY_PATH="$LLAMA/build/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$tmp/quant-golden-ref" "$here/testdata/quant/inputs.f32" "$here/testdata/quant_ref"
echo "wrote testdata/quant_ref ($(ls "$here/testdata/quant_ref" | wc -l) files, $(du -sh "$here/testdata/quant_ref" | cut -f1))"
