#!/usr/bin/env python3
"""Writes the hostile corpus: GGUF files that are wrong in one way each, and expected.tsv saying how
pocket must reject each one (error kind, and the byte offset the error must point at, or '-' where the
error names a tensor or a file instead). tests/hostile_corpus.rs runs `pocket inspect --json` on every
file and checks exit code 2 and the error; nothing here needs llama.cpp.

    python3 testdata/hostile/make.py

The offsets are where the builder wrote the offending field, recorded as it writes.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


class G:
    """A GGUF byte builder that remembers positions (little-endian unless big=True)."""

    def __init__(self, version=3, big=False, n_tensors=0, n_kv=0, counts=None):
        self.b = bytearray(b"GGUF")
        self.e = ">" if big else "<"
        self.wide = version >= 2
        self.u32(version)
        self.count_at = len(self.b)
        nt, nk = counts if counts else (n_tensors, n_kv)
        self.len(nt)
        self.len(nk)

    def pos(self):
        return len(self.b)

    def u32(self, v):
        self.b += struct.pack(self.e + "I", v)
        return self

    def u64(self, v):
        self.b += struct.pack(self.e + "Q", v)
        return self

    def len(self, v):
        return self.u64(v) if self.wide else self.u32(v)

    def raw(self, bs):
        self.b += bs
        return self

    def str(self, s):
        bs = s if isinstance(s, bytes) else s.encode()
        self.len(len(bs))
        return self.raw(bs)

    def kv_u32(self, k, v):
        at = self.pos()
        self.str(k).u32(4).u32(v)
        return at

    def kv_str(self, k, v):
        at = self.pos()
        self.str(k).u32(8).str(v)
        return at

    def tensor(self, name, dims, type_id, offset):
        at = self.pos()
        self.str(name).u32(len(dims))
        for d in dims:
            self.len(d)
        self.u32(type_id).u64(offset)
        return at

    def pad(self, align=32):
        while len(self.b) % align:
            self.b.append(0)
        return self

    def zeros(self, n):
        self.b += bytes(n)
        return self


cases = []  # (name, bytes, kind, offset or None, text the message must contain)


def case(name, data, kind, offset, text=""):
    cases.append((name, bytes(data), kind, offset, text))


def valid(n_kv=1):
    g = G(n_tensors=1, n_kv=n_kv)
    g.kv_u32("a.b", 7)
    g.tensor("t", [8], 0, 0)
    g.pad()
    g.zeros(32)
    return g


# ---- magic, version, byte order
g = valid()
g.b[0:4] = b"GGML"
case("bad-magic", g.b, "bad_magic", 0, "magic")
for v in [0, 4, 0x7FFFFFFF]:
    g = valid()
    g.b[4:8] = struct.pack("<I", v)
    case(f"version-{v}", g.b, "unsupported_version", 4, "version")
# Version 3 written big-endian but counts little-endian: read big-endian, the counts are absurd.
g = G(n_tensors=1, n_kv=1)
g.b[4:8] = struct.pack(">I", 3)
g.kv_u32("a.b", 7)
case("endian-contradiction", g.b, "count_too_large", 16, "count")

# ---- counts near 2^64
g = G(counts=(1, 2**64 - 1))
g.kv_u32("a.b", 7)
case("kv-count-2pow64", g.b, "count_too_large", 16, "key/value")
g = G(counts=(2**64 - 2, 1))
g.kv_u32("a.b", 7)
case("tensor-count-2pow64", g.b, "count_too_large", 8, "tensor info")

# ---- strings and arrays
g = G(n_kv=1)
g.len(2**64 - 1).zeros(24)
case("key-length-2pow64", g.b, "length_over_limit", 24, "key")
g = G(n_kv=1)
g.len(1000).zeros(24)
case("key-length-past-end", g.b, "length_past_end", 24, "key")
g = G(n_kv=1)
g.str("k").u32(8)
at = g.pos()
g.len(500).raw(b"short")
case("string-length-past-end", g.b, "length_past_end", at, "value of 'k'")
g = G(n_kv=1)
g.str("k").u32(9).u32(4)
at = g.pos()
g.len(2**62).u32(1)
case("array-length-2pow62", g.b, "length_over_limit", at, "array 'k'")
g = G(n_kv=1)
g.str("k").u32(9).u32(4)
at = g.pos()
g.len(1000).u32(1).u32(2)
case("array-length-past-end", g.b, "count_too_large", at, "array 'k'")
g = G(n_kv=1)
g.str("k").u32(9).u32(8).len(2)
g.str("ok")
at = g.pos()
g.len(99).raw(b"x")
case("string-array-element-past-end", g.b, "length_past_end", at, "element of array 'k'")
g = G(n_kv=1)
g.str("k")
g.u32(9)
depth = 3000
first_elem = g.pos() + 4 + 8
for _ in range(depth):
    g.u32(9).len(1)
g.u32(4).len(1).u32(5)
# Rejected at the header of the array nested 16 deep (each level is a type and a count, 12 bytes).
case("arrays-nested-3000-deep", g.b, "nesting_too_deep", first_elem + 15 * 12, "nested deeper than 16")
g = G(n_kv=1)
g.str("k").u32(77).u32(1)
case("bad-value-type", g.b, "bad_value_type", 24 + 8 + 1, "invalid value type 77")
g = G(n_kv=1)
g.str("k").u32(9).u32(13).len(1).u32(0)
case("bad-array-element-type", g.b, "bad_value_type", 24 + 8 + 1 + 4, "invalid value type 13")

# ---- UTF-8
g = G(n_kv=1)
g.str(b"bad\xffkey").u32(4).u32(1)
case("invalid-utf8-key", g.b, "invalid_utf8", 24 + 8 + 3, "key")
g = G(n_kv=1)
g.str("k").u32(8)
at = g.pos()
g.str(b"ok\xc3\x28")
case("invalid-utf8-string", g.b, "invalid_utf8", at + 8 + 2, "value of 'k'")
g = G(n_kv=1)
g.str("k").u32(9).u32(8).len(2).str("fine")
at = g.pos()
g.str(b"\xed\xa0\x80")  # a UTF-16 surrogate, not valid UTF-8
case("invalid-utf8-in-string-array", g.b, "invalid_utf8", at + 8, "string in array 'k'")
g = G(n_tensors=1)
at = g.pos()
g.tensor(b"t\x80", [8], 0, 0)
g.pad().zeros(32)
case("invalid-utf8-tensor-name", g.b, "invalid_utf8", at + 8 + 1, "tensor")

# ---- keys
g = G(n_kv=2)
first = g.kv_u32("a.b", 1)
second = g.kv_u32("a.b", 2)
case("duplicate-key", g.b, "duplicate_key", second, f"first at byte {first}")
g = G(n_kv=1)
at = g.kv_u32("", 1)
case("empty-key", g.b, "empty_key", at, "empty")
for name, value in [("alignment-0", 0), ("alignment-48", 48)]:
    g = G(n_kv=1)
    at = g.kv_u32("general.alignment", value)
    case(name, g.b, "bad_alignment", at, "power of two")
g = G(n_kv=1)
at = g.kv_str("general.alignment", "32")
case("alignment-wrong-type", g.b, "wrong_key_type", at, "UINT32")
g = G(n_tensors=1, n_kv=1)
g.kv_u32("general.alignment", 1 << 31)
g.tensor("t", [8], 0, 0)
g.zeros(64)
case("alignment-huge", g.b, "data_section_past_end", 2**31, "past the end")

# ---- tensor infos
g = G(n_tensors=1)
at = g.tensor("x" * 64, [8], 0, 0)
g.pad().zeros(32)
case("tensor-name-64-bytes", g.b, "tensor_name_too_long", at, "64 bytes")
g = G(n_tensors=2)
first = g.tensor("t", [8], 0, 0)
second = g.tensor("t", [8], 0, 32)
g.pad().zeros(64)
case("duplicate-tensor-name", g.b, "duplicate_tensor", second, f"first at byte {first}")
g = G(n_tensors=1)
at = g.tensor("t", [], 0, 0)
g.pad().zeros(32)
case("n-dims-0", g.b, "bad_dim_count", at, "0 dimensions")
g = G(n_tensors=1)
g.str("t")
at = g.pos()
g.u32(5)
for _ in range(5):
    g.len(1)
g.u32(0).u64(0)
g.pad().zeros(32)
case("n-dims-5", g.b, "bad_dim_count", at, "5 dimensions")
g = G(n_tensors=1)
at = g.tensor("t", [8, 0], 0, 0)
g.pad().zeros(32)
case("dim-zero", g.b, "bad_dim", at, "dimension 1 is 0")
g = G(n_tensors=1)
at = g.tensor("t", [2**64 - 8], 0, 0)
g.pad().zeros(32)
case("dim-negative-as-unsigned", g.b, "bad_dim", at, "dimension 0")
g = G(n_tensors=1)
at = g.tensor("t", [2**32, 2**32], 0, 0)
g.pad().zeros(32)
case("element-count-overflow", g.b, "element_overflow", at, "overflows")
g = G(n_tensors=1)
at = g.tensor("t", [2**31, 2**31], 0, 0)  # 2^62 f32 elements: 2^64 bytes
g.pad().zeros(32)
case("byte-count-overflow", g.b, "element_overflow", at, "overflows")
g = G(n_tensors=1)
at = g.tensor("t", [32], 99, 0)
g.pad().zeros(32)
case("unknown-type-id", g.b, "unknown_type", at, "unknown ggml type id 99")
g = G(n_tensors=1)
at = g.tensor("t", [32], 31, 0)
g.pad().zeros(32)
case("removed-type-q4_0_4_4", g.b, "removed_type", at, "Q4_0_4_4")
g = G(n_tensors=1)
at = g.tensor("t", [48], 12, 0)
g.pad().zeros(256)
case("row-not-whole-blocks", g.b, "partial_block", at, "block size 256")

# ---- layout
g = G(n_tensors=1)
at = g.tensor("t", [8], 0, 4)
g.pad().zeros(64)
case("offset-misaligned", g.b, "misaligned", at, "alignment 32")
g = G(n_tensors=2)
g.tensor("a", [16], 0, 0)
g.tensor("b", [16], 0, 32)
data = g.pad().pos()
g.zeros(128)
case("tensors-overlap", g.b, "overlap", data + 32, "overlaps tensor 'a'")
g = G(n_tensors=1)
g.tensor("t", [1024], 0, 0)
data = g.pad().pos()
g.zeros(100)
case("tensor-past-end-of-file", g.b, "tensor_past_end", data, "missing")
# "Bleeding Llama": an offset far past the end, which a careless reader would turn into a read of
# process memory.
g = G(n_tensors=1)
g.tensor("t", [8], 0, 2**40)
data = g.pad().pos()
g.zeros(32)
case("tensor-offset-2pow40", g.b, "tensor_past_end", data + 2**40, "past the end")
g = G(n_tensors=1)
g.tensor("t", [8], 0, 2**64 - 32)
data = g.pad().pos()
g.zeros(32)
case("tensor-offset-wraps", g.b, "tensor_past_end", 2**64 - 1, "past the end")  # start saturates

# ---- truncated at every section boundary of a valid file
g = G(n_tensors=1, n_kv=1)
kv = g.pos()
g.kv_u32("a.b", 7)
ti = g.pos()
g.tensor("t", [8], 0, 0)
end_infos = g.pos()
data = g.pad().pos()
g.zeros(32)
full = bytes(g.b)
for name, cut, kind, off in [
    ("truncated-in-magic", 2, "truncated", 0),
    ("truncated-after-magic", 4, "truncated", 4),
    ("truncated-in-counts", 12, "truncated", 8),
    ("truncated-before-kvs", kv, "count_too_large", 16),
    ("truncated-in-kv", kv + 6, "count_too_large", 16),  # the count check comes first
    ("truncated-before-tensor-infos", ti, "count_too_large", 8),
    ("truncated-in-tensor-info", ti + 12, "count_too_large", 8),
    ("truncated-before-padding", end_infos, "data_section_past_end", data),
    ("truncated-in-data", data + 20, "tensor_past_end", data),
]:
    case(name, full[:cut], kind, off, "")


def write_split(prefix, shards):
    for i, g in enumerate(shards):
        with open(os.path.join(HERE, f"{prefix}-{i + 1:05d}-of-{len(shards):05d}.gguf"), "wb") as f:
            f.write(bytes(g.b))


def shard(no, count, tensors, names, n_tensors_total=None):
    g = G(n_tensors=len(names), n_kv=3)
    g.b[0:0] = b""
    g.raw(b"")
    # split.no u16, split.count u16, split.tensors.count i32, as llama-gguf-split writes them.
    g.str("split.no").u32(2).raw(struct.pack("<H", no))
    g.str("split.count").u32(2).raw(struct.pack("<H", count))
    g.str("split.tensors.count").u32(5).raw(struct.pack("<i", n_tensors_total or tensors))
    off = 0
    for n in names:
        g.tensor(n, [8], 0, off)
        off += 32
    g.pad()
    g.zeros(32 * len(names))
    return g


def main():
    for f in os.listdir(HERE):
        if f.endswith(".gguf"):
            os.remove(os.path.join(HERE, f))
    lines = ["# file\tkind\toffset\tmessage contains"]
    for name, data, kind, offset, text in cases:
        with open(os.path.join(HERE, name + ".gguf"), "wb") as f:
            f.write(data)
        lines.append(f"{name}.gguf\t{kind}\t{'-' if offset is None else offset}\t{text}")
    # Split sets whose shards disagree (the first shard is what the user gives).
    write_split("split-count-mismatch", [shard(0, 2, 2, ["a"]), shard(1, 3, 2, ["b"])])
    lines.append("split-count-mismatch-00001-of-00002.gguf\tsplit\t-\texpected 1 and 2")
    write_split("split-tensor-twice", [shard(0, 2, 2, ["a"]), shard(1, 2, 2, ["a"])])
    lines.append("split-tensor-twice-00001-of-00002.gguf\tsplit\t-\tin shard 1 and shard 2")
    write_split("split-tensors-count-wrong", [shard(0, 2, 5, ["a"]), shard(1, 2, 5, ["b"])])
    lines.append("split-tensors-count-wrong-00001-of-00002.gguf\tsplit\t-\tsplit.tensors.count is 5")
    g = shard(0, 3, 3, ["a"])
    with open(os.path.join(HERE, "split-missing-shard-00001-of-00003.gguf"), "wb") as f:
        f.write(bytes(g.b))
    g = shard(1, 3, 3, ["b"])
    with open(os.path.join(HERE, "split-missing-shard-00002-of-00003.gguf"), "wb") as f:
        f.write(bytes(g.b))
    lines.append("split-missing-shard-00001-of-00003.gguf\tsplit\t-\tshard 3 of 3 missing")
    with open(os.path.join(HERE, "expected.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 1} hostile files")


if __name__ == "__main__":
    main()
