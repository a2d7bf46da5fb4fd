#!/usr/bin/env python3
"""Benchmark: gemma-3 270M F16 -> Q4_K_M, `pocket requantize` against `llama-quantize`, 2 threads each,
in the same run, alternating, best of N. Prints wall time and peak RSS (from /usr/bin/time -v) of both,
the ratios, and whether the outputs are byte-identical.

    source ~/.cache/pocket-peers/env.sh && cargo build --release && python3 scripts/bench-requantize.py [TYPE] [N]

The F16 input is made once with `llama-quantize --allow-requantize $GEMMA /tmp/gemma-f16.gguf F16`.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POCKET = os.environ.get("POCKET_BIN", os.path.join(ROOT, "target", "release", "pocket"))
F16 = "/tmp/gemma-f16.gguf"


def timed(cmd):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = wall.groups()
    secs = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return secs, rss / 1024.0


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main():
    ftype = sys.argv[1] if len(sys.argv) > 1 else "Q4_K_M"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for tool in ["llama-quantize", "/usr/bin/time"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: source ~/.cache/pocket-peers/env.sh (and install GNU time)")
    if not os.path.exists(POCKET):
        sys.exit("build pocket first: cargo build --release")
    if not os.path.exists(F16):
        src = os.environ.get("GEMMA") or sys.exit("GEMMA not set: source ~/.cache/pocket-peers/env.sh")
        subprocess.run(["llama-quantize", "--allow-requantize", src, F16, "F16"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        out_l, out_p = os.path.join(tmp, "llama.gguf"), os.path.join(tmp, "pocket.gguf")
        best = {"llama-quantize": None, "pocket": None}
        for _ in range(n):
            for name, cmd in [("llama-quantize", ["llama-quantize", F16, out_l, ftype, "2"]),
                              ("pocket", [POCKET, "requantize", F16, out_p, ftype, "2"])]:
                t, rss = timed(cmd)
                if best[name] is None or t < best[name][0]:
                    best[name] = (t, rss)
        same = sha(out_l) == sha(out_p)
    (tl, rl), (tp, rp) = best["llama-quantize"], best["pocket"]
    print(f"gemma-3 270M F16 -> {ftype}, 2 threads, best of {n}")
    print(f"  llama-quantize  {tl:7.2f} s  peak RSS {rl:8.1f} MiB")
    print(f"  pocket          {tp:7.2f} s  peak RSS {rp:8.1f} MiB")
    print(f"  speed-up {tl / tp:.2f}x, RSS ratio (pocket/llama) {rp / rl:.2f}")
    print(f"  outputs byte-identical: {same}")


if __name__ == "__main__":
    main()
