#!/usr/bin/env bash
# llama.cpp's numbers for the issue #21 headers (testdata/headers/*.bf16.header.gguf, made by
# scripts/make-arch21-headers.py; tests/memory_arch21.rs). llama.cpp cannot read a header-only file,
# so the script writes copies it can load (make-arch21-headers.py --llama: a placeholder vocabulary of
# n_vocab tokens and a sparse zero data section, as scripts/make-kv-golden.sh does for the llama-3-8B
# header); its parameter-fitting pass sizes every buffer before any weight is read. Writes:
#  - testdata/headers/arch21-buffers.txt: at -c 4096 and 32768 (llama-completion, common defaults),
#    MODEL CTX N_UBATCH COMPUTE_MIB OUTPUT_MIB CACHE... as testdata/exec/tiny-arch-buffers.txt;
#  - testdata/headers/arch21-plans.json: `llama-quantize --dry-run COPY FTYPE` for each FTYPE below,
#    the target type of every tensor: {MODEL: {"tensors": [names], "plans": {FTYPE: [types]}}}.
# Needs the peers (source ~/.cache/pocket-peers/env.sh); ~8 GB of sparse files in a temp folder.
set -euo pipefail
source ~/.cache/pocket-peers/env.sh
cd "$(dirname "$0")/.."
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
python3 scripts/make-arch21-headers.py --llama "$TMP" > /dev/null
FTYPES="Q8_0 Q6_K Q5_K_M Q5_K_S Q4_K_M Q4_K_S Q4_0 Q3_K_L Q3_K_M Q2_K IQ4_XS"
: > "$TMP/buf"
for f in "$TMP"/*.bf16.gguf; do
  name=$(basename "$f" .bf16.gguf)
  for ctx in 4096 32768; do
    for _ in 1 2 3; do
      # The run aborts after the buffers (the placeholder vocabulary): only the log counts.
      log=$(timeout 300 llama-completion -m "$f" -c $ctx -n 1 -p hi -no-cnv --no-warmup -t 2 -v 2>&1 || true)
      grep -q 'CPU compute buffer size =' <<< "$log" && break
    done
    last=$(awk '/llama_context: n_ctx  /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' <<< "$log")
    ub=$(sed -n 's/.*llama_context: n_ubatch *= *\([0-9]*\).*/\1/p' <<< "$last")
    compute=$(sed -n 's/.*CPU compute buffer size = *\([0-9.]*\) MiB.*/\1/p' <<< "$last")
    output=$(sed -n 's/.*CPU  *output buffer size = *\([0-9.]*\) MiB.*/\1/p' <<< "$last")
    caches=$(sed -n 's/.*llama_kv_cache: size = *\([0-9.]*\) MiB ( *\([0-9]*\) cells, *\([0-9]*\) layers.*/\2\/\3\/\1/p' <<< "$last" | tr '\n' ' ')
    [ -n "$compute" ] && [ -n "$output" ] && [ -n "$caches" ] || { echo "no buffer lines for $name at $ctx" >&2; exit 1; }
    echo "$name $ctx $ub $compute $output ${caches% }" >> "$TMP/buf"
  done
  for ft in $FTYPES; do
    llama-quantize --dry-run "$f" "$ft" 2 > "$TMP/$name.$ft.log" 2>&1 || { tail "$TMP/$name.$ft.log"; exit 1; }
  done
done
cp "$TMP/buf" testdata/headers/arch21-buffers.txt
python3 - "$TMP" $FTYPES <<'PY'
import json, os, re, sys
tmp, ftypes = sys.argv[1], sys.argv[2:]
LINE = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s+(\S+), size =\s+[\d.]+ MiB(?: ->\s+[\d.]+ MiB \((\S+)\))?")
out = {}
for f in sorted(os.listdir(tmp)):
    if not f.endswith(".bf16.gguf"):
        continue
    name = f[: -len(".bf16.gguf")]
    names, plans = None, {}
    for ft in ftypes:
        rows = []
        for line in open(os.path.join(tmp, f"{name}.{ft}.log")):
            m = LINE.match(line)
            if m:
                rows.append((m.group(1), (m.group(3) or m.group(2)).upper()))
        n = [r[0] for r in rows]
        assert names is None or names == n, (name, ft)
        names = n
        plans[ft] = [r[1] for r in rows]
    out[name] = {"tensors": names, "plans": plans}
with open("testdata/headers/arch21-plans.json", "w") as fh:
    json.dump(out, fh, indent=0, sort_keys=True)
    fh.write("\n")
PY
cat testdata/headers/arch21-buffers.txt
ls -la testdata/headers/arch21-plans.json
