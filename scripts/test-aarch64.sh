#!/usr/bin/env bash
# Runs pocket's tests for 64-bit ARM (phones) on this x86_64 machine: cross-built with
# ../shared/peers/aarch64.sh (Debian's rustc-web with the arm64 standard library, static binaries) and
# run under qemu-user. The CLI binary the tests spawn runs under qemu too (POCKET_TEST_RUNNER).
#   bash scripts/test-aarch64.sh                 # the whole suite (unit and integration tests; rustdoc's
#                                                # doctests need an arm64 std for rustup's toolchain, absent)
#   bash scripts/test-aarch64.sh --test quant_k  # some of it (any cargo test arguments)
# QEMU_CPU picks the emulated core: "max" (default: NEON, dotprod, i8mm, fp16) or e.g. cortex-a76.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${POCKET_SHARED:-$here/../shared}/peers/aarch64.sh
[ -f "$peers" ] || { echo "test-aarch64: $peers not found (set POCKET_SHARED to the shared/ folder)" >&2; exit 2; }
export POCKET_TEST_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cd "$here"
# By default the whole suite but one test: requantize's comparison of 276 whole files with
# llama-quantize's (a minute natively, far longer emulated). Under emulation the kernels' bytes are
# still checked against ggml's goldens (tests/quant_k.rs, quant_iq.rs) and requantize's other tests run.
# Also pocket kld's two gemma comparisons (two gemma models over 256 tokens each: far longer emulated;
# the Q4_K_M one also relies on llama.cpp's x86 arithmetic, which the ARM build does not follow).
if [ $# -eq 0 ]; then
  echo "test-aarch64: skipping whole_files_equal_llama_quantize_where_kernels_exist (run natively by CI)"
  echo "test-aarch64: skipping gemma_q4_0_against_q8_0_matches_llama_perplexity (run natively by CI)"
  echo "test-aarch64: skipping gemma_q4_k_m_against_q8_0_matches_llama_perplexity (run natively by CI)"
  echo "test-aarch64: skipping the zoo's large models (tests named *zoo*: Qwen 1.5B and nomic-embed, run natively by CI)"
  echo "test-aarch64: skipping slow_and_cut_responses_are_retried_then_reported (1 s timeouts; emulation is slower; run natively by CI)"
  echo "test-aarch64: skipping tests that run the real gemma model through the executor (names with gemma; perplexity_and_kld_stream_each_chunk_into_a_pipe):"
  echo "  10-50 minutes each emulated; run natively by CI. ARM's executor is covered by the tiny llama/qwen3 tests and the NEON kernel tests."
  set -- --tests -- --skip whole_files_equal_llama_quantize_where_kernels_exist \
    --skip gemma \
    --skip perplexity_and_kld_stream_each_chunk_into_a_pipe \
    --skip gemma_q4_0_against_q8_0_matches_llama_perplexity \
    --skip gemma_q4_k_m_against_q8_0_matches_llama_perplexity \
    --skip zoo \
    --skip slow_and_cut_responses_are_retried_then_reported
fi
bash "$peers" test --release "$@"
