#!/usr/bin/env bash
# The tiny qwen3 models and their llama.cpp logits (tests/exec_qwen3.rs). Needs the peers
# (source ~/.cache/pocket-peers/env.sh) and the no-AMX ggml (scripts/peers-noamx.sh).
#  - testdata/exec/tiny-qwen3-{f16,q8_0,q4_k_m}.gguf: scripts/make-tiny-qwen3.py (WEIGHT_STD below);
#  - testdata/exec/tiny-qwen3.tokens: the token sequence;
#  - testdata/exec/tiny-qwen3-*.logits.f32: llama.cpp's logits at every position of it, one decode,
#    1 thread, default context settings (scripts/exec-logits-golden.c, as for the tiny llamas);
#  - testdata/exec/tiny-qwen3-chat.ids, tiny-qwen3-chat-greedy.txt: the tiny qwen3's ids for a
#    chat-formatted prompt (llama-tokenize) and llama.cpp's greedy continuation of it, to check
#    `pocket run --chat` against.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
WEIGHT_STD=${WEIGHT_STD:-0.05}
python3 scripts/make-tiny-qwen3.py "$WEIGHT_STD"
NOAMX=$HOME/.cache/pocket-peers/llama.cpp/build-noamx/bin
[ -f "$NOAMX/libggml-cpu.so" ] || { echo "no no-AMX ggml in $NOAMX: run scripts/peers-noamx.sh" >&2; exit 2; }
if [ -f "$NOAMX/libllama.so" ]; then BIN=$NOAMX; else BIN=$HOME/.cache/pocket-peers/llama.cpp/build/bin; fi
export LD_LIBRARY_PATH=$NOAMX:$BIN
OUT=testdata/exec
TOOL=$(mktemp -d)/exec-logits-golden
cc -O2 -o "$TOOL" scripts/exec-logits-golden.c -I"$LLAMA/include" -I"$LLAMA/ggml/include" -L"$BIN" -lllama
# 280..282: <|endoftext|> <|im_start|> <|im_end|> (control tokens); 256..279 merges; the rest bytes.
TOKENS="281 40 100 150 200 250 256 279 3 17 42 99 128 64 32 16"
echo "$TOKENS" > $OUT/tiny-qwen3.tokens
for q in f16 q8_0 q4_k_m; do
  "$TOOL" $OUT/tiny-qwen3-$q.gguf $OUT/tiny-qwen3-$q.logits.f32 $TOKENS 2>"$TOOL.log" \
    || { cat "$TOOL.log"; exit 1; }
done
# `pocket run --chat -p "Hi, the cat is in the house." --system "Be brief."` formats with chatml
# (Qwen3's template is detected as chatml). For that text: llama-tokenize's ids (special tokens parsed),
# and the prompt ids and 8 greedy ids of llama-simple's loop (exec-logits-golden --greedy).
CHAT=$'<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi, the cat is in the house.<|im_end|>\n<|im_start|>assistant\n'
llama-tokenize -m $OUT/tiny-qwen3-q8_0.gguf -p "$CHAT" --ids --log-disable 2>/dev/null | tail -1 > $OUT/tiny-qwen3-chat.ids
"$TOOL" --greedy $OUT/tiny-qwen3-q8_0.gguf 8 "$CHAT" 2>"$TOOL.log" > $OUT/tiny-qwen3-chat-greedy.txt \
  || { cat "$TOOL.log"; exit 1; }
cat $OUT/tiny-qwen3-chat.ids $OUT/tiny-qwen3-chat-greedy.txt
