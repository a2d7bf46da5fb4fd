#!/usr/bin/env bash
# pocket's executor vs llama.cpp on gemma-3 270M Q4_K_M, against the committed goldens
# (scripts/make-exec-goldens.sh): perplexity of testdata/exec/ppl-text.txt at -c 128 (all chunks;
# the goal is within 1% of llama-perplexity) and greedy 16-token generation for the 6 prompts of
# testdata/exec/gemma-prompts.txt (the goal is >= 5 of 6 identical). Takes minutes on 2 cores.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
cargo build -q --release
P=./target/release/pocket
ours=$($P perplexity "$GEMMA" -f testdata/exec/ppl-text.txt -c 128 --json)
python3 - "$ours" <<'PY'
import json, re, sys
d = json.loads(sys.argv[1])
g = open('testdata/exec/gemma-ppl-c128.txt').read()
theirs = float(re.search(r'PPL = ([0-9.]+)', g).group(1))
chunks = [float(x) for x in re.findall(r'\[\d+\]([0-9.]+)', g)]
print(f"pocket PPL {d['ppl']:.4f} +/- {d['ppl_err']:.5f}; llama-perplexity {theirs:.4f}; "
      f"ratio {d['ppl']/theirs:.4f}")
for c, t in zip(d['chunks'], chunks):
    print(f"  chunk ppl so far: pocket {c['ppl_so_far']:.4f}  llama {t:.4f}")
PY
python3 - <<'PY'
import json, os, subprocess
lines = open('testdata/exec/gemma-greedy.txt').read().split('\n')
same = 0
for i in range(0, len(lines) - 2, 3):
    p, gen = lines[i], [int(t) for t in lines[i + 2].split()[1:]]
    out = subprocess.run(['./target/release/pocket', 'run', os.environ['GEMMA'], '-p', p, '-n', '16',
                          '--temp', '0', '--json'], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)['tokens']
    n = next((k for k, (a, b) in enumerate(zip(got, gen)) if a != b), min(len(got), len(gen)))
    same += got == gen
    print(f"{p!r}: first {n} of {len(gen)} tokens identical")
print(f"greedy: {same} of {len(lines) // 3} prompts identical for 16 tokens")
PY
