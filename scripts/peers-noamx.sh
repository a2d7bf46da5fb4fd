#!/usr/bin/env bash
# Builds llama.cpp's compute tools (llama-perplexity, llama-bench, llama-simple, llama-completion,
# llama-imatrix) a second time, without AMX, into $POCKET_PEERS/llama.cpp/build-noamx/bin.
# Why: this machine's CPU advertises AMX (amx_tile, amx_int8) but the VM does not grant it, so the
# GGML_NATIVE=ON build of ../shared/peers/setup.sh dies with SIGILL on `tilezero` in ggml-cpu's AMX
# matmul as soon as it computes. Everything else (-march=native: AVX-512, VNNI) is kept.
# Needs the source from `../shared/peers/setup.sh llama` first. About 10 minutes on 2 cores.
#   bash scripts/peers-noamx.sh && export PATH=$POCKET_PEERS/llama.cpp/build-noamx/bin:$PATH
set -euo pipefail
P=${POCKET_PEERS:-$HOME/.cache/pocket-peers}
src="$P/llama.cpp"
[ -d "$src" ] || { echo "peers-noamx: $src missing; run ../shared/peers/setup.sh llama first" >&2; exit 2; }
if [ -x "$src/build-noamx/bin/llama-perplexity" ] && [ -x "$src/build-noamx/bin/llama-bench" ]; then
  echo "$src/build-noamx/bin"; exit 0
fi
noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
cmake -S "$src" -B "$src/build-noamx" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
  -DCMAKE_C_FLAGS="$noamx" -DCMAKE_CXX_FLAGS="$noamx" -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$src/build-noamx" -j"$(nproc)" --target llama-perplexity llama-bench llama-simple llama-completion \
  llama-imatrix >&2
echo "$src/build-noamx/bin"
