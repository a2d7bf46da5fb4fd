#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/) on stable Rust: RUSTC_BOOTSTRAP=1 lets stable rustc take the
# -Z flags cargo-fuzz passes, and `-s none` needs no sanitizer runtime (which ships with nightly only);
# libFuzzer itself is built from source by libfuzzer-sys. Seeds: every testdata file.
#   bash scripts/fuzz.sh TARGET [SECONDS=600]      e.g. bash scripts/fuzz.sh header 600
# Findings land in fuzz/artifacts/TARGET/; each one fixed becomes a test (tests/hostile_corpus.rs).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: fuzz.sh TARGET [SECONDS]}; secs=${2:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
seeds="$here/fuzz/corpus/$target"
mkdir -p "$seeds"
case "$target" in
  header) cp -n "$here"/testdata/*.gguf "$here"/testdata/hostile/*.gguf "$seeds"/ 2>/dev/null || true ;;
  # The first byte picks the key and the edit; the rest is a model.
  meta_edit_plan)
    for f in "$here"/testdata/tiny-llama-q8_0.gguf "$here"/testdata/values-*.gguf "$here"/testdata/metadata-only.gguf; do
      for pick in 0 65 130 200; do
        { printf "\\$(printf %03o $pick)"; cat "$f"; } > "$seeds/$(basename "$f").$pick"
      done
    done ;;
  tokenize) cp -n "$here"/testdata/vocab/*.inp "$seeds"/ 2>/dev/null || true ;;
  # The first byte picks the ftype (and --allow-requantize): one seed per small model and a few picks.
  requantize_plan)
    for f in "$here"/testdata/tiny-llama-*.gguf "$here"/testdata/requant/*.gguf; do
      [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 4000000 ] || continue
      for pick in 12 143 7 30; do
        { printf "\\$(printf %03o $pick)"; cat "$f"; } > "$seeds/$(basename "$f").$pick"
      done
    done ;;
esac
cd "$here"
RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --release "$target" -- -max_total_time="$secs" -rss_limit_mb=4096 -max_len=1048576
