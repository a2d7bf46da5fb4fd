#!/usr/bin/env bash
# Goldens for `pocket hash`: llama-gguf-hash --sha256 on every testdata file llama.cpp can read (the
# values-*.gguf files hold arrays of arrays, which llama.cpp rejects) and on gemma-3 270M, each run
# from the file's folder with its bare name, so the names in the output are the file names.
#   source ~/.cache/pocket-peers/env.sh && bash scripts/make-hash-golden.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/testdata/expected/hash"
mkdir -p "$out"
cd "$root/testdata"
for f in metadata-only.gguf tiny-llama-f16.gguf tiny-llama-q8_0.gguf tiny-llama-q4_k_m.gguf \
         tiny-llama-split-00001-of-00003.gguf tiny-llama-split-00002-of-00003.gguf \
         tiny-llama-split-00003-of-00003.gguf; do
    llama-gguf-hash --sha256 "$f" > "$out/$f.sha256.txt"
done
gemma="${GEMMA:-$(bash "$root/scripts/fetch-model.sh")}"
cd "$(dirname "$gemma")"
llama-gguf-hash --sha256 "$(basename "$gemma")" > "$out/gemma-3-270m-q4_k_m.gguf.sha256.txt"
echo "wrote $(ls "$out" | wc -l) goldens to $out"
