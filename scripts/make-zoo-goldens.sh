#!/usr/bin/env bash
# Goldens of the model zoo (tests/zoo.rs), from the peers on the zoo's real files
# (scripts/fetch-models.sh): nothing here is written by pocket.
#   source ~/.cache/pocket-peers/env.sh && bash scripts/make-zoo-goldens.sh
# - testdata/zoo/expected/NAME.json: gguf-py 0.19.0's reading (scripts/gguf-py-golden.py) of qwen,
#   nomic and every vocabulary-only file;
# - testdata/zoo/hash/NAME.sha256.txt: llama-gguf-hash --sha256, run from the file's folder;
# - testdata/zoo/derived.tsv: recipes and sha256 of files the peers derive from the zoo (not the bytes):
#     be       gguf-py's gguf-convert-endian (big) of nomic-embed F16
#     split    llama-gguf-split --split --split-max-tensors 40 of nomic-embed, each shard
#     quant    llama-quantize (2 threads) of nomic-embed F16 and of Qwen Q4_K_M (--allow-requantize)
#              to a spread of ftypes
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/testdata/zoo"
mkdir -p "$out/expected" "$out/hash"
declare -A path
while read -r name p; do path[$name]=$p; done < <(bash "$root/scripts/fetch-models.sh" qwen nomic vocab)
files=("${path[qwen]}" "${path[nomic]}")
for v in "${path[vocab]}"/ggml-vocab-*.gguf; do files+=("$v"); done
for f in "${files[@]}"; do
  b=$(basename "$f" .gguf)
  python3 "$root/scripts/gguf-py-golden.py" "$f" "$out/expected/$b.json"
  (cd "$(dirname "$f")" && llama-gguf-hash --sha256 "$(basename "$f")" > "$out/hash/$b.sha256.txt")
done
[ "${1:-}" = "--no-derived" ] && exit 0
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
tsv="$out/derived.tsv"
printf 'kind\tsource\targs\tfile\tsha256\n' > "$tsv"
cp "${path[nomic]}" "$w/nomic-be.gguf"
echo YES | gguf-convert-endian "$w/nomic-be.gguf" big >/dev/null
printf 'be\tnomic\tbig\tnomic-be.gguf\t%s\n' "$(sha256sum "$w/nomic-be.gguf" | cut -d' ' -f1)" >> "$tsv"
llama-gguf-split --split --split-max-tensors 40 "${path[nomic]}" "$w/nomic-split" >/dev/null
for s in "$w"/nomic-split-*.gguf; do
  printf 'split\tnomic\t--split-max-tensors 40\t%s\t%s\n' "$(basename "$s")" "$(sha256sum "$s" | cut -d' ' -f1)" >> "$tsv"
done
for t in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q6_K Q5_K_M Q4_K_M Q4_K_S Q3_K_M Q2_K IQ4_NL IQ4_XS F16 BF16; do
  llama-quantize "${path[nomic]}" "$w/q.gguf" "$t" 2 >/dev/null 2>&1
  printf 'quant\tnomic\t%s\tnomic-%s.gguf\t%s\n' "$t" "$t" "$(sha256sum "$w/q.gguf" | cut -d' ' -f1)" >> "$tsv"
done
for t in Q8_0 Q4_0 Q6_K Q5_K_M Q4_K_S Q3_K_M IQ4_XS; do
  llama-quantize --allow-requantize "${path[qwen]}" "$w/q.gguf" "$t" 2 >/dev/null 2>&1
  printf 'quant\tqwen\t%s\tqwen-%s.gguf\t%s\n' "$t" "$t" "$(sha256sum "$w/q.gguf" | cut -d' ' -f1)" >> "$tsv"
done
cat "$tsv"
