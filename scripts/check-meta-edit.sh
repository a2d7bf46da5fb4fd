#!/usr/bin/env bash
# Edits the real model in place with `pocket meta set` and checks that the peers still load it:
# gguf-py's GGUFReader reads the new values and every tensor, and `llama-gguf FILE r n` (llama.cpp's
# gguf reader, checking the data section) succeeds. Also times the edit against gguf-py's
# gguf_set_metadata (which also edits in place, but only same-size scalar values).
# Usage: source ~/.cache/pocket-peers/env.sh && bash scripts/check-meta-edit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
P=target/release/pocket
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
cp "$GEMMA" "$d/m.gguf"
before=$(python3 - "$d/m.gguf" <<'PY'
import sys, hashlib
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
h = hashlib.sha256()
for t in r.tensors: h.update(bytes(t.data.tobytes()))
print(h.hexdigest())
PY
)
name=$($P meta get "$d/m.gguf" general.name)
t0=$(date +%s.%N)
$P meta set "$d/m.gguf" general.name "$name-edited"
$P meta set "$d/m.gguf" gemma3.context_length 4096
t1=$(date +%s.%N)
echo "pocket: two in-place edits in $(echo "$t1 - $t0" | bc) s"
python3 - "$d/m.gguf" "$name-edited" "$before" <<'PY'
import sys, hashlib
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
f = r.fields
name = bytes(f["general.name"].parts[f["general.name"].data[0]]).decode()
ctx = int(f["gemma3.context_length"].parts[f["gemma3.context_length"].data[0]][0])
assert name == sys.argv[2], name
assert ctx == 4096, ctx
h = hashlib.sha256()
for t in r.tensors: h.update(bytes(t.data.tobytes()))
assert h.hexdigest() == sys.argv[3], "tensor data changed"
print(f"gguf-py: reads general.name={name!r}, context_length={ctx}, {len(r.tensors)} tensors, tensor data unchanged")
PY
llama-gguf "$d/m.gguf" r n > "$d/llama-gguf.log" 2>&1 || { tail "$d/llama-gguf.log"; echo "llama-gguf failed"; exit 1; }
grep -q "data offset" "$d/llama-gguf.log"
echo "llama-gguf: reads the edited file and its data section ($(grep -c 'key =' "$d/llama-gguf.log") keys)"
llama-tokenize -m "$d/m.gguf" -p "Hello world" --ids 2>/dev/null | tail -1 | sed 's/^/llama-tokenize (llama.cpp model loader) on the edited file: /'
t0=$(date +%s.%N)
python3 -m gguf.scripts.gguf_set_metadata --force "$d/m.gguf" gemma3.context_length 8192 >/dev/null
t1=$(date +%s.%N)
echo "gguf-py gguf_set_metadata: one in-place edit in $(echo "$t1 - $t0" | bc) s"
