#!/usr/bin/env python3
"""Benchmark: `pocket inspect` of the real model against llama.cpp's `llama-gguf FILE r n` and gguf-py's
`gguf-dump`, measured in the same run on this machine, and print the ratios against the targets of
issue 3 (pocket <= 20 ms, >= 10x llama-gguf, >= 500x gguf-dump).

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/bench-inspect.py [MODEL]
Wall time of whole processes (output to /dev/null), median of N runs after one warm-up run each, so
every tool reads the file from the page cache. Exit status 1 if a target is missed.
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, runs):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GEMMA")
    if not model:
        sys.exit("give the model path or source ~/.cache/pocket-peers/env.sh (GEMMA)")
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    pocket = os.path.join(ROOT, "target", "release", "pocket")
    llama_gguf = shutil.which("llama-gguf") or sys.exit("llama-gguf not on PATH (source env.sh)")
    # Call gguf-dump through its module so a pyenv shim's start-up is not counted against it.
    gguf_dump = [sys.executable, "-m", "gguf.scripts.gguf_dump"]

    rows = [
        ("pocket inspect", [pocket, "inspect", model], 50),
        ("pocket inspect --json", [pocket, "inspect", "--json", model], 10),
        ("llama-gguf r n", [llama_gguf, model, "r", "n"], 10),
        ("gguf-dump", gguf_dump + [model], 3),
    ]
    res = {}
    print(f"model: {model} ({os.path.getsize(model)} bytes)")
    print(f"{'command':<24} {'median':>10} {'min':>10} {'max':>10}  runs")
    for name, cmd, runs in rows:
        med, lo, hi = timed(cmd, runs)
        res[name] = med
        print(f"{name:<24} {med*1e3:>8.2f}ms {lo*1e3:>8.2f}ms {hi*1e3:>8.2f}ms  {runs}")

    p = res["pocket inspect"]
    checks = [
        ("pocket inspect <= 20 ms", p * 1e3, 20.0, p <= 0.020, "ms"),
        ("vs llama-gguf r n >= 10x", res["llama-gguf r n"] / p, 10.0, res["llama-gguf r n"] / p >= 10, "x"),
        ("vs gguf-dump >= 500x", res["gguf-dump"] / p, 500.0, res["gguf-dump"] / p >= 500, "x"),
    ]
    print()
    ok = True
    for name, val, target, good, unit in checks:
        ok &= good
        print(f"{'PASS' if good else 'FAIL'}  {name:<28} measured {val:.1f}{unit}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
