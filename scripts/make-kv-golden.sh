#!/usr/bin/env bash
# Regenerates testdata/expected/kv-cache.txt: the KV cache llama.cpp allocates for a model at a context
# length, read from its own log lines ("llama_kv_cache: size = ... (N cells, L layers ...)"), so that
# tests/memory.rs can check `pocket inspect --ctx` against them. One line per cache:
#   MODEL CTX CELLS LAYERS BYTES
# Needs the peers (../shared/peers/setup.sh). llama-completion is stopped after one token.
set -euo pipefail
source "${POCKET_PEERS:-$HOME/.cache/pocket-peers}/env.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/testdata/expected/kv-cache.txt"
: > "$out.tmp"
for model in gemma-3-270m-q4_k_m:"$GEMMA" tiny-llama-q8_0:"$here/testdata/tiny-llama-q8_0.gguf"; do
  name=${model%%:*}; path=${model#*:}
  for ctx in 100 512 1000 4096 32768; do
    # The log lines come before any compute; a crash after them does not matter here.
    (llama-completion -m "$path" -c "$ctx" -n 1 -p hi -no-cnv --no-warmup -t 2 -v 2>&1 || true) \
      | sed -n 's/.*llama_kv_cache: size = *\([0-9.]*\) MiB ( *\([0-9]*\) cells, *\([0-9]*\) layers.*/\1 \2 \3/p' \
      | while read -r mib cells layers; do
          echo "$name $ctx $cells $layers $(python3 -c "print(round($mib*1048576))")" >> "$out.tmp"
        done
  done
done
awk '!seen[$0]++' "$out.tmp" > "$out"; rm "$out.tmp"  # each context is created twice
echo "wrote $out ($(wc -l < "$out") caches)"
