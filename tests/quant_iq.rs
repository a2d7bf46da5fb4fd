//! The i-quant, ternary, FP4 and low-bit block formats against ggml's own bytes (testdata/quant/, made
//! by scripts/make-quant-golden.sh): decoding ggml's bytes gives ggml's floats bit for bit, encoding
//! gives ggml's bytes, and dequantize(quantize(x)) stays within the error bounds of ggml's
//! tests/test-quantize-fns.cpp.

mod common;

use pocket::gguf::spec::ggml_type_by_name;
use pocket::quant::{dequantize_row, quantize_chunk, requires_imatrix, QuantError};

const NCASES: usize = 4;
const NROWS: usize = 4;
const NPR: usize = 512;

/// Every type of this family ggml can decode.
const DEQUANTIZED: &[&str] = &[
    "iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq4_nl", "iq4_xs",
    "tq1_0", "tq2_0", "mxfp4", "nvfp4", "q1_0", "q2_0",
];

/// The types pocket encodes, bit-exact with ggml_quantize_chunk.
const QUANTIZED: &[&str] = &[
    "iq4_nl", "iq4_xs", "tq1_0", "tq2_0", "mxfp4", "nvfp4", "q1_0", "q2_0", "iq3_xxs", "iq3_s",
    "iq2_s", "iq2_xxs", "iq2_xs", "iq1_s", "iq1_m",
];

fn read(name: &str) -> Option<Vec<u8>> {
    std::fs::read(common::testdata("quant").join(name)).ok()
}

fn floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn inputs() -> (Vec<f32>, Vec<f32>) {
    let x = floats(&read("inputs.f32").expect("testdata/quant/inputs.f32"));
    let im = floats(&read("imatrix.f32").expect("testdata/quant/imatrix.f32"));
    assert_eq!(x.len(), NCASES * NROWS * NPR);
    assert_eq!(im.len(), NCASES * NPR);
    (x, im)
}

/// The variants ggml wrote for a type: "plain" and/or "imatrix".
fn variants(name: &str) -> Vec<&'static str> {
    ["plain", "imatrix"]
        .into_iter()
        .filter(|v| read(&format!("{name}.{v}.bin")).is_some())
        .collect()
}

#[test]
fn dequantize_matches_ggml_bit_for_bit() {
    for name in DEQUANTIZED {
        let ty = ggml_type_by_name(name).unwrap();
        let vs = variants(name);
        assert!(!vs.is_empty(), "{name}: no golden bytes");
        for v in vs {
            let bin = read(&format!("{name}.{v}.bin")).unwrap();
            let want = floats(&read(&format!("{name}.{v}.deq")).unwrap());
            assert_eq!(want.len(), NCASES * NROWS * NPR);
            let mut got = vec![0f32; want.len()];
            dequantize_row(ty, &bin, &mut got).unwrap();
            if let Some(i) = (0..want.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
                let per_case = NROWS * NPR;
                panic!(
                    "{name}.{v}: case {} value {} (block {}): got {:e} ({:#010x}), ggml {:e} ({:#010x})",
                    i / per_case,
                    i % per_case,
                    (i % per_case) / ty.block_size as usize,
                    got[i],
                    got[i].to_bits(),
                    want[i],
                    want[i].to_bits()
                );
            }
        }
    }
}

#[test]
fn quantize_matches_ggml_bytes() {
    let (x, im) = inputs();
    let mut failures = Vec::new();
    for name in QUANTIZED {
        let ty = ggml_type_by_name(name).unwrap();
        let row = ty.bytes_for(NPR as u64).unwrap() as usize;
        let case_bytes = row * NROWS;
        for v in variants(name) {
            let want = read(&format!("{name}.{v}.bin")).unwrap();
            assert_eq!(want.len(), NCASES * case_bytes, "{name}.{v}: golden size");
            for c in 0..NCASES {
                let src = &x[c * NROWS * NPR..(c + 1) * NROWS * NPR];
                let imatrix = (v == "imatrix").then(|| &im[c * NPR..(c + 1) * NPR]);
                let mut got = vec![0u8; case_bytes];
                let n = quantize_chunk(ty, src, &mut got, NPR, imatrix).unwrap();
                assert_eq!(n, case_bytes);
                let want = &want[c * case_bytes..(c + 1) * case_bytes];
                if let Some(i) = (0..case_bytes).find(|&i| got[i] != want[i]) {
                    let bs = ty.type_size as usize;
                    failures.push(format!(
                        "{name}.{v} case {c}: first difference in block {} (row {}), byte {}: got {:#04x}, ggml {:#04x}",
                        i / bs,
                        i / row,
                        i % bs,
                        got[i],
                        want[i]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// test-quantize-fns.cpp's `generate_data`: `0.1 + amplitude·cos(i + offset)`.
fn generate_data(offset: f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (0.1f64 + (2.0f32 * (i as f32 + offset).cos()) as f64) as f32)
        .collect()
}

/// test-quantize-fns.cpp's `array_rmse` (sic: sqrt of the sum, divided by n).
fn array_rmse(a: &[f32], b: &[f32]) -> f32 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = (x - y) as f64;
            d * d
        })
        .sum();
    (sum.sqrt() as f32) / a.len() as f32
}

#[test]
fn round_trip_error_within_ggml_test_bounds() {
    // The bounds of MAX_QUANTIZATION_TOTAL_ERROR* in test-quantize-fns.cpp, per type.
    let bound = |name: &str| match name {
        "q1_0" | "iq1_s" | "iq1_m" => 0.025f32,
        "tq1_0" | "tq2_0" | "q2_0" => 0.01,
        "nvfp4" => 0.003,
        "iq3_s" => 0.004,
        "iq3_xxs" => 0.005,
        "iq2_s" | "iq2_xxs" | "iq2_xs" => 0.0075,
        _ => 0.002,
    };
    let n = 32 * 128;
    let x = generate_data(0.0, n);
    for name in QUANTIZED {
        let ty = ggml_type_by_name(name).unwrap();
        let mut q = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
        // ggml's test skips the types that need an importance matrix; here they get a uniform one and
        // the bound of their bit width (IQ1_*: ggml's bound for its other ~1-bit type, Q1_0).
        let ones = vec![1f32; n];
        let imatrix = requires_imatrix(ty).then_some(&ones[..]);
        quantize_chunk(ty, &x, &mut q, n, imatrix).unwrap();
        let mut y = vec![0f32; n];
        dequantize_row(ty, &q, &mut y).unwrap();
        let err = array_rmse(&x, &y);
        eprintln!("{name}: round-trip error {err}");
        assert!(
            err < bound(name),
            "{name}: round-trip error {err} not below {}",
            bound(name)
        );
    }
}

#[test]
fn quantize_with_imatrix_weights_changes_iq4_choices() {
    // The importance matrix must reach IQ4's scale search: some block comes out different.
    let (x, im) = inputs();
    for name in ["iq4_nl", "iq4_xs"] {
        let ty = ggml_type_by_name(name).unwrap();
        let src = &x[..NROWS * NPR];
        let len = ty.bytes_for((NROWS * NPR) as u64).unwrap() as usize;
        let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
        quantize_chunk(ty, src, &mut a, NPR, None).unwrap();
        quantize_chunk(ty, src, &mut b, NPR, Some(&im[..NPR])).unwrap();
        assert_ne!(a, b, "{name}: imatrix had no effect");
    }
}

#[test]
fn partial_block_is_an_error_not_a_panic() {
    let ty = ggml_type_by_name("iq4_xs").unwrap();
    let x = vec![0f32; 100];
    let mut q = vec![0u8; 136];
    assert!(matches!(
        quantize_chunk(ty, &x, &mut q, 100, None),
        Err(QuantError::PartialBlock { .. })
    ));
    let mut y = vec![0f32; 100];
    assert!(matches!(
        dequantize_row(ty, &q, &mut y),
        Err(QuantError::PartialBlock { .. })
    ));
}

#[test]
fn non_finite_and_extreme_inputs_do_not_panic() {
    // ggml asserts or aborts on some of these; pocket must return bytes (whatever they are) instead.
    let n = 512;
    let rows: Vec<Vec<f32>> = vec![
        vec![f32::NAN; n],
        (0..n)
            .map(|i| if i % 3 == 0 { f32::INFINITY } else { 1.0 })
            .collect(),
        (0..n)
            .map(|i| if i % 5 == 0 { f32::NEG_INFINITY } else { -0.5 })
            .collect(),
        (0..n)
            .map(|i| if i % 2 == 0 { 3.0e38 } else { -3.0e38 })
            .collect(),
        (0..n)
            .map(|i| if i % 7 == 0 { 1.0e-40 } else { 0.0 })
            .collect(),
        vec![-0.0; n],
    ];
    let weights = [vec![1f32; n], vec![0f32; n], vec![f32::NAN; n]];
    for name in QUANTIZED {
        let ty = ggml_type_by_name(name).unwrap();
        let mut q = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
        let mut y = vec![0f32; n];
        for x in &rows {
            for w in &weights {
                quantize_chunk(ty, x, &mut q, n, Some(w)).unwrap();
                dequantize_row(ty, &q, &mut y).unwrap();
            }
            if !requires_imatrix(ty) {
                quantize_chunk(ty, x, &mut q, n, None).unwrap();
            }
        }
    }
}
