#!/usr/bin/env python3
"""Golden token ids for gemma-3 270M from llama.cpp's llama-tokenize, for tests/tokenizer_gemma.rs.

Each hard string is written to a file and tokenized with
    llama-tokenize -m $GEMMA -f FILE --no-escape --log-disable --ids [--no-bos] [--no-parse-special]
(the file keeps the bytes exact; --no-escape keeps backslashes as they are), in three variants:
default (BOS added, special tokens parsed), --no-bos, and --no-parse-special. For the default variant
the full stdout without --ids (the `id -> 'piece'` lines) is kept as hex, to check `pocket tokenize`'s
output byte for byte.

    source ~/.cache/pocket-peers/env.sh && python3 scripts/make-tokenizer-golden.py
"""
import hashlib
import json
import os
import subprocess
import tempfile

GEMMA = os.environ["GEMMA"]
OUT = os.path.join(os.path.dirname(__file__), "..", "testdata", "tokenizer", "gemma-3-hard.json")

HARD = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n\n",
    " \n ",
    "Hello world",
    " Hello world",
    "Hello  world",
    "Hello   world   ",
    "Hello\tworld\t\tagain",
    "\nleading newline",
    "trailing newline\n",
    "\n\nboth\n\n",
    "line one\r\nline two\r\n",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they've done it, haven't they?",
    "UPPER lower MiXeD cAsE",
    "中文分词测试：你好，世界！",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 텍스트입니다",
    "Ελληνικά και русский язык",
    "مرحبا بالعالم",
    "हिन्दी पाठ",
    "emoji 😀🎉👍🏽 and a family 👨‍👩‍👧‍👦",
    "flags 🇫🇷🇯🇵",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "<div class=\"a\">&amp; &lt;tag&gt;</div>",
    "SELECT * FROM t WHERE id = 42;",
    "3.14159 2,718 1e-9 -0.5 +7 1234567890 00012",
    "$100.00 50% #1 @user ~/path a_b-c",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text<eos>",
    "not a <start_of_turn token",
    "<start_of_turn><start_of_turn>",
    " <start_of_turn> spaced ",
    "<unused0> and <mask>",
    "byte fallback: \u0001\u0002\u007f \U000F0000 \U0010FFFD \ue000",
    "Linear B 𐀀𐀁 cuneiform 𒀀",
    "combining: e\u0301 a\u0308 n\u0303",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "nbsp\u00a0here\u3000ideographic space",
    "▁ already escaped ▁▁",
    "back\\slash \\n not a newline",
    "a" * 40,
    "ab " * 20,
    "!!!???...,,,;;;",
    "    indented with four spaces",
    "tab\tseparated\tvalues\n1\t2\t3\n",
]

VARIANTS = [("default", []), ("no_bos", ["--no-bos"]), ("no_parse_special", ["--no-parse-special"])]


def run(path, extra):
    cmd = ["llama-tokenize", "-m", GEMMA, "-f", path, "--no-escape", "--log-disable"] + extra
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def main():
    cases = []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "text")
        for text in HARD:
            with open(path, "wb") as f:
                f.write(text.encode("utf-8"))
            case = {"text": text}
            for name, flags in VARIANTS:
                out = run(path, flags + ["--ids"]).decode().strip()
                case[name] = json.loads(out)
            case["pieces_stdout_hex"] = run(path, []).hex()
            cases.append(case)
    with open(GEMMA, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    doc = {
        "model": os.path.basename(GEMMA),
        "model_sha256": sha,
        "command": "llama-tokenize -m MODEL -f TEXT --no-escape --log-disable --ids [--no-bos|--no-parse-special]",
        "cases": cases,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(OUT, len(cases), "cases")


main()
