#!/usr/bin/env bash
# Memory goldens of issue #21 (tests/memory_arch21.rs): what llama.cpp allocates beside the weights for
# each tiny architecture model, at contexts 512, 4096 and 32768, read from llama-completion's log
# (-c N -n 1, its common defaults: n_batch 2048, n_ubatch 512, flash attention auto = on for the CPU,
# SWA cache not full-size). Needs the peers (source ~/.cache/pocket-peers/env.sh).
#  - testdata/exec/tiny-arch-buffers.txt, one line per model and context:
#      MODEL CTX N_UBATCH COMPUTE_MIB OUTPUT_MIB CACHE...
#    COMPUTE_MIB / OUTPUT_MIB: "CPU compute buffer size" and "CPU output buffer size" (0.01 MiB as
#    printed); CACHE: one CELLS/LAYERS/MIB per KV cache ("llama_kv_cache: size = ..."), the full cache
#    first, then the sliding-window one (gemma2).
#  - testdata/exec/compute-buffer-shapes.txt: the compute buffer of llama-architecture files whose
#    attention is wider or narrower than n_embd (header + sparse zero data, written here with gguf-py:
#    2 layers, n_vocab 512, head_dim 64), at -c 512, one line per shape:
#      N_EMBD N_HEAD N_HEAD_KV HEAD_DIM N_FF COMPUTE_MIB
#    These pin down where pocket's compute-buffer estimate (src/compute_buffer.rs) stops holding.
# Each context is created twice (llama.cpp first fits its parameters): the last one counts.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
OUT=testdata/exec
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
run() {  # MODEL CTX -> the log of the last context created
  local log
  for _ in 1 2 3; do
    log=$(llama-completion -m "$1" -c "$2" -n 1 -p hi -no-cnv --no-warmup -t 2 -v 2>&1 || true)
    grep -q 'CPU compute buffer size =' <<< "$log" && break
  done
  awk '/llama_context: n_ctx  /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' <<< "$log"
}
: > "$TMP/buf"
for m in testdata/tiny-llama-q8_0.gguf $OUT/tiny-qwen3-q8_0.gguf \
    $OUT/tiny-{gemma,gemma2,granite,phi3,smollm3,mistral3}-q8_0.gguf; do
  name=$(basename "$m" .gguf)
  for ctx in 512 4096 32768; do
    last=$(run "$m" $ctx)
    ub=$(sed -n 's/.*llama_context: n_ubatch *= *\([0-9]*\).*/\1/p' <<< "$last")
    compute=$(sed -n 's/.*CPU compute buffer size = *\([0-9.]*\) MiB.*/\1/p' <<< "$last")
    output=$(sed -n 's/.*CPU  *output buffer size = *\([0-9.]*\) MiB.*/\1/p' <<< "$last")
    caches=$(sed -n 's/.*llama_kv_cache: size = *\([0-9.]*\) MiB ( *\([0-9]*\) cells, *\([0-9]*\) layers.*/\2\/\3\/\1/p' <<< "$last" | tr '\n' ' ')
    [ -n "$compute" ] && [ -n "$output" ] && [ -n "$caches" ] || { echo "no buffer lines for $name at $ctx" >&2; exit 1; }
    echo "$name $ctx $ub $compute $output ${caches% }" >> "$TMP/buf"
  done
done
cp "$TMP/buf" $OUT/tiny-arch-buffers.txt
cat $OUT/tiny-arch-buffers.txt

cat > "$TMP/shape.py" <<'PY'
import os, sys
import numpy as np
sys.path.insert(0, os.environ["LLAMA"] + "/gguf-py")
import gguf
out, E, H, HKV, HD, FF = sys.argv[1], *map(int, sys.argv[2:7])
V, L = 512, 2
w = gguf.GGUFWriter(out, "llama")
w.add_block_count(L); w.add_context_length(131072); w.add_embedding_length(E)
w.add_feed_forward_length(FF); w.add_head_count(H); w.add_head_count_kv(HKV)
w.add_key_length(HD); w.add_value_length(HD); w.add_rope_dimension_count(HD)
w.add_layer_norm_rms_eps(1e-5); w.add_file_type(0)
w.add_tokenizer_model("llama"); w.add_token_list([f"<t{i}>".encode() for i in range(V)])
w.add_token_scores([0.0] * V); w.add_token_types([1] * V)
sizes = []
def t(name, shape):
    n = int(np.prod(shape)) * 4
    w.add_tensor_info(name, list(reversed(shape)), np.dtype(np.float32), n, gguf.GGMLQuantizationType.F32)
    sizes.append(n)
t("token_embd.weight", [E, V])
for i in range(L):
    b = f"blk.{i}."
    t(b + "attn_norm.weight", [E]); t(b + "attn_q.weight", [E, H * HD])
    t(b + "attn_k.weight", [E, HKV * HD]); t(b + "attn_v.weight", [E, HKV * HD])
    t(b + "attn_output.weight", [H * HD, E]); t(b + "ffn_norm.weight", [E])
    t(b + "ffn_gate.weight", [E, FF]); t(b + "ffn_up.weight", [E, FF]); t(b + "ffn_down.weight", [FF, E])
t("output_norm.weight", [E])
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_ti_data_to_file(); w.close()
pad = lambda x: (x + 31) // 32 * 32
os.truncate(out, pad(os.path.getsize(out)) + sum(pad(x) for x in sizes))
PY
: > "$TMP/shapes"
for s in "256 4 4 64 512" "128 2 2 64 256" "128 4 2 64 256" "128 4 1 64 256" "128 4 4 64 256" \
         "128 8 2 64 256" "128 8 8 64 256" "128 2 1 64 1024" "256 8 2 64 512" "256 2 2 64 2048"; do
  python3 "$TMP/shape.py" "$TMP/s.gguf" $s
  c=$(run "$TMP/s.gguf" 512 | sed -n 's/.*CPU compute buffer size = *\([0-9.]*\) MiB.*/\1/p')
  echo "$s $c" >> "$TMP/shapes"
done
cp "$TMP/shapes" $OUT/compute-buffer-shapes.txt
cat $OUT/compute-buffer-shapes.txt
