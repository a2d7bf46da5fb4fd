#!/usr/bin/env python3
"""Golden token ids from llama.cpp for every vocabulary of the model zoo, for tests/tokenizer_zoo.rs.

For each of llama.cpp's vocabulary-only files (scripts/fetch-models.sh vocab) and the zoo's real models
with their own vocabulary (qwen: Qwen2.5-Coder 1.5B, nomic: nomic-embed-text-v1.5), every hard string
is tokenized by llama.cpp three ways: as `llama-tokenize -m MODEL -f TEXT --ids` does by default
(add_special = the model's add_bos, special tokens parsed), as with `--no-parse-special`, and raw
(add_special and parse_special off: test-tokenizer-0's setting); with the bytes of each default id's
piece (llama_token_to_piece, special tokens rendered, as llama-tokenize prints them) and the text
llama_detokenize gives back for the raw ids (nothing removed or rendered) and for the default ids
(BOS/EOS removed, special tokens rendered), in hex. The strings: the hard strings of
testdata/tokenizer/gemma-3-hard.json, every input of the zoo's `.inp` files, and a few more aimed at
WordPiece and Unigram normalisation (accents, case, CJK punctuation, control characters, special-token
text of BERT and T5 vocabularies).

llama-tokenize loads the vocabulary again for each string (2-5 s on the large ones), so the ids come
from scripts/tokenizer-golden.c, which loads it once and calls llama_tokenize as llama-tokenize does;
for every file SAMPLE strings spread over the list are also run through llama-tokenize itself and must
agree, and where the vocabulary has test-tokenizer-0's .inp/.out files the raw ids must equal .out.

    source ~/.cache/pocket-peers/env.sh && python3 scripts/make-zoo-tokenizer-goldens.py [NAME...]

Writes testdata/zoo/tokenizer/NAME.json (NAME = the vocabulary's name, or qwen / nomic).
"""
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LLAMA = os.environ["LLAMA"]
BIN = os.path.join(LLAMA, "build", "bin")
OUT = os.path.join(ROOT, "testdata", "zoo", "tokenizer")
SAMPLE = 5

EXTRA = [
    "Ünïcödé Café naïve RÉSUMÉ façade Ångström",
    "ÀÉÎÕÜ àéîõü ß ẞ İstanbul ıi ǅ Ǆ ǆ ΣΑΣ σας",
    "e\u0301\u0301 a\u0308\u0323 \u0301leading mark",
    "“Smart quotes” — em dash – en dash … ellipsis «guillemets»",
    "中文，标点。符号！“引号”（括号）【方括号】",
    "全角ＡＢＣ　１２３ ｈａｌｆ ｶﾀｶﾅ ﬁﬂ ligatures ① ㈱ ㍻ ™ ½",
    "control\u0007bell\u001bescape\u0085nel\u2028line\u2029para",
    "soft\u00adhyphen zero\u200bwidth non\u200cjoiner word\u2060joiner",
    "nul\u0000byte and \ufffd replacement",
    "[CLS] [SEP] [MASK] [UNK] [PAD] text",
    "Hello [MASK] world [SEP]",
    "<s> </s> <mask> <pad> <unk> text",
    "Hello <mask> world</s>",
    "  leading and trailing   spaces  ",
    "\t\ttabs\t\tand\n\nnewlines\r\n",
    "don't won't can't it's I'd we'll they're you've",
    "URL https://example.com/a?b=c&d=e#f and e-mail a.b@c.de",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 300,
    "12345678901234567890 1,000,000.00 3.14e-10",
]


def fetch(name):
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch-models.sh"), name],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(name + " "):
            return line[len(name) + 1:].strip()
    sys.exit(f"fetch-models.sh {name} printed {out!r}")


def read_inp(path):
    text = open(path, encoding="utf-8", newline="").read()
    return text.split("\n__ggml_vocab_test__\n")


def strings(vocab_dir):
    hard = json.load(open(os.path.join(ROOT, "testdata", "tokenizer", "gemma-3-hard.json"),
                          encoding="utf-8"))
    out = [c["text"] for c in hard["cases"]]
    for inp in sorted(glob.glob(os.path.join(vocab_dir, "*.inp"))):
        out += read_inp(inp)
    out += EXTRA
    seen = set()
    uniq = []
    for s in out:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    return uniq


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return h.hexdigest()


def ids(line):
    return [int(t) for t in line.split()]


def unhex(h):
    return "" if h == "-" else h


def main():
    vocab_dir = fetch("vocab")
    models = []
    for p in sorted(glob.glob(os.path.join(vocab_dir, "ggml-vocab-*.gguf"))):
        models.append((os.path.basename(p)[len("ggml-vocab-"):-len(".gguf")], p))
    models += [("qwen", fetch("qwen")), ("nomic", fetch("nomic"))]
    if len(sys.argv) > 1:
        models = [m for m in models if m[0] in sys.argv[1:]]
    texts = strings(vocab_dir)
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tool = os.path.join(d, "tokenizer-golden")
        subprocess.run(["cc", "-O2", "-o", tool, os.path.join(ROOT, "scripts", "tokenizer-golden.c"),
                        "-I" + os.path.join(LLAMA, "include"), "-I" + os.path.join(LLAMA, "ggml", "include"),
                        "-L" + BIN, "-lllama", "-Wl,-rpath," + BIN], check=True)
        records = os.path.join(d, "strings")
        with open(records, "wb") as f:
            for t in texts:
                b = t.encode("utf-8")
                f.write(b"%d\n" % len(b) + b)
        one = os.path.join(d, "text")
        for name, path in models:
            lines = subprocess.run([tool, path, records], check=True, capture_output=True,
                                   text=True).stdout.split("\n")
            assert lines[0].startswith("add_bos "), lines[0]
            add_bos = lines[0] == "add_bos 1"
            cases = []
            for i, t in enumerate(texts):
                a, b, c, pieces, dr, dd = lines[1 + 6 * i: 7 + 6 * i]
                cases.append({"text": t, "default": ids(a), "no_parse_special": ids(b), "raw": ids(c),
                              "pieces_hex": [unhex(x) for x in pieces.split()],
                              "detok_raw_hex": unhex(dr), "detok_default_hex": unhex(dd)})
            # The raw ids are test-tokenizer-0's: they must equal the vocabulary's .out file.
            if os.path.exists(path + ".inp"):
                raw = {c["text"]: c["raw"] for c in cases}
                outs = open(path + ".out", encoding="utf-8").read().split("\n")
                for k, t in enumerate(read_inp(path + ".inp")):
                    assert raw[t] == ids(outs[k]), (name, t, raw[t], outs[k])
            for case in cases[len(cases) // (2 * SAMPLE)::len(cases) // SAMPLE][:SAMPLE]:
                with open(one, "wb") as f:
                    f.write(case["text"].encode("utf-8"))
                for key, flags in [("default", []), ("no_parse_special", ["--no-parse-special"])]:
                    got = subprocess.run(["llama-tokenize", "-m", path, "-f", one, "--no-escape",
                                          "--log-disable", "--ids"] + flags,
                                         check=True, capture_output=True, text=True).stdout.strip()
                    assert json.loads(got) == case[key], (name, case["text"], key, got, case[key])
            doc = {
                "model": os.path.basename(path),
                "model_sha256": sha256(path),
                "command": "scripts/tokenizer-golden.c (llama_tokenize as llama-tokenize -m MODEL -f TEXT "
                           "--no-escape --ids [--no-parse-special] calls it; raw: add_special and "
                           "parse_special off; pieces of the default ids; llama_detokenize of the raw "
                           "ids (false, false) and of the default ids (remove_special, unparse_special); "
                           f"{SAMPLE} of them checked against llama-tokenize",
                "add_bos": add_bos,
                "cases": cases,
            }
            out = os.path.join(OUT, name + ".json")
            # One case a line: small diffs when llama.cpp changes.
            head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=False, indent=1)
            body = ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases)
            with open(out, "w", encoding="utf-8") as f:
                f.write(head[:-2] + ',\n "cases": [\n' + body + "\n ]\n}\n")
            print(out, len(cases), "cases")


main()
