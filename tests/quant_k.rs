//! Block formats F32/F16/BF16, the legacy Q4_0..Q8_1 and the K-quants against ggml's own bytes
//! (testdata/quant, made by scripts/make-quant-golden.sh), plus ggml's round-trip error bounds.

mod common;

use pocket::gguf::spec::ggml_type_by_name;
use pocket::quant::{dequantize_row, quantize_chunk, QuantError};
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

/// `generate_data` of ggml's tests/test-quantize-fns.cpp: `0.1 + amplitude * cosf(i + offset)`.
fn generate_data(offset: f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (0.1f64 + (2.0f32 * (i as f32 + offset).cos()) as f64) as f32)
        .collect()
}

/// `array_rmse` of the same file (its sqrt of the sum, over n).
fn array_rmse(a: &[f32], b: &[f32]) -> f32 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (*x - *y) as f64;
            d * d
        })
        .sum();
    (sum.sqrt() as f32) / a.len() as f32
}

/// ggml's `MAX_QUANTIZATION_TOTAL_ERROR*` bound for a type, as test-quantize-fns.cpp picks it.
fn max_total_error(name: &str) -> f32 {
    match name {
        "q2_K" => 0.0075,
        "q3_K" => 0.0040,
        _ => 0.002,
    }
}

/// test-quantize-fns.cpp's "quantization error" check: 4096 values of its synthetic data through
/// quantize and dequantize, RMSE under the type's bound. Also with a flat importance matrix, which
/// takes the `_impl` paths the C test does not reach.
#[test]
fn round_trip_error_is_within_ggmls_bounds() {
    let n = 32 * 128;
    let x = generate_data(0.0, n);
    for name in [
        "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_K", "q3_K", "q4_K",
        "q5_K", "q6_K", "q8_K",
    ] {
        let t = ty(name);
        for npr in [n, 1024] {
            let ones = vec![1.0f32; npr];
            let imatrix: [Option<&[f32]>; 2] = [None, Some(&ones)];
            for im in imatrix {
                let mut q = vec![0u8; t.bytes_for(n as u64).unwrap() as usize];
                quantize_chunk(t, &x, &mut q, npr, im).unwrap();
                let mut y = vec![0f32; n];
                dequantize_row(t, &q, &mut y).unwrap();
                let err = array_rmse(&x, &y);
                let bound = max_total_error(name);
                assert!(
                    err < bound,
                    "{name} (rows of {npr}, imatrix {}): rmse {err} not under ggml's bound {bound}",
                    im.is_some()
                );
            }
        }
    }
}

#[test]
fn partial_blocks_and_wrong_lengths_are_errors_not_panics() {
    let q4k = ty("q4_K");
    let q8 = ty("q8_0");
    let x = vec![0.5f32; 512];
    // Rows that are not whole super-blocks.
    let mut dst = vec![0u8; 1000];
    assert!(matches!(
        quantize_chunk(q4k, &x, &mut dst, 128, None),
        Err(QuantError::PartialBlock {
            n: 128,
            block: 256,
            ..
        })
    ));
    // Source not a whole number of rows, and an empty row length.
    assert!(matches!(
        quantize_chunk(q4k, &x[..300], &mut dst, 256, None),
        Err(QuantError::PartialBlock { n: 300, .. })
    ));
    assert!(matches!(
        quantize_chunk(q4k, &x, &mut dst, 0, None),
        Err(QuantError::PartialBlock { .. })
    ));
    // Destination one byte short / long.
    for len in [287, 289] {
        let mut d = vec![0u8; len];
        assert_eq!(
            quantize_chunk(q4k, &x, &mut d, 256, None),
            Err(QuantError::BadLength {
                ty: "q4_K",
                got: len,
                want: 288,
                n: 512
            })
        );
    }
    // Importance matrix of the wrong length.
    let mut d = vec![0u8; 288];
    assert_eq!(
        quantize_chunk(q4k, &x, &mut d, 256, Some(&[1.0; 255])),
        Err(QuantError::BadImatrix {
            ty: "q4_K",
            got: 255,
            want: 256
        })
    );
    // Decoding: source of the wrong size, destination not whole blocks.
    let mut y = vec![0f32; 64];
    assert!(matches!(
        dequantize_row(q8, &[0u8; 67], &mut y),
        Err(QuantError::BadLength {
            got: 67,
            want: 68,
            ..
        })
    ));
    let mut y = vec![0f32; 33];
    assert!(matches!(
        dequantize_row(q8, &[0u8; 68], &mut y),
        Err(QuantError::PartialBlock { n: 33, .. })
    ));
    // The integer types decode through the format table too (quant::float).
    let mut y = vec![0f32; 4];
    assert!(dequantize_row(ty("i8"), &[0u8; 4], &mut y).is_ok());
}

/// Non-finite and extreme inputs go through every ported path without a panic (ggml would write
/// some bytes for them too; these only must not crash the tool).
#[test]
fn non_finite_inputs_do_not_panic() {
    let mut x = generate_data(1.0, 512);
    x[3] = f32::NAN;
    x[40] = f32::INFINITY;
    x[300] = -f32::INFINITY;
    x[301] = f32::MAX;
    x[302] = -f32::MIN_POSITIVE;
    for name in [
        "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_K", "q3_K", "q4_K",
        "q5_K", "q6_K", "q8_K",
    ] {
        let t = ty(name);
        let im = vec![1.0f32; 512];
        for imatrix in [None, Some(&im[..])] {
            let mut q = vec![0u8; t.bytes_for(512).unwrap() as usize];
            quantize_chunk(t, &x, &mut q, 512, imatrix).unwrap();
            let mut y = vec![0f32; 512];
            dequantize_row(t, &q, &mut y).unwrap();
        }
    }
}

/// Q8_K and Q8_1 (activation formats ggml_quantize_chunk does not take) against ggml's reference
/// functions (testdata/quant_ref, made by scripts/make-quant-golden-ref.sh).
#[test]
fn q8_k_and_q8_1_match_ggml_reference_functions() {
    let x = read_f32("inputs.f32");
    let golden = |n: &str| std::fs::read(common::testdata(&format!("quant_ref/{n}"))).unwrap();
    for (name, file) in [("q8_K", "q8_K.ref.bin"), ("q8_1", "q8_1.ref.bin")] {
        let t = ty(name);
        let want = golden(file);
        let mut got = vec![0u8; want.len()];
        quantize_chunk(t, &x, &mut got, NPR, None).unwrap();
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{name}: first difference in block {}, byte {}: got {:#04x}, ggml {:#04x}",
                i / t.type_size as usize,
                i % t.type_size as usize,
                got[i],
                want[i]
            );
        }
    }
    let want: Vec<f32> = golden("q8_K.ref.deq")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut y = vec![0f32; want.len()];
    dequantize_row(ty("q8_K"), &golden("q8_K.ref.bin"), &mut y).unwrap();
    for (i, (g, w)) in y.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "q8_K value {i}: got {g:e}, ggml {w:e}"
        );
    }
    // An all-zero super-block: d = 0, every quant and sum zero.
    let mut q = vec![0xAAu8; 292];
    quantize_chunk(ty("q8_K"), &[0.0; 256], &mut q, 256, None).unwrap();
    assert!(q.iter().all(|&b| b == 0));
}

/// The parallel split in quantize_chunk / dequantize_row gives exactly the single-thread bytes.
#[test]
fn parallel_chunks_equal_single_thread() {
    let npr = 4096;
    let x = generate_data(0.5, 48 * npr);
    let im: Vec<f32> = (0..npr).map(|i| 0.5 + (i % 7) as f32).collect();
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let (one, three) = (pool(1), pool(3));
    for name in ["q4_K", "q6_K", "q8_0", "q5_1", "f16"] {
        let t = ty(name);
        for imatrix in [None, Some(&im[..])] {
            let run = |p: &rayon::ThreadPool| {
                p.install(|| {
                    let mut q = vec![0u8; t.bytes_for(x.len() as u64).unwrap() as usize];
                    quantize_chunk(t, &x, &mut q, npr, imatrix).unwrap();
                    let mut y = vec![0f32; x.len()];
                    dequantize_row(t, &q, &mut y).unwrap();
                    (q, y.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                })
            };
            assert!(
                run(&one) == run(&three),
                "{name}: threads change the result"
            );
        }
    }
}
