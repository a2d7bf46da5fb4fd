#!/usr/bin/env python3
"""Prints the PocketPal rows of src/verify/calibration.tsv from PocketPal's published benchmark
baselines (github.com/a-ghorbani/pocketpal-ai, e2e/baselines/benchmark/{poco-myron,poco-x7-klee,
samsung-s23}.json at commit 1101b4e6d33cf78262e6ac81ce65fa26eef4d747, captured 2026-05-10/11 with
llama.rn 0.12.0-rc.9; bench pp=256 tg=64 nr=3, n_ctx 2048, use_mmap false, 6 threads; CPU runs with
flash attention on, GPU (OpenCL) runs with it off). Only the models whose architectures pocket sizes
(qwen2, qwen3, gemma3, llama, phi3) and the quants llama-quantize makes without an IQ mix.

    python3 scripts/calibration-from-pocketpal.py /path/to/pocketpal-ai > rows.tsv

Memory: llama.cpp's own buffer sizes as the app logged them (model + REPACK buffers, KV, compute),
not the process RSS (PocketPal's peak_memory_mb is a running maximum over a whole batch of runs).
"""
import json
import subprocess
import sys

COMMIT = "1101b4e6d33cf78262e6ac81ce65fa26eef4d747"
DEVICES = {
    "poco-myron": ("poco-x9-pro", "Snapdragon 8 Elite Gen 5"),
    "poco-x7-klee": ("poco-x7-pro", "Dimensity 8400 (MT6899)"),
    "samsung-s23": ("galaxy-s23", "Snapdragon 8 Gen 2"),
}
MODELS = {
    "deepseek-r1-distill-qwen-1.5b": "deepseek-r1-distill-qwen-1.5b",
    "qwen2.5-1.5b": "qwen2.5-1.5b",
    "gemma-3-1b": "gemma-3-1b",
    "qwen3-1.7b": "qwen3-1.7b",
    "smollm2-1.7b": "smollm2-1.7b",
    "phi-3.5-mini": "phi-3.5-mini",
    "phi-4-mini": "phi-4-mini",
}
QUANTS = {"q2_k": "Q2_K", "q3_k_m": "Q3_K_M", "q4_0": "Q4_0", "q4_k_m": "Q4_K_M",
          "q5_k_m": "Q5_K_M", "q6_k": "Q6_K", "q8_0": "Q8_0"}
BACKENDS = {"cpu": "llama.cpp-cpu", "gpu": "llama.cpp-opencl", "hexagon": "llama.cpp-hexagon"}
# COVERAGE.md (PR #713): cells that did not load ("OOM on 7.5 GiB device", "App crash loading ...
# large quants"). Only those with no CPU run in the baseline are kept: the gap table lists S23's
# phi-4-mini Q4_K_M for all backends, but its CPU run is in samsung-s23.json.
FAILED = {
    "poco-x7-klee": [("phi-3.5-mini", "q8_0"), ("phi-4-mini", "q8_0")],
    "samsung-s23": [("phi-3.5-mini", "q6_k"), ("phi-3.5-mini", "q8_0"), ("phi-4-mini", "q4_k_m"),
                    ("phi-4-mini", "q5_k_m"), ("phi-4-mini", "q6_k"), ("phi-4-mini", "q8_0")],
}
URL = "https://github.com/a-ghorbani/pocketpal-ai/blob/1101b4e6/e2e/baselines/benchmark/{}.json"
COV = "https://github.com/a-ghorbani/pocketpal-ai/blob/f34c6bf8/e2e/baselines/benchmark/COVERAGE.md"


def main():
    repo = sys.argv[1]
    for dev, (profile, soc) in DEVICES.items():
        raw = subprocess.check_output(
            ["git", "-C", repo, "show", f"{COMMIT}:e2e/baselines/benchmark/{dev}.json"])
        d = json.loads(raw)
        for r in d["runs"]:
            if r["model_id"] not in MODELS or r["quant"] not in QUANTS or r["status"] != "ok":
                continue
            mb = r["log_signals"]["memory_buffers"]
            p = r["effective_init_params"]
            backend = BACKENDS[r["requested_backend"]]
            cols = [MODELS[r["model_id"]], QUANTS[r["quant"]], profile, soc, backend,
                    str(p["n_ctx"]), f"{r['tg_avg']:.2f}", f"{r['pp_avg']:.1f}", "256",
                    f"{mb['total_mib']:.0f}", "llama.cpp-buffers", f"{mb['weights_total_mib']:.1f}",
                    "ok", URL.format(dev),
                    f"runs[] model_id={r['model_id']} quant={r['quant']} "
                    f"requested_backend={r['requested_backend']}: tg_avg, pp_avg, memory_buffers"]
            print("\t".join(cols))
        cpu = {(r["model_id"], r["quant"]) for r in d["runs"]
               if r["requested_backend"] == "cpu" and r["status"] == "ok"}
        for m, q in FAILED.get(dev, []):
            if (m, q) in cpu:
                continue
            cols = [MODELS[m], QUANTS[q], profile, soc, "llama.cpp-cpu", "2048", "", "", "", "",
                    "", "", "load-failed", COV, f"'Coverage gaps' ({dev}): {m} {q} did not load"]
            print("\t".join(cols))


if __name__ == "__main__":
    main()
