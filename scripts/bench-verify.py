#!/usr/bin/env python3
"""Benchmark: a full `pocket verify` of the real model checked against a manifest (every check: the
data pass reads and hashes every tensor and scans every float value and block scale, plus the whole-
data hash) against `llama-gguf-hash --sha256` alone, same run, 2 threads for pocket (llama-gguf-hash
is single-threaded), and print the ratio against issue 5's target (>= 5x).

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/bench-verify.py [MODEL]
Wall time of whole processes (output to /dev/null), median of N runs after one warm-up run each, so
both read the file from the page cache. Exit status 1 if the target is missed.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, runs, cwd=None):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=cwd)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=cwd)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GEMMA")
    if not model:
        sys.exit("give the model path or source ~/.cache/pocket-peers/env.sh (GEMMA)")
    model = os.path.abspath(model)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    pocket = os.path.join(ROOT, "target", "release", "pocket")
    hasher = shutil.which("llama-gguf-hash") or sys.exit("llama-gguf-hash not on PATH (source env.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = os.path.join(tmp, "model.manifest")
        subprocess.run([pocket, "verify", model, "--write-manifest", manifest, "--threads", "2"],
                       stdout=subprocess.DEVNULL, check=True)
        rows = [
            ("pocket verify --manifest", [pocket, "verify", model, "--manifest", manifest, "--threads", "2"], 10),
            ("pocket hash", [pocket, "hash", model, "--threads", "2"], 10),
            ("llama-gguf-hash --sha256", [hasher, "--sha256", model], 5),
        ]
        res = {}
        print(f"model: {model} ({os.path.getsize(model)} bytes)")
        print(f"{'command':<28} {'median':>10} {'min':>10} {'max':>10}  runs")
        for name, cmd, runs in rows:
            med, lo, hi = timed(cmd, runs)
            res[name] = med
            print(f"{name:<28} {med*1e3:>8.1f}ms {lo*1e3:>8.1f}ms {hi*1e3:>8.1f}ms  {runs}")
    ratio = res["llama-gguf-hash --sha256"] / res["pocket verify --manifest"]
    ratio_hash = res["llama-gguf-hash --sha256"] / res["pocket hash"]
    print()
    print(f"pocket hash vs llama-gguf-hash --sha256: {ratio_hash:.1f}x")
    good = ratio >= 5
    print(f"{'PASS' if good else 'FAIL'}  full verify with manifest vs llama-gguf-hash --sha256 >= 5x   measured {ratio:.1f}x")
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
