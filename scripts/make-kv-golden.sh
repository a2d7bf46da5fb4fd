#!/usr/bin/env bash
# Regenerates the goldens of tests/memory.rs from llama.cpp's own log lines when it loads a model at a
# context length (llama-completion -c N, its common defaults: n_batch 2048, n_ubatch 512, flash
# attention auto = on for the CPU):
#  - testdata/expected/kv-cache.txt: the KV cache it allocates ("llama_kv_cache: size = ... (N cells,
#    L layers ...)"), one line per cache:  MODEL CTX CELLS LAYERS BYTES
#  - testdata/expected/compute-buffer.txt: its compute and output buffers ("CPU compute buffer size =
#    X MiB", "CPU output buffer size = Y MiB", printed to 0.01 MiB) and the KV total (0 when it makes
#    no cache, as for an embedding model), one line per model and context:
#      MODEL CTX N_UBATCH COMPUTE_MIB OUTPUT_MIB KV_MIB
# Models: gemma-3 270M, the tiny llama, and the zoo's Qwen2.5-Coder 1.5B and nomic-embed-text-v1.5
# (scripts/fetch-models.sh). Needs the peers (../shared/peers/setup.sh). llama-completion is stopped
# after one token.
set -euo pipefail
source "${POCKET_PEERS:-$HOME/.cache/pocket-peers}/env.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/testdata/expected/kv-cache.txt"
cout="$here/testdata/expected/compute-buffer.txt"
zoo() { bash "$here/scripts/fetch-models.sh" "$1" | sed -n "s/^$1 //p"; }
: > "$out.tmp"; : > "$cout.tmp"
for model in gemma-3-270m-q4_k_m:"$GEMMA" tiny-llama-q8_0:"$here/testdata/tiny-llama-q8_0.gguf" \
    qwen2.5-coder-1.5b-instruct-q4_k_m:"$(zoo qwen)" nomic-embed-text-v1.5-f16:"$(zoo nomic)"; do
  name=${model%%:*}; path=${model#*:}
  for ctx in 100 512 1000 4096 32768; do
    # The log lines come before any compute; a crash after them does not matter here. Each context
    # is created twice (llama.cpp first fits its parameters to the device): the last lines count.
    # A run killed early (a busy machine) has no buffer lines: try again, up to three times.
    for _ in 1 2 3; do
      log=$(llama-completion -m "$path" -c "$ctx" -n 1 -p hi -no-cnv --no-warmup -t 2 -v 2>&1 || true)
      grep -q 'CPU compute buffer size =' <<< "$log" && break
    done
    sed -n 's/.*llama_kv_cache: size = *\([0-9.]*\) MiB ( *\([0-9]*\) cells, *\([0-9]*\) layers.*/\1 \2 \3/p' <<< "$log" \
      | while read -r mib cells layers; do
          echo "$name $ctx $cells $layers $(python3 -c "print(round($mib*1048576))")" >> "$out.tmp"
        done
    # The last context llama.cpp created: from its last "llama_context: n_ctx" line on.
    last=$(awk '/llama_context: n_ctx  /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' <<< "$log")
    ub=$(sed -n 's/.*llama_context: n_ubatch *= *\([0-9]*\).*/\1/p' <<< "$last")
    compute=$(sed -n 's/.*CPU compute buffer size = *\([0-9.]*\) MiB.*/\1/p' <<< "$last")
    output=$(sed -n 's/.*CPU  *output buffer size = *\([0-9.]*\) MiB.*/\1/p' <<< "$last")
    kv=$(sed -n 's/.*llama_kv_cache: size = *\([0-9.]*\) MiB.*/\1/p' <<< "$last" \
      | python3 -c "import sys; print(f'{sum(float(x) for x in sys.stdin.read().split()):.2f}')")
    [ -n "$compute" ] && [ -n "$output" ] || { echo "no buffer lines for $name at $ctx" >&2; exit 1; }
    echo "$name $ctx $ub $compute $output $kv" >> "$cout.tmp"
  done
done
awk '!seen[$0]++' "$out.tmp" > "$out"; rm "$out.tmp"  # each context is created twice
mv "$cout.tmp" "$cout"
echo "wrote $out ($(wc -l < "$out") caches) and $cout ($(wc -l < "$cout") contexts)"

# The llama-3-8B header of tests/verify.rs (testdata/headers, no vocabulary, no tensor data): with a
# placeholder 128,256-token vocabulary and a sparse data section llama.cpp sizes its buffers from the
# header alone (its parameter-fitting pass prints them before any weight is read). Printed, not saved:
# tests/verify.rs holds the 266.50 MiB compute and 0.49 MiB output buffers it shows at -c 4096.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed -e "s#^OUT = .*#OUT = \"$tmp/l3.gguf\"#" \
    -e 's#w.add_tokenizer_model("gpt2")#w.add_tokenizer_model("llama"); w.add_token_list([f"<t{i}>".encode() for i in range(N_VOCAB)]); w.add_token_scores([0.0] * N_VOCAB); w.add_token_types([1] * N_VOCAB)#' \
    -e 's#w.add_tokenizer_pre("llama-bpe")#pass#' "$here/scripts/make-llama3-8b-header.py" > "$tmp/mk.py"
PYTHONPATH="$LLAMA/gguf-py" python3 "$tmp/mk.py" > /dev/null
python3 - "$tmp/l3.gguf" <<'PY'
import os, sys
N_LAYER, N_EMBD, N_HEAD_KV, N_FF, N_VOCAB, HEAD = 32, 4096, 8, 14336, 128256, 128
Q4K, Q6K = (256, 144), (256, 210)
nb = lambda n, t: n // t[0] * t[1]
more = lambda i, n: i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2
s = [nb(N_EMBD * N_VOCAB, Q4K)]
for i in range(N_LAYER):
    m = more(i, N_LAYER)
    s += [N_EMBD * 4, nb(N_EMBD * N_EMBD, Q4K), nb(N_EMBD * HEAD * N_HEAD_KV, Q4K),
          nb(N_EMBD * HEAD * N_HEAD_KV, Q6K if m else Q4K), nb(N_EMBD * N_EMBD, Q4K), N_EMBD * 4,
          nb(N_EMBD * N_FF, Q4K), nb(N_EMBD * N_FF, Q4K), nb(N_FF * N_EMBD, Q6K if m else Q4K)]
s += [N_EMBD * 4, nb(N_EMBD * N_VOCAB, Q6K)]
pad = lambda x: (x + 31) // 32 * 32
os.truncate(sys.argv[1], pad(os.path.getsize(sys.argv[1])) + sum(pad(x) for x in s))
PY
echo "llama-3-8B header at -c 4096:"
(timeout 120 llama-completion -m "$tmp/l3.gguf" -c 4096 -n 1 -p hi -no-cnv --no-warmup -t 2 -v 2>&1 || true) \
  | grep -m2 -E 'CPU compute buffer size|CPU  *output buffer size'
