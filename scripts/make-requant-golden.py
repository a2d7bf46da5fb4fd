#!/usr/bin/env python3
"""Goldens for `pocket requantize`: llama-quantize's per-tensor type choices and the sha256 of its
whole output files.

Makes two more tiny llamas with gguf-py (testdata/requant/):
  - tiny-llama-bf16.gguf: n_embd 256, 2 layers, 4 heads, 4 KV heads (no GQA), n_ff 256, tied
    embeddings (no output.weight), BF16 weights;
  - tiny-llama-f32-odd.gguf: n_embd 64, 16 layers, 4 heads, 1 KV head (GQA 4), n_ff 80, F32 weights:
    rows of 64 do not divide into 256-value blocks (fallbacks to 32-value types) and rows of 80 not
    even into 32 (ffn_down falls back to F16); 16 layers exercise the layer-dependent mixes;
plus a synthetic importance matrix for each tiny model in llama-imatrix's GGUF format.

Then runs llama-quantize (from ~/.cache/pocket-peers/env.sh) on the three tiny models (these two and
testdata/tiny-llama-f16.gguf) for every ftype it lists, with and without --pure, with and without
--imatrix, and a few --tensor-type / --output-tensor-type / --token-embedding-type /
--leave-output-tensor / --override-kv settings, recording each output's tensor types (read back with
gguf-py) and sha256. gemma-3 270M made F16 by llama-quantize (`$GEMMA` requantized, in /tmp, not
committed) is planned with --dry-run for every ftype, and the types are parsed from its log.

Writes testdata/requant/plans.json. Run from the repository root (the imatrix path is recorded in the
output files' metadata as given, so it must be the same relative path the tests pass).
Deterministic: fixed seeds; takes a few minutes.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = "testdata/requant"

# llama-quantize's QUANT_OPTIONS (tools/quantize/quantize.cpp), in its order.
FTYPES = ["Q1_0", "Q2_0", "Q4_0", "Q4_1", "MXFP4_MOE", "Q5_0", "Q5_1", "IQ2_XXS", "IQ2_XS", "IQ2_S",
          "IQ2_M", "IQ1_S", "IQ1_M", "TQ1_0", "TQ2_0", "Q2_K", "Q2_K_S", "IQ3_XXS", "IQ3_S", "IQ3_M",
          "Q3_K", "IQ3_XS", "Q3_K_S", "Q3_K_M", "Q3_K_L", "IQ4_NL", "IQ4_XS", "Q4_K", "Q4_K_S",
          "Q4_K_M", "Q5_K", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "F16", "BF16", "F32", "COPY"]

# Extra settings, each run for a few ftypes.
EXTRAS = [
    (["--tensor-type", "attn_v=q8_0", "--tensor-type", "ffn_.*=q5_0"], ["Q4_K_M", "Q3_K_M", "F16"]),
    (["--output-tensor-type", "q8_0", "--token-embedding-type", "q4_k"], ["Q4_K_M", "Q2_K", "Q8_0"]),
    (["--output-tensor-type", "f16"], ["Q4_0", "IQ4_XS"]),
    (["--token-embedding-type", "q6_k"], ["Q5_K_S", "BF16"]),
    (["--leave-output-tensor"], ["Q4_K_M", "Q6_K"]),
    (["--tensor-type", r"blk\.1\.=q6_k"], ["Q3_K_M"]),
    (["--pure", "--tensor-type", "attn_q=iq4_nl"], ["Q4_K_S"]),
    (["--override-kv", "general.name=str:renamed", "--override-kv", "llama.context_length=int:-512",
      "--override-kv", "t.flag=bool:true", "--override-kv", "t.f=float:0.25"], ["Q8_0"]),
]


def vocab(n_vocab):
    toks, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        toks.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(6)
    words = ["▁the", "▁a", "▁of", "▁to", "▁and", "▁in", "▁is", "▁it"]
    for i, wd in enumerate(words[: n_vocab - len(toks)]):
        toks.append(wd)
        scores.append(-float(i + 1))
        types.append(1)
    return toks, scores, types


def tiny(path, name, n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, dtype, tied, ftype, seed):
    rng = np.random.default_rng(seed)
    w = GGUFWriter(path, "llama")
    w.add_name(name)
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(ftype)
    toks, scores, types = vocab(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def mat(rows, cols, scale=0.05):
        x = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
        if dtype == "bf16":
            # round to nearest even, as ggml's fp32 -> bf16
            b = x.view(np.uint32).astype(np.uint64)
            b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
            return b.view(np.uint8).reshape(rows, cols * 2), GGMLQuantizationType.BF16
        return x, None

    def add(name, arr):
        data, raw = arr
        if raw is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=raw)

    hd = n_embd // n_head
    add("token_embd.weight", mat(n_vocab, n_embd, 1.0))
    for il in range(n_layer):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32))
        add(p + "attn_q.weight", mat(n_embd, n_embd))
        add(p + "attn_k.weight", mat(n_head_kv * hd, n_embd))
        add(p + "attn_v.weight", mat(n_head_kv * hd, n_embd))
        add(p + "attn_output.weight", mat(n_embd, n_embd))
        w.add_tensor(p + "ffn_norm.weight", (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32))
        add(p + "ffn_gate.weight", mat(n_ff, n_embd))
        add(p + "ffn_up.weight", mat(n_ff, n_embd))
        add(p + "ffn_down.weight", mat(n_embd, n_ff))
    w.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32))
    if not tied:
        add("output.weight", mat(n_vocab, n_embd))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_imatrix(model_path, path, seed):
    """llama-imatrix's GGUF layout: per weight NAME.in_sum2 (ne0 sums of squared activations) and
    NAME.counts (one count), general.type = imatrix, imatrix.datasets/chunk_count/chunk_size."""
    rng = np.random.default_rng(seed)
    r = GGUFReader(model_path)
    w = GGUFWriter(path, "imatrix")
    w.kv_data[0].pop("general.architecture", None)  # llama-imatrix writes none
    w.add_type("imatrix")
    w.add_array("imatrix.datasets", ["pocket-synthetic.txt"])
    w.add_uint32("imatrix.chunk_count", 7)
    w.add_uint32("imatrix.chunk_size", 512)
    for t in r.tensors:
        if len(t.shape) < 2 or t.name == "token_embd.weight" or "norm" in t.name:
            continue
        ne0 = int(t.shape[0])
        counts = 7 * 512
        sums = (rng.gamma(2.0, 1.0, ne0) * counts).astype(np.float32)
        w.add_tensor(t.name + ".in_sum2", sums)
        w.add_tensor(t.name + ".counts", np.array([counts], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ggml type ids -> names as gguf-py spells them (gguf-py 0.19 lacks Q1_0 and Q2_0, so the tensor infos
# of llama-quantize's outputs are read here rather than with GGUFReader).
TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
              11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS",
              18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8",
              25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0",
              39: "MXFP4", 40: "NVFP4", 41: "Q1_0", 42: "Q2_0"}


def tensor_types(path):
    """name -> type of every tensor in a little-endian GGUF v3 file, in file order."""
    import struct
    with open(path, "rb") as f:
        b = f.read(1 << 22)
    assert b[:4] == b"GGUF"
    pos = 4
    def u(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]
    def string():
        nonlocal pos
        n = u("Q")
        s = b[pos:pos + n].decode()
        pos += n
        return s
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def value(t):
        nonlocal pos
        if t == 8:
            string()
        elif t == 9:
            et, n = u("I"), u("Q")
            for _ in range(n):
                value(et)
        else:
            pos += sizes[t]
    u("I")
    n_t, n_kv = u("Q"), u("Q")
    align = 32
    for _ in range(n_kv):
        key = string()
        t = u("I")
        if key == "general.alignment" and t == 4:
            align = struct.unpack_from("<I", b, pos)[0]
        value(t)
    out = {}
    for _ in range(n_t):
        name = string()
        nd = u("I")
        for _ in range(nd):
            u("Q")
        out[name] = TYPE_NAMES[u("I")]
        u("Q")
    header_len = (pos + align - 1) // align * align
    return out, hashlib.sha256(b[:header_len]).hexdigest(), header_len


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def run_quantize(model, ftype, args, imatrix, tmp):
    out = os.path.join(tmp, "out.gguf")
    if os.path.exists(out):
        os.remove(out)
    cmd = ["llama-quantize"] + args + (["--imatrix", imatrix] if imatrix else []) + [model, out, ftype, "2"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rec = {"ftype": ftype, "args": args, "imatrix": imatrix, "ok": r.returncode == 0}
    if r.returncode != 0:
        m = re.findall(r"failed to quantize: (.*)", r.stdout)
        rec["error"] = m[-1].strip() if m else r.stdout.strip().splitlines()[-1]
        return rec
    rec["types"], rec["header_sha256"], rec["header_len"] = tensor_types(out)
    rec["sha256"] = sha256(out)
    rec["n_fallback"] = int(m.group(1)) if (m := re.search(r"WARNING: (\d+) of \d+ tensor\(s\) required fallback", r.stdout)) else 0
    return rec


LINE = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s+(\S+), size =\s+[\d.]+ MiB(?: ->\s+[\d.]+ MiB \((\S+)\))?")


def dry_run(model, ftype, args, imatrix):
    cmd = ["llama-quantize", "--dry-run"] + args + (["--imatrix", imatrix] if imatrix else []) + [model, ftype, "2"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rec = {"ftype": ftype, "args": args, "imatrix": imatrix is not None, "ok": r.returncode == 0}
    if imatrix and "gemma" not in imatrix:
        rec["imatrix"] = imatrix
    if r.returncode != 0:
        m = re.findall(r"failed to quantize: (.*)", r.stdout)
        rec["error"] = m[-1].strip() if m else r.stdout.strip().splitlines()[-1]
        return rec
    types = {}
    for line in r.stdout.splitlines():
        m = LINE.match(line)
        if m:
            types[m.group(1)] = (m.group(3) or m.group(2)).upper()
    rec["types"] = types
    rec["requires_imatrix"] = "will require an imatrix" in r.stdout
    rec["n_fallback"] = int(m.group(1)) if (m := re.search(r"WARNING: (\d+) of \d+ tensor\(s\) required fallback", r.stdout)) else 0
    return rec


SPLIT = "testdata/tiny-llama-split-00001-of-00003.gguf"


def split_runs(tmp):
    """llama-quantize on the split tiny model (three Q8_0 shards): --keep-split keeps the shards,
    without it they become one file. Records every output file's sha256 and header."""
    runs = []
    for ftype, args in [("COPY", ["--keep-split"]), ("COPY", []),
                        ("Q4_0", ["--allow-requantize", "--keep-split"]), ("Q4_0", ["--allow-requantize"])]:
        d = tempfile.mkdtemp(dir=tmp)
        out = os.path.join(d, "out.gguf")
        cmd = ["llama-quantize"] + args + [SPLIT, out, ftype, "2"]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit(f"{cmd} failed:\n{r.stdout}")
        files = {}
        for f in sorted(os.listdir(d)):
            types, hsha, hlen = tensor_types(os.path.join(d, f))
            files[f] = {"sha256": sha256(os.path.join(d, f)), "header_sha256": hsha, "header_len": hlen,
                        "types": types}
        runs.append({"input": SPLIT, "ftype": ftype, "args": args, "files": files})
    return runs


def main():
    os.chdir(ROOT)
    if sys.argv[1:] == ["--split-only"]:
        with open(f"{OUT}/plans.json") as f:
            golden = json.load(f)
        with tempfile.TemporaryDirectory() as tmp:
            golden["split_runs"] = split_runs(tmp)
        with open(f"{OUT}/plans.json", "w") as f:
            json.dump(golden, f, indent=1, sort_keys=True)
            f.write("\n")
        return
    os.makedirs(OUT, exist_ok=True)
    tiny(f"{OUT}/tiny-llama-bf16.gguf", "tiny-llama-bf16", 256, 2, 4, 4, 256, 264, "bf16", True, 32, 99)
    tiny(f"{OUT}/tiny-llama-f32-odd.gguf", "tiny-llama-f32-odd", 64, 16, 4, 1, 80, 264, "f32", False, 0, 7)
    models = {
        "tiny-llama-f16": "testdata/tiny-llama-f16.gguf",
        "tiny-llama-bf16": f"{OUT}/tiny-llama-bf16.gguf",
        "tiny-llama-f32-odd": f"{OUT}/tiny-llama-f32-odd.gguf",
    }
    imatrices = {}
    for i, (name, path) in enumerate(models.items()):
        imatrices[name] = f"{OUT}/{name}.imatrix.gguf"
        make_imatrix(path, imatrices[name], 100 + i)

    golden = {"models": {}, "plans": [], "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in models.items():
            golden["models"][name] = {"path": path, "imatrix": imatrices[name], "sha256": sha256(path)}
            # the plans, with --dry-run (fast: nothing is quantized)
            needs = {}
            for ftype in FTYPES:
                for pure in (False, True):
                    for im in (None, imatrices[name]):
                        rec = dry_run(path, ftype, ["--pure"] if pure else [], im)
                        rec["model"] = name
                        golden["plans"].append(rec)
                        if im is None:
                            needs[(ftype, pure)] = rec.get("requires_imatrix", False)
            for args, fts in EXTRAS:
                for ftype in fts:
                    rec = dry_run(path, ftype, args, None)
                    rec["model"] = name
                    golden["plans"].append(rec)
            golden["models"][name]["needs"] = {f"{k[0]}{'/pure' if k[1] else ''}": v for k, v in needs.items()}
            print(name, "planned", file=sys.stderr, flush=True)

        gemma_src = os.environ.get("GEMMA")
        if gemma_src:
            gemma = "/tmp/gemma-f16.gguf"
            if not os.path.exists(gemma):
                subprocess.run(["llama-quantize", "--allow-requantize", gemma_src, gemma, "F16"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            g = GGUFReader(gemma)
            arch = bytes(g.fields["general.architecture"].parts[-1]).decode()
            hp = {}
            for k in ["block_count", "attention.head_count", "attention.head_count_kv", "expert_count"]:
                f = g.fields.get(f"{arch}.{k}")
                if f is not None:
                    hp[f"{arch}.{k}"] = int(f.parts[-1][0])
            golden["models"]["gemma-3-270m-f16"] = {
                "arch": arch,
                "hparams": hp,
                "tensors": [[t.name, [int(x) for x in t.shape], t.tensor_type.name] for t in g.tensors],
            }
            # a dummy importance matrix: --dry-run only needs one to know it has one
            im = os.path.join(tmp, "gemma.imatrix.gguf")
            w = GGUFWriter(im, "imatrix")
            w.kv_data[0].pop("general.architecture", None)
            w.add_type("imatrix")
            w.add_array("imatrix.datasets", ["x"])
            w.add_uint32("imatrix.chunk_count", 1)
            w.add_uint32("imatrix.chunk_size", 512)
            w.add_tensor("blk.0.attn_q.weight.in_sum2", np.ones(640, dtype=np.float32))
            w.add_tensor("blk.0.attn_q.weight.counts", np.array([1], dtype=np.float32))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            for ftype in FTYPES:
                for pure in (False, True):
                    for imx in (None, im):
                        rec = dry_run(gemma, ftype, ["--pure"] if pure else [], imx)
                        rec["model"] = "gemma-3-270m-f16"
                        golden["plans"].append(rec)
            for args, fts in EXTRAS:
                for ftype in fts:
                    if "--override-kv" in args:
                        continue
                    rec = dry_run(gemma, ftype, args, None)
                    rec["model"] = "gemma-3-270m-f16"
                    golden["plans"].append(rec)
        else:
            print("GEMMA not set: gemma plans skipped", file=sys.stderr)
        with open(f"{OUT}/plans.json", "w") as f:  # the plans now, the runs added below
            json.dump(golden, f, indent=1, sort_keys=True)
            f.write("\n")
        print("plans written", file=sys.stderr, flush=True)

        for name, path in models.items():
            needs = golden["models"][name]["needs"]
            # the whole files: every ftype with and without --pure, with the importance matrix only
            # where one is required
            for ftype in FTYPES:
                for pure in (False, True):
                    im = imatrices[name] if needs[ftype + ("/pure" if pure else "")] else None
                    rec = run_quantize(path, ftype, ["--pure"] if pure else [], im, tmp)
                    rec["model"] = name
                    golden["runs"].append(rec)
            for args, fts in EXTRAS:
                for ftype in fts:
                    rec = run_quantize(path, ftype, args, None, tmp)
                    rec["model"] = name
                    golden["runs"].append(rec)
            # and a few with an importance matrix that is not required
            for ftype in ["Q4_0", "Q4_K_M", "IQ4_NL", "Q6_K"]:
                rec = run_quantize(path, ftype, [], imatrices[name], tmp)
                rec["model"] = name
                golden["runs"].append(rec)
            print(name, "done", file=sys.stderr, flush=True)
        golden["split_runs"] = split_runs(tmp)

    with open(f"{OUT}/plans.json", "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write("\n")
    ok = sum(r["ok"] for r in golden["runs"])
    print(f"wrote {OUT}/plans.json: {len(golden['plans'])} plans, {len(golden['runs'])} runs, {ok} ok",
          file=sys.stderr)


if __name__ == "__main__":
    main()
