#!/usr/bin/env python3
"""Golden for `pocket convert --endian`: runs gguf-py's gguf-convert-endian
(python3 -m gguf.scripts.gguf_convert_endian FILE big, answering YES) on a copy of every little-endian
testdata file and records the sha256 of its output, or — for files it refuses — its error, in
testdata/interop/gguf-convert-endian.json.

Usage: source ~/.cache/pocket-peers/env.sh && python3 scripts/make-endian-golden.py
"""
import hashlib, json, os, shutil, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    out = {}
    files = sorted(f for f in os.listdir(os.path.join(ROOT, "testdata")) if f.endswith(".gguf") and "-be-" not in f)
    for name in files:
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, name)
            shutil.copy(os.path.join(ROOT, "testdata", name), p)
            r = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_convert_endian", p, "big"],
                               input="YES\n", capture_output=True, text=True)
            if r.returncode == 0:
                with open(p, "rb") as f:
                    out[name] = {"sha256": hashlib.sha256(f.read()).hexdigest()}
            else:
                err = [l for l in r.stderr.splitlines() if "Error" in l or "error" in l]
                out[name] = {"refused": err[-1] if err else r.stderr.strip().splitlines()[-1]}
    path = os.path.join(ROOT, "testdata", "interop", "gguf-convert-endian.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.exit(main())
