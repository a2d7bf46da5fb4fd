#!/usr/bin/env bash
# `pocket run --chat` on gemma-3 270M Q4_K_M vs llama.cpp, live (needs the peers and the no-AMX build):
# the same chat prompts formatted by pocket (--chat-template gemma: the 270M file is the base model and
# has no tokenizer.chat_template), then llama.cpp's greedy ids for pocket's formatted text
# (scripts/exec-logits-golden.c --greedy, llama-simple's loop) against pocket's 16 greedy ids.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
NOAMX=$HOME/.cache/pocket-peers/llama.cpp/build-noamx/bin
TOOL=$(mktemp -d)/exec-logits-golden
cc -O2 -o "$TOOL" scripts/exec-logits-golden.c -I"$LLAMA/include" -I"$LLAMA/ggml/include" -L"$NOAMX" -lllama
cargo build -q --release
export LD_LIBRARY_PATH=$NOAMX TOOL
python3 - <<'PY'
import json, os, subprocess
prompts = [("What is the capital of France?", None),
           ("Write a haiku about the sea.", "You are a poet."),
           ("List three primary colors.", None)]
for p, sys_ in prompts:
    cmd = ['./target/release/pocket', 'run', os.environ['GEMMA'], '--chat', '--chat-template', 'gemma',
           '-p', p, '-n', '16', '--temp', '0', '--json'] + (['--system', sys_] if sys_ else [])
    d = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    out = subprocess.run([os.environ['TOOL'], '--greedy', os.environ['GEMMA'], '16', d['formatted_prompt']],
                         capture_output=True, text=True, check=True).stdout.split('\n')
    theirs_p = [int(t) for t in out[0].split()[1:]]
    theirs = [int(t) for t in out[1].split()[1:]]
    n = next((i for i, (a, b) in enumerate(zip(d['tokens'], theirs)) if a != b), min(len(theirs), len(d['tokens'])))
    print(f"{p!r}: prompt ids {'same' if theirs_p == d['prompt_tokens'] else 'DIFFER'}, "
          f"{sum(a == b for a, b in zip(d['tokens'], theirs))}/{len(theirs)} greedy ids equal "
          f"(identical prefix {n}); pocket: {d['text']!r}")
PY
