#!/usr/bin/env bash
# Regenerates testdata/ggml-types.txt from the peer llama.cpp build (../shared/peers/setup.sh llama).
set -euo pipefail
source "${POCKET_PEERS:-$HOME/.cache/pocket-peers}/env.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cc -O1 -I"$LLAMA/ggml/include" "$here/scripts/ggml-types.c" -L"$LLAMA/build/bin" -lggml-base -o "$tmp/ggml-types"
"$tmp/ggml-types" > "$here/testdata/ggml-types.txt"
echo "wrote testdata/ggml-types.txt ($(wc -l < "$here/testdata/ggml-types.txt") types)"
