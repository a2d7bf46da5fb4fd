//! Block formats F32/F16/BF16, the legacy Q4_0..Q8_1 and the K-quants against ggml's own bytes
//! (testdata/quant, made by scripts/make-quant-golden.sh), plus ggml's round-trip error bounds.

mod common;

use pocket::gguf::spec::ggml_type_by_name;
use pocket::quant::{dequantize_row, quantize_chunk};
use pocket::GgmlType;

const NCASES: usize = 4;
const NROWS: usize = 4;
const NPR: usize = 512;

fn read_f32(name: &str) -> Vec<f32> {
    let b = std::fs::read(common::testdata(&format!("quant/{name}"))).unwrap();
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn read_bytes(name: &str) -> Vec<u8> {
    std::fs::read(common::testdata(&format!("quant/{name}"))).unwrap()
}

fn ty(name: &str) -> GgmlType {
    ggml_type_by_name(name).unwrap()
}

/// Quantizes every case (plain or with the case's imatrix) and compares with ggml's bytes.
fn check_quantize(name: &str, with_imatrix: bool) {
    let t = ty(name);
    let inputs = read_f32("inputs.f32");
    let imatrix = read_f32("imatrix.f32");
    let variant = if with_imatrix { "imatrix" } else { "plain" };
    let want = read_bytes(&format!("{name}.{variant}.bin"));
    let case_bytes = t.bytes_for((NROWS * NPR) as u64).unwrap() as usize;
    assert_eq!(want.len(), NCASES * case_bytes, "{name}.{variant}.bin size");
    for case in 0..NCASES {
        let x = &inputs[case * NROWS * NPR..(case + 1) * NROWS * NPR];
        let im = with_imatrix.then(|| &imatrix[case * NPR..(case + 1) * NPR]);
        let mut got = vec![0u8; case_bytes];
        let n = quantize_chunk(t, x, &mut got, NPR, im).unwrap();
        assert_eq!(n, case_bytes);
        let w = &want[case * case_bytes..(case + 1) * case_bytes];
        if let Some(i) = (0..case_bytes).find(|&i| got[i] != w[i]) {
            let bs = t.type_size as usize;
            let blk = i / bs;
            panic!(
                "{name} {variant} case {case}: first difference in block {blk} (row {}), byte {} of the block: \
                 got {:#04x}, ggml {:#04x}\n got  {:02x?}\n ggml {:02x?}",
                blk * t.block_size as usize / NPR,
                i % bs,
                got[i],
                w[i],
                &got[blk * bs..(blk + 1) * bs],
                &w[blk * bs..(blk + 1) * bs],
            );
        }
    }
}

/// Decodes ggml's bytes and compares bit patterns with ggml's own decoding.
fn check_dequantize(name: &str, variant: &str) {
    let t = ty(name);
    let bytes = read_bytes(&format!("{name}.{variant}.bin"));
    let want = read_f32(&format!("{name}.{variant}.deq"));
    let mut got = vec![0f32; want.len()];
    dequantize_row(t, &bytes, &mut got).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{name} {variant}: value {i} (block {}): got {g:e}, ggml {w:e}",
            i / t.block_size as usize
        );
    }
}

macro_rules! golden {
    ($($test:ident: $name:literal, imatrix: $im:literal;)*) => {$(
        #[test]
        fn $test() {
            check_quantize($name, false);
            check_dequantize($name, "plain");
            if $im {
                check_quantize($name, true);
                check_dequantize($name, "imatrix");
            }
        }
    )*};
}

golden! {
    f16_matches_ggml_bytes: "f16", imatrix: false;
    bf16_matches_ggml_bytes: "bf16", imatrix: false;
    q4_0_matches_ggml_bytes: "q4_0", imatrix: true;
    q4_1_matches_ggml_bytes: "q4_1", imatrix: true;
    q5_0_matches_ggml_bytes: "q5_0", imatrix: true;
    q5_1_matches_ggml_bytes: "q5_1", imatrix: true;
    q8_0_matches_ggml_bytes: "q8_0", imatrix: true;
    q2_k_matches_ggml_bytes: "q2_K", imatrix: true;
    q3_k_matches_ggml_bytes: "q3_K", imatrix: true;
    q4_k_matches_ggml_bytes: "q4_K", imatrix: true;
    q5_k_matches_ggml_bytes: "q5_K", imatrix: true;
    q6_k_matches_ggml_bytes: "q6_K", imatrix: true;
}

#[test]
fn f32_is_copied_bit_for_bit() {
    let x = read_f32("inputs.f32");
    let t = ty("f32");
    let mut b = vec![0u8; x.len() * 4];
    quantize_chunk(t, &x, &mut b, NPR, None).unwrap();
    let mut y = vec![0f32; x.len()];
    dequantize_row(t, &b, &mut y).unwrap();
    assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
}
