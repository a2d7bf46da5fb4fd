#!/usr/bin/env python3
"""Goldens of tests/chat_template.rs (testdata/chat/), from llama.cpp's own chat formatting.

    source ~/.cache/pocket-peers/env.sh && python3 scripts/make-chat-goldens.py

Builds scripts/chat-template-golden.c against the peer's libllama (formatting runs no model, so the
default build works) and records what `llama_chat_apply_template` makes of:
  - by-name.json: every built-in template name (`llama_chat_builtin_templates`), for each of the
    conversations below;
  - detect.json: real Jinja sources, each detected by llama.cpp's heuristics and applied to
    conversations "full" and "tools" (outputs null when llama.cpp does not support it; same_as: the
    built-in names giving those same outputs), for the template strings of
    $LLAMA/tests/test-chat-template.cpp (C++ literals decoded here) and every
    $LLAMA/models/templates/*.jinja.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "chat")
LLAMA = os.environ.get("LLAMA") or sys.exit("LLAMA unset: source ~/.cache/pocket-peers/env.sh")
BIN = os.path.expanduser("~/.cache/pocket-peers/llama.cpp/build/bin")

CONVERSATIONS = {
    # system + user + assistant + user, generation prompt; spaces around contents to exercise trims.
    "full": (True, [
        ("system", "You are a helpful assistant."),
        ("user", "Hello!"),
        ("assistant", "  Hi there \u2014 how can I help?  \n"),
        ("user", "\tWhat is the capital of France? \u00c9t\u00e9 \U0001f600\n"),
    ]),
    # llama.cpp's own test conversation (tests/test-chat-template.cpp).
    "llama-test": (True, [
        ("system", "You are a helpful assistant"),
        ("user", "Hello"),
        ("assistant", "Hi there"),
        ("user", "Who are you"),
        ("assistant", "   I am an assistant   "),
        ("user", "Another question"),
    ]),
    # No system message, ending on the assistant, no generation prompt.
    "no-system": (False, [
        ("user", "Hi"),
        ("assistant", "Hello."),
        ("user", "Bye"),
        ("assistant", " Goodbye! "),
    ]),
    # Tool roles some templates know, and an unknown role.
    "tools": (True, [
        ("user", "What is the weather?"),
        ("assistant_tool_call", "<tool_call>\n{\"name\": \"get_weather\"}\n</tool_call>"),
        ("tool_response", "{\"temperature\": 72}"),
        ("tool", "72F"),
        ("function", "f()"),
        ("narrator", "  aside  "),
        ("assistant", "It is 72F."),
    ]),
}


def c_literal(src, i):
    """Decodes the C++ string literal starting at src[i] == '"'; returns (text, index after it)."""
    assert src[i] == '"'
    i += 1
    out = []
    esc = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "0": "\0"}
    while src[i] != '"':
        if src[i] == "\\":
            c = src[i + 1]
            if c not in esc:
                sys.exit(f"unhandled escape \\{c} at {i}")
            out.append(esc[c])
            i += 2
        else:
            out.append(src[i])
            i += 1
    return "".join(out), i + 1


def test_cases():
    src = open(os.path.join(LLAMA, "tests", "test-chat-template.cpp"), encoding="utf-8").read()
    start = src.index("std::vector<TestCase> test_cases")
    cases = []
    for m in re.finditer(r'/\* \.name= \*/ "', src[start:]):
        name, _ = c_literal(src, start + m.end() - 1)
        t = re.compile(r'/\* \.template_str=? \*/ (?:U8C\()?"').search(src, start + m.end())
        tmpl, _ = c_literal(src, t.end() - 1)
        cases.append((name, tmpl))
    return cases


def main():
    tmp = tempfile.mkdtemp()
    tool = os.path.join(tmp, "chat-template-golden")
    subprocess.run(["cc", "-O2", "-o", tool, os.path.join(ROOT, "scripts", "chat-template-golden.c"),
                    "-I" + os.path.join(LLAMA, "include"), "-I" + os.path.join(LLAMA, "ggml", "include"),
                    "-L" + BIN, "-lllama", "-Wl,-rpath," + BIN], check=True)

    def apply(tmpl, conv):
        add_ass, msgs = CONVERSATIONS[conv]
        path = os.path.join(tmp, "tmpl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(tmpl)
        args = [tool, path, "1" if add_ass else "0"] + [x for m in msgs for x in m]
        r = subprocess.run(args, stdout=subprocess.PIPE)
        if r.returncode == 3:
            return None
        if r.returncode != 0:
            sys.exit(f"chat-template-golden failed on {tmpl[:60]!r}")
        return r.stdout.decode("utf-8")

    names = subprocess.run([tool, "--list"], stdout=subprocess.PIPE, check=True, text=True).stdout.split()
    convs = {k: {"add_ass": a, "messages": [list(m) for m in ms]} for k, (a, ms) in CONVERSATIONS.items()}
    by_name = [{"name": n, "conversation": c, "output": apply(n, c)} for n in names for c in CONVERSATIONS]
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "by-name.json"), "w", encoding="utf-8") as f:
        json.dump({"conversations": convs, "cases": by_name}, f, ensure_ascii=False, indent=1)
        f.write("\n")

    real = [("tests/test-chat-template.cpp: " + n, t) for n, t in test_cases()]
    tdir = os.path.join(LLAMA, "models", "templates")
    for fn in sorted(os.listdir(tdir)):
        if fn.endswith(".jinja"):
            real.append(("models/templates/" + fn, open(os.path.join(tdir, fn), encoding="utf-8").read()))
    # The template llama.cpp detected is not exposed by libllama: name the built-in templates whose
    # formatting of the same conversations is identical (one, but for granite-4.0/4.1: same code).
    DET = ["full", "tools"]
    outs = {}
    for c in by_name:
        outs.setdefault(c["name"], {})[c["conversation"]] = c["output"]
    same = {}
    for n, o in outs.items():
        same.setdefault(tuple(o[k] for k in DET), []).append(n)
    detect = []
    for s, t in real:
        o = {k: apply(t, k) for k in DET}
        sup = o["full"] is not None
        detect.append({"source": s, "outputs": o if sup else None,
                       "same_as": same.get(tuple(o[k] for k in DET), []) if sup else [], "template": t})
    with open(os.path.join(OUT, "detect.json"), "w", encoding="utf-8") as f:
        json.dump({"conversations": {k: convs[k] for k in DET}, "cases": detect}, f, ensure_ascii=False,
                  indent=1)
        f.write("\n")
    for d in detect:
        if d["outputs"] is not None and len(d["same_as"]) != 1:
            print("note:", d["source"], "formats like", d["same_as"])
    n_sup = sum(1 for d in detect if d["outputs"] is not None)
    print(f"{len(names)} names x {len(CONVERSATIONS)} conversations; {len(detect)} real templates "
          f"({n_sup} supported by llama.cpp)")


if __name__ == "__main__":
    main()
