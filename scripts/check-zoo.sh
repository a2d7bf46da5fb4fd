#!/usr/bin/env bash
# The heaviest zoo checks in full (CI samples them): every recipe of testdata/zoo/derived.tsv (the
# zoo's models re-quantized by llama-quantize to every ftype, split, big-endian) byte-compared, and
# the executor's zoo checks (Qwen perplexity against llama-perplexity, KLD within llama.cpp's own
# spread). Needs no llama.cpp: the goldens are committed. Takes ~15 min on 2 cores.
#
#   bash scripts/check-zoo.sh            # all of it
#   bash scripts/check-zoo.sh NAME...    # only the tests whose names contain NAME
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-models.sh >/dev/null
POCKET_ZOO_FULL=1 cargo test --release --test zoo --test zoo_exec -- --test-threads 1 "$@"
