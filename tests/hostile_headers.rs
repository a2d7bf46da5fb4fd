//! One test per kind of bad header: each must end in the expected error kind at the expected byte
//! offset, never a panic, never an allocation sized by the bad number.

mod common;

use common::Raw;
use pocket::gguf::{Gguf, GgufError};

fn err(b: &[u8]) -> GgufError {
    Gguf::parse(b).expect_err("hostile input must be rejected")
}

fn assert_err(b: &[u8], kind: &str, offset: Option<u64>) -> GgufError {
    let e = err(b);
    assert_eq!(e.kind(), kind, "wrong error kind: {e}");
    assert_eq!(e.offset(), offset, "wrong offset in: {e}");
    // The message names the problem; it must not be empty or generic.
    assert!(e.to_string().len() > 20, "{e}");
    e
}

/// A minimal valid file: one key, one F32 tensor of 8 elements.
fn valid() -> Raw {
    let mut r = Raw::header(3, false, 1, 1);
    r.kv_u32("a.b", 7);
    r.tensor("t", &[8], 0, 0);
    r.pad(32);
    r.zeros(32);
    r
}

#[test]
fn valid_baseline_parses() {
    let r = valid();
    let g = Gguf::parse(&r.b).unwrap();
    assert_eq!(g.tensors.len(), 1);
    assert_eq!(g.tensor_data(&g.tensors[0]).unwrap().len(), 32);
}

#[test]
fn bad_magic() {
    let mut r = valid();
    r.b[..4].copy_from_slice(b"GGML");
    assert_err(&r.b, "bad_magic", Some(0));
}

#[test]
fn version_zero_four_and_absurd() {
    for v in [0u32, 4, 0x1234_5678, u32::MAX] {
        let mut r = valid();
        r.b[4..8].copy_from_slice(&v.to_le_bytes());
        let e = assert_err(&r.b, "unsupported_version", Some(4));
        assert!(e.to_string().contains("version"), "{e}");
    }
}

#[test]
fn truncated_in_every_header_field() {
    let r = valid();
    // Magic, version, counts, key, value, tensor name, dims, type, offset: cut inside each.
    for cut in [
        0usize, 2, 4, 6, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60,
    ] {
        let e = err(&r.b[..cut]);
        assert!(
            matches!(
                e.kind(),
                "truncated" | "length_past_end" | "count_too_large"
            ),
            "cut at {cut}: unexpected {e}"
        );
        let off = e.offset().unwrap();
        assert!(off <= cut as u64, "cut at {cut}: offset {off} past the cut");
    }
}

#[test]
fn truncated_before_data() {
    let r = valid();
    let e = assert_err(
        &r.b[..r.b.len() - 5],
        "tensor_past_end",
        Some(r.b.len() as u64 - 32),
    );
    assert!(e.to_string().contains("5 missing"), "{e}");
}

#[test]
fn key_count_near_2_pow_64() {
    let mut r = Raw::header(3, false, 0, u64::MAX - 3);
    r.kv_u32("a", 1);
    assert_err(&r.b, "count_too_large", Some(16));
}

#[test]
fn tensor_count_near_2_pow_64() {
    let mut r = Raw::header(3, false, u64::MAX, 0);
    r.zeros(64);
    assert_err(&r.b, "count_too_large", Some(8));
    // 2^63 reads as negative in llama.cpp's int64; the same error here.
    let mut r = Raw::header(3, false, 1 << 63, 0);
    r.zeros(64);
    assert_err(&r.b, "count_too_large", Some(8));
}

#[test]
fn key_length_past_end_and_huge() {
    let mut r = Raw::header(3, false, 0, 1);
    let at = r.pos();
    r.len(1000).bytes(&[b'a'; 40]);
    assert_err(&r.b, "length_past_end", Some(at));
    let mut r = Raw::header(3, false, 0, 1);
    r.len(u64::MAX - 1).bytes(&[0; 32]);
    assert_err(&r.b, "length_over_limit", Some(at));
}

#[test]
fn string_value_length_past_end() {
    let mut r = Raw::header(3, false, 0, 1);
    r.str(b"k").u32(8);
    let at = r.pos();
    r.len(1 << 20).bytes(b"short");
    assert_err(&r.b, "length_past_end", Some(at));
}

#[test]
fn array_length_past_end_and_near_2_pow_64() {
    for (n, kind) in [
        (1000u64, "count_too_large"),
        (u64::MAX - 7, "length_over_limit"),
        (1 << 29, "count_too_large"),
    ] {
        let mut r = Raw::header(3, false, 0, 1);
        r.str(b"arr").u32(9).u32(4);
        let at = r.pos();
        r.len(n).zeros(16);
        assert_err(&r.b, kind, Some(at));
    }
}

#[test]
fn string_array_element_length_past_end() {
    let mut r = Raw::header(3, false, 0, 1);
    r.str(b"toks").u32(9).u32(8).len(2);
    r.str(b"ok");
    let at = r.pos();
    r.len(1000).bytes(b"xx");
    assert_err(&r.b, "length_past_end", Some(at));
    // Over llama.cpp's 1 GiB string limit is its own error.
    let mut r = Raw::header(3, false, 0, 1);
    r.str(b"toks").u32(9).u32(8).len(1);
    let at = r.pos();
    r.len(u32::MAX as u64).bytes(b"xx");
    assert_err(&r.b, "length_over_limit", Some(at));
}

#[test]
fn arrays_nested_thousands_deep() {
    let mut r = Raw::header(3, false, 0, 1);
    r.str(b"deep").u32(9);
    for _ in 0..5000 {
        r.u32(9).len(1);
    }
    r.u32(4).len(0);
    let e = err(&r.b);
    assert_eq!(e.kind(), "nesting_too_deep", "{e}");
}

#[test]
fn invalid_utf8_in_key() {
    let mut r = Raw::header(3, false, 0, 1);
    let at = r.pos();
    r.str(b"ab\xffc").u32(4).u32(1);
    assert_err(&r.b, "invalid_utf8", Some(at + 8 + 2));
}

#[test]
fn invalid_utf8_in_string_value_and_array() {
    let mut r = Raw::header(3, false, 0, 1);
    r.str(b"k").u32(8);
    let at = r.pos();
    r.str(b"\xc3\x28");
    assert_err(&r.b, "invalid_utf8", Some(at + 8));

    let mut r = Raw::header(3, false, 0, 1);
    r.str(b"k").u32(9).u32(8).len(2).str(b"fine");
    let at = r.pos();
    r.str(b"x\xe2\x82");
    assert_err(&r.b, "invalid_utf8", Some(at + 8 + 1));
}

#[test]
fn invalid_utf8_in_tensor_name() {
    let mut r = Raw::header(3, false, 1, 0);
    let at = r.pos();
    r.str(b"\x80bad").u32(1).len(8).u32(0).u64(0);
    r.pad(32);
    r.zeros(32);
    assert_err(&r.b, "invalid_utf8", Some(at + 8));
}

#[test]
fn bad_value_types() {
    for t in [13u32, 0xFFFF_FFFF] {
        let mut r = Raw::header(3, false, 0, 1);
        r.str(b"k");
        let at = r.pos();
        r.u32(t).u32(0);
        assert_err(&r.b, "bad_value_type", Some(at));
    }
    // Bad element type inside an array.
    let mut r = Raw::header(3, false, 0, 1);
    r.str(b"k").u32(9);
    let at = r.pos();
    r.u32(77).len(1).u32(0);
    assert_err(&r.b, "bad_value_type", Some(at));
}

#[test]
fn empty_key() {
    let mut r = Raw::header(3, false, 0, 2);
    r.kv_u32("fine", 1);
    let at = r.kv_u32("", 1);
    assert_err(&r.b, "empty_key", Some(at));
}

#[test]
fn duplicate_key() {
    let mut r = Raw::header(3, false, 0, 3);
    let first = r.kv_u32("general.x", 1);
    r.kv_u32("other", 1);
    let at = r.kv_u32("general.x", 2);
    let e = assert_err(&r.b, "duplicate_key", Some(at));
    assert_eq!(
        e,
        GgufError::DuplicateKey {
            key: "general.x".into(),
            offset: at,
            first
        }
    );
}

#[test]
fn alignment_zero_not_power_of_two_and_wrong_type() {
    for a in [0u32, 3, 48] {
        let mut r = Raw::header(3, false, 0, 1);
        let at = r.kv_u32("general.alignment", a);
        assert_err(&r.b, "bad_alignment", Some(at));
    }
    let mut r = Raw::header(3, false, 0, 1);
    let at = r.pos();
    r.str(b"general.alignment").u32(10).u64(32);
    assert_err(&r.b, "wrong_key_type", Some(at));
}

#[test]
fn alignment_huge_puts_data_past_end() {
    let mut r = Raw::header(3, false, 1, 1);
    r.kv_u32("general.alignment", 1 << 31);
    r.tensor("t", &[8], 0, 0);
    r.zeros(64);
    assert_err(&r.b, "data_section_past_end", Some(1 << 31));
}

#[test]
fn tensor_name_too_long() {
    let name = "x".repeat(64);
    let mut r = Raw::header(3, false, 1, 0);
    let at = r.tensor(&name, &[8], 0, 0);
    r.pad(32);
    r.zeros(32);
    assert_err(&r.b, "tensor_name_too_long", Some(at));
}

#[test]
fn duplicate_tensor_name() {
    let mut r = Raw::header(3, false, 2, 0);
    let first = r.tensor("w", &[8], 0, 0);
    let at = r.tensor("w", &[8], 0, 32);
    r.pad(32);
    r.zeros(64);
    let e = assert_err(&r.b, "duplicate_tensor", Some(at));
    assert_eq!(
        e,
        GgufError::DuplicateTensor {
            name: "w".into(),
            offset: at,
            first
        }
    );
}

#[test]
fn n_dims_zero_and_over_four() {
    let mut r = Raw::header(3, false, 1, 0);
    let at = r.tensor("s", &[], 0, 0);
    r.pad(32);
    r.zeros(32);
    assert_err(&r.b, "bad_dim_count", Some(at));

    let mut r = Raw::header(3, false, 1, 0);
    r.str(b"five");
    let at = r.pos();
    r.u32(5).zeros(60);
    assert_err(&r.b, "bad_dim_count", Some(at));
}

#[test]
fn zero_and_negative_as_unsigned_dims() {
    for d in [0u64, u64::MAX, 1 << 63] {
        let mut r = Raw::header(3, false, 1, 0);
        let at = r.tensor("t", &[8, d], 0, 0);
        r.pad(32);
        r.zeros(32);
        let e = assert_err(&r.b, "bad_dim", Some(at));
        assert!(e.to_string().contains("dimension 1"), "{e}");
    }
}

#[test]
fn element_count_overflow() {
    let mut r = Raw::header(3, false, 1, 0);
    let at = r.tensor("t", &[1 << 32, 1 << 32], 0, 0);
    r.pad(32);
    r.zeros(32);
    assert_err(&r.b, "element_overflow", Some(at));
    // Element count fits, byte count of a 4-byte type does not.
    let mut r = Raw::header(3, false, 1, 0);
    let at = r.tensor("t", &[1 << 31, 1 << 31, 2], 0, 0);
    r.pad(32);
    r.zeros(32);
    assert!(matches!(
        err(&r.b).kind(),
        "element_overflow" | "tensor_past_end"
    ));
    let _ = at;
}

#[test]
fn unknown_and_removed_type_ids() {
    for (id, kind) in [
        (43u32, "unknown_type"),
        (1000, "unknown_type"),
        (u32::MAX, "unknown_type"),
        (4, "removed_type"),
        (5, "removed_type"),
        (31, "removed_type"),
        (36, "removed_type"),
    ] {
        let mut r = Raw::header(3, false, 1, 0);
        let at = r.tensor("t", &[256], id, 0);
        r.pad(32);
        r.zeros(1024);
        assert_err(&r.b, kind, Some(at));
    }
    let mut r = Raw::header(3, false, 1, 0);
    r.tensor("t", &[32], 31, 0);
    r.pad(32);
    r.zeros(64);
    assert!(
        err(&r.b).to_string().contains("Q4_0_4_4"),
        "removed type must be named"
    );
}

#[test]
fn rows_not_whole_blocks() {
    let mut r = Raw::header(3, false, 1, 0);
    let at = r.tensor("t", &[33, 2], 2, 0); // q4_0, block 32
    r.pad(32);
    r.zeros(128);
    let e = assert_err(&r.b, "partial_block", Some(at));
    assert!(e.to_string().contains("q4_0"), "{e}");
}

#[test]
fn offset_misaligned() {
    let mut r = Raw::header(3, false, 1, 0);
    let at = r.tensor("t", &[8], 0, 4);
    r.pad(32);
    r.zeros(64);
    assert_err(&r.b, "misaligned", Some(at));
}

#[test]
fn offset_past_end_of_file_bleeding_llama() {
    // A tensor pointing far past the file: nothing outside the file may ever be read.
    let mut r = Raw::header(3, false, 1, 0);
    r.tensor("t", &[8], 0, 1 << 40);
    let data = r.pad(32);
    r.zeros(32);
    let e = assert_err(&r.b, "tensor_past_end", Some(data + (1 << 40)));
    assert!(e.to_string().contains("missing"), "{e}");
    // Offset so large that data start + offset overflows.
    let mut r = Raw::header(3, false, 1, 0);
    r.tensor("t", &[8], 0, u64::MAX - 31);
    r.pad(32);
    r.zeros(32);
    assert_eq!(err(&r.b).kind(), "tensor_past_end");
}

#[test]
fn overlapping_tensors() {
    let mut r = Raw::header(3, false, 2, 0);
    r.tensor("a", &[16], 0, 0); // 64 bytes
    r.tensor("b", &[8], 0, 32); // starts inside a
    let data = r.pad(32);
    r.zeros(128);
    let e = assert_err(&r.b, "overlap", Some(data + 32));
    assert!(
        e.to_string().contains("'a'") && e.to_string().contains("'b'"),
        "{e}"
    );
}

#[test]
fn gap_or_out_of_order_is_what_llama_cpp_rejects() {
    let mut r = Raw::header(3, false, 2, 0);
    r.tensor("a", &[8], 0, 64);
    r.tensor("b", &[8], 0, 0);
    r.pad(32);
    r.zeros(128);
    let e = err(&r.b);
    assert_eq!(
        e,
        GgufError::UnexpectedOffset {
            name: "a".into(),
            offset: 64,
            expected: 0
        }
    );
}

#[test]
fn big_endian_counts_are_read_big_endian() {
    // The same hostile count in a big-endian file is still caught at the same offset.
    let mut r = Raw::header(3, true, 0, u64::MAX);
    r.zeros(32);
    assert_err(&r.b, "count_too_large", Some(16));
    let mut r = Raw::header(3, true, 1, 1);
    r.kv_u32("a.b", 7);
    r.tensor("t", &[8], 0, 0);
    r.pad(32);
    r.zeros(32);
    let g = Gguf::parse(&r.b).unwrap();
    assert_eq!(g.endian, pocket::Endian::Big);
    assert_eq!(g.get_u64("a.b"), Some(7));
    assert_eq!(g.tensors[0].dims, vec![8]);
}

#[test]
fn v1_lengths_are_u32() {
    let mut r = Raw::header(1, false, 1, 1);
    r.kv_str("general.name", b"v1");
    r.tensor("t", &[4, 2], 0, 0);
    r.pad(32);
    r.zeros(32);
    let g = Gguf::parse(&r.b).unwrap();
    assert_eq!(g.version, 1);
    assert_eq!(g.get_str("general.name"), Some("v1"));
    assert_eq!(g.tensors[0].dims, vec![4, 2]);
}

#[test]
fn header_only_view_checks_against_full_size() {
    let r = valid();
    let hdr_len = r.b.len() - 32;
    let g = Gguf::parse_header_only(&r.b[..hdr_len], r.b.len() as u64).unwrap();
    assert_eq!(g.tensors.len(), 1);
    assert!(
        g.tensor_data(&g.tensors[0]).is_none(),
        "no data in a header-only view"
    );
    let e = Gguf::parse_header_only(&r.b[..hdr_len], r.b.len() as u64 - 1).unwrap_err();
    assert_eq!(e.kind(), "tensor_past_end");
}
