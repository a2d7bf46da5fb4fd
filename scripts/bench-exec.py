#!/usr/bin/env python3
"""Benchmark of the executor (issue 7): `pocket bench` against `llama-bench` in the same run, on
2 threads, for gemma-3 270M Q4_K_M and its Q8_0 (made from it with `pocket requantize
--allow-requantize` when missing), prompt processing pp128 and generation tg64; plus the memory
read bandwidth and the fraction of the bandwidth limit that tg reaches (from `pocket bench`).

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/bench-exec.py [-r REPS]
llama-bench is the no-AMX build (scripts/peers-noamx.sh: the default build dies with SIGILL on AMX
CPUs). The two tools alternate, test by test, so a machine whose load changes hurts both alike.
Exit status 1 if pocket is below 1.0x llama-bench on a test.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.environ.get("POCKET_PEERS", os.path.expanduser("~/.cache/pocket-peers"))
NOAMX = os.path.join(PEERS, "llama.cpp", "build-noamx", "bin")


def llama_bench(model, test, reps):
    p, n = (test[1], 0) if test[0] == "pp" else (0, test[1])
    env = dict(os.environ, LD_LIBRARY_PATH=NOAMX)
    out = subprocess.run([os.path.join(NOAMX, "llama-bench"), "-m", model, "-p", str(p), "-n", str(n),
                          "-t", "2", "-r", str(reps), "-o", "json"],
                         capture_output=True, text=True, check=True, env=env).stdout
    r = json.loads(out)[0]
    return r["avg_ts"], r["stddev_ts"]


def pocket_bench(model, test, reps, bandwidth=False):
    p, n = (test[1], 0) if test[0] == "pp" else (0, test[1])
    cmd = [os.path.join(ROOT, "target", "release", "pocket"), "bench", model, "-p", str(p), "-n", str(n),
           "-t", "2", "-r", str(reps), "--json"]
    if not bandwidth:
        cmd.append("--no-bandwidth")
    d = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    t = d["tests"][0]
    return t["avg_ts"], t["stddev_ts"], d


def main():
    reps = int(sys.argv[sys.argv.index("-r") + 1]) if "-r" in sys.argv else 5
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    gemma = os.environ.get("GEMMA") or os.path.join(PEERS, "models", "gemma-3-270m-q4_k_m.gguf")
    q8 = os.path.join(PEERS, "models", "gemma-3-270m-q8_0-from-q4_k_m.gguf")
    if not os.path.exists(q8):
        subprocess.run([os.path.join(ROOT, "target", "release", "pocket"), "requantize", gemma, q8, "Q8_0",
                        "--allow-requantize"], check=True, stdout=subprocess.DEVNULL)
    rows, ok = [], True
    for name, model in [("Q4_K_M", gemma), ("Q8_0", q8)]:
        for test in [("pp", 128), ("tg", 64)]:
            lm, ls = llama_bench(model, test, reps)
            pm, ps, doc = pocket_bench(model, test, reps, bandwidth=test[0] == "tg")
            ratio = pm / lm
            ok &= ratio >= 1.0
            extra = ""
            if test[0] == "tg" and doc.get("memory_bandwidth"):
                bw, per_tok = doc["memory_bandwidth"], doc["weight_bytes_per_token"]
                limit = bw / per_tok
                extra = (f"  bandwidth {bw / 1e9:.1f} GB/s, {per_tok / 2**20:.0f} MiB/token: limit {limit:.1f} t/s;"
                         f" pocket {100 * pm / limit:.0f}%, llama.cpp {100 * lm / limit:.0f}% of it")
            rows.append(f"| gemma-3 270M {name} | {test[0]}{test[1]} | {lm:.2f} ± {ls:.2f} | {pm:.2f} ± {ps:.2f} | {ratio:.2f}x |{extra}")
            print(rows[-1], flush=True)
    print("\n| model | test | llama-bench t/s | pocket t/s | pocket / llama |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(r.split("  bandwidth")[0])
    print(f"\npocket RSS after the last run: {doc['rss'] / 2**20:.0f} MiB (peak {doc['rss_peak'] / 2**20:.0f} MiB), "
          f"kernels {doc['kernels']}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
