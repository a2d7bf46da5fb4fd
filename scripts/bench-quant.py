#!/usr/bin/env python3
"""Benchmark: pocket's block-format encoders against ggml's (`ggml_quantize_chunk` of the peer's
libggml-base), same data, same run, 2 threads splitting 128 rows of 4096 values; prints the time of
each and the ratio (ggml / pocket, > 1 means pocket is faster). Best of at least 5 repetitions (and of
as many as fit in half a second) after a warm-up call that builds the lattices on both sides; the two
programs run alternately ROUNDS times and each type keeps its best, so load from other processes on a
shared machine hits both sides alike.

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/bench-quant.py [TYPE[:imatrix] ...]
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = 3
DEFAULT = [
    "iq4_nl", "iq4_nl:imatrix", "iq4_xs", "iq4_xs:imatrix", "tq1_0", "tq2_0", "mxfp4", "nvfp4",
    "q1_0", "q2_0", "iq3_xxs", "iq3_s", "iq2_s", "iq2_xxs:imatrix", "iq2_xs:imatrix",
    "iq1_s:imatrix", "iq1_m",
]


def parse(out):
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}


def main():
    types = sys.argv[1:] or DEFAULT
    llama = os.environ.get("LLAMA") or sys.exit("source ~/.cache/pocket-peers/env.sh first (LLAMA)")
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "quant-bench")
        subprocess.run(["cc", "-O2", "-I", f"{llama}/ggml/include", os.path.join(ROOT, "scripts", "quant-bench.c"),
                        "-L", f"{llama}/build/bin", "-lggml-base", "-lpthread", "-lm", "-o", exe], check=True)
        env = dict(os.environ, LD_LIBRARY_PATH=f"{llama}/build/bin:" + os.environ.get("LD_LIBRARY_PATH", ""))
        subprocess.run(["cargo", "build", "--release", "-q", "--example", "quant_bench"], cwd=ROOT, check=True)
        ours = os.path.join(ROOT, "target", "release", "examples", "quant_bench")
        ggml, pocket = {}, {}
        for _ in range(ROUNDS):
            for cmd, best, kw in ((exe, ggml, {"env": env}), (ours, pocket, {})):
                got = parse(subprocess.run([cmd, *types], check=True, capture_output=True, text=True, **kw).stdout)
                for t, ms in got.items():
                    best[t] = min(ms, best.get(t, ms))
    print(f"{'type':<18}{'ggml ms':>10}{'pocket ms':>11}{'ratio':>8}")
    for t in types:
        print(f"{t:<18}{ggml[t]:>10.2f}{pocket[t]:>11.2f}{ggml[t] / pocket[t]:>8.2f}")


if __name__ == "__main__":
    main()
