#!/usr/bin/env python3
"""Runs random mutations of real GGUF files through the pocket binary and counts crashes: any exit
other than 0, 1 or 2 (a signal, or 101 from a panic) is one. Mutations: bit flips, truncation,
hostile 8-byte values, splices from other files, inserted and deleted bytes — mostly in the header.

    python3 scripts/mutate-cli.py [N=10000] [SEED=1]

Commands run on each mutant: `pocket inspect --json`, and `pocket verify` / `pocket hash` when the binary
has them. Crashing mutants are kept in target/mutants/ with the command that crashed.
"""
import os
import random
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTILE = [0, 1, 31, 0xFFFFFFFF, 1 << 32, 1 << 62, (1 << 63) - 1, (1 << 64) - 1]


def mutate(rng, base, other):
    b = bytearray(base)
    hot = min(len(b), 65536)
    k = rng.randrange(5)
    if k == 0:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(hot)
            b[i] ^= 1 << rng.randrange(8)
    elif k == 1:
        del b[rng.randrange(len(b)):]
    elif k == 2:
        i = rng.randrange(max(1, hot - 8))
        v = rng.choice(HOSTILE)
        raw = (v if rng.randrange(2) else v & 0xFFFFFFFF).to_bytes(8, "little")
        b[i:i + 8] = raw[: len(b[i:i + 8])]
    elif k == 3:
        src = other if rng.randrange(2) else base
        n = rng.randint(1, 256)
        f = rng.randrange(max(1, min(len(src), 65536) - n))
        t = rng.randrange(max(1, hot - n))
        piece = src[f:f + n]
        b[t:t + len(piece)] = piece
    else:
        i = rng.randrange(hot)
        if rng.randrange(2):
            del b[i:i + rng.randint(1, 16)]
        else:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(b)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    pocket = os.path.join(ROOT, "target", "release", "pocket")
    helptext = subprocess.run([pocket, "--help"], capture_output=True, text=True).stdout
    cmds = [["inspect", "--json"]]
    for sub in ["verify", "hash"]:
        if f"  {sub} " in helptext or f"\n  {sub}" in helptext:
            cmds.append([sub])
    td = os.path.join(ROOT, "testdata")
    files = sorted(os.path.join(td, f) for f in os.listdir(td) if f.endswith(".gguf"))
    data = [open(f, "rb").read() for f in files]
    keep = os.path.join(ROOT, "target", "mutants")
    crashes = 0
    codes = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mutant.gguf")
        for case in range(n):
            m = mutate(rng, rng.choice(data), rng.choice(data))
            with open(path, "wb") as f:
                f.write(m)
            for c in cmds:
                r = subprocess.run([pocket, *c, path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                codes[(c[0], r.returncode)] = codes.get((c[0], r.returncode), 0) + 1
                if r.returncode not in (0, 1, 2):
                    crashes += 1
                    os.makedirs(keep, exist_ok=True)
                    out = os.path.join(keep, f"crash-{case}-{c[0]}.gguf")
                    with open(out, "wb") as f:
                        f.write(m)
                    print(f"CRASH case {case}: pocket {' '.join(c)} exited {r.returncode}: "
                          f"{r.stderr.decode(errors='replace')[-300:]} (kept {out})")
            if (case + 1) % 1000 == 0:
                print(f"{case + 1} mutants, {crashes} crashes", flush=True)
    print("exit codes:", ", ".join(f"{c} {k}: {v}" for (c, k), v in sorted(codes.items())))
    print(f"{n} mutants x {len(cmds)} commands ({', '.join(c[0] for c in cmds)}): {crashes} crashes")
    sys.exit(1 if crashes else 0)


if __name__ == "__main__":
    main()
