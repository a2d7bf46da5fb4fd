#!/usr/bin/env python3
"""Compares two importance matrices in llama-imatrix's GGUF format (gguf-py): the same keys and
tensors (names, shapes, types, order), counts equal, and every in_sum2 entry within a relative
tolerance. Prints the worst entries; exit 1 when they differ beyond it.

usage: compare-imatrix.py OURS.gguf THEIRS.gguf [--rel 1e-3]"""
import argparse
import sys

import numpy as np
import gguf


def load(path):
    r = gguf.GGUFReader(path)
    kv = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        kv[k] = f.contents()
    ts = [(t.name, t.tensor_type.name, [int(x) for x in t.shape], np.array(t.data, dtype=np.float32))
          for t in r.tensors]
    return kv, ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("theirs")
    ap.add_argument("--rel", type=float, default=1e-3)
    a = ap.parse_args()
    kv1, t1 = load(a.ours)
    kv2, t2 = load(a.theirs)
    bad = 0
    for k in ("general.type", "imatrix.chunk_count", "imatrix.chunk_size"):
        if kv1.get(k) != kv2.get(k):
            print(f"key {k}: {kv1.get(k)!r} vs {kv2.get(k)!r}")
            bad += 1
    if list(kv1) != list(kv2):
        print(f"keys differ: {list(kv1)} vs {list(kv2)}")
        bad += 1
    if [(n, ty, s) for n, ty, s, _ in t1] != [(n, ty, s) for n, ty, s, _ in t2]:
        print("tensor names/types/shapes differ")
        print(" ours:  ", [(n, ty, s) for n, ty, s, _ in t1][:6], "...", len(t1))
        print(" theirs:", [(n, ty, s) for n, ty, s, _ in t2][:6], "...", len(t2))
        return 1
    worst = []
    n_vals = 0
    for (name, _, _, x), (_, _, _, y) in zip(t1, t2):
        if name.endswith(".counts"):
            if not np.array_equal(x, y):
                print(f"{name}: counts {x} vs {y}")
                bad += 1
            continue
        rel = np.abs(x.astype(np.float64) - y) / np.maximum(np.abs(y.astype(np.float64)), 1e-30)
        rel[(x == 0) & (y == 0)] = 0
        n_vals += len(x)
        i = int(np.argmax(rel))
        worst.append((float(rel[i]), name, i, float(x[i]), float(y[i]), float(np.median(rel))))
        over = int(np.sum(rel > a.rel))
        if over:
            print(f"{name}: {over} of {len(x)} entries beyond {a.rel:g} relative")
            bad += 1
    worst.sort(reverse=True)
    print(f"{len(t1) // 2} matrices, {n_vals} values compared; worst relative differences:")
    for r, name, i, x, y, med in worst[:5]:
        print(f"  {r:.3e}  {name}[{i}]  {x:.7g} vs {y:.7g}  (median in that matrix {med:.1e})")
    print("max relative difference %.3e, median of per-matrix medians %.3e" %
          (worst[0][0], float(np.median([w[5] for w in worst]))))
    print("SAME within %g" % a.rel if bad == 0 else "DIFFERENT")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
