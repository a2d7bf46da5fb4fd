//! The SIMD decoders (NEON on aarch64; the dispatched path, whatever it is, elsewhere) against the
//! scalar ports, bit for bit: random blocks (every bit pattern of the quants), blocks whose f16
//! scales are degenerate (zeros, NaNs, infinities, the largest and smallest halves) and the goldens
//! of ggml's bytes in testdata/quant/.

use super::{float, iquants, kquants, legacy};

type Deq = fn(u32, &[u8], &mut [f32]) -> bool;

/// (name, type id, block bytes, block values, offsets of the block's f16 scales, dispatched, scalar)
type Format = (&'static str, u32, usize, usize, &'static [usize], Deq, Deq);

const FORMATS: [Format; 6] = [
    (
        "q4_0",
        legacy::Q4_0,
        18,
        32,
        &[0],
        legacy::dequantize,
        legacy::dequantize_scalar,
    ),
    (
        "q8_0",
        legacy::Q8_0,
        34,
        32,
        &[0],
        legacy::dequantize,
        legacy::dequantize_scalar,
    ),
    (
        "q4_K",
        kquants::Q4_K,
        144,
        256,
        &[0, 2],
        kquants::dequantize,
        kquants::dequantize_scalar,
    ),
    (
        "q5_K",
        kquants::Q5_K,
        176,
        256,
        &[0, 2],
        kquants::dequantize,
        kquants::dequantize_scalar,
    ),
    (
        "q6_K",
        kquants::Q6_K,
        210,
        256,
        &[208],
        kquants::dequantize,
        kquants::dequantize_scalar,
    ),
    (
        "iq4_nl",
        iquants::IQ4_NL,
        18,
        32,
        &[0],
        iquants::dequantize,
        iquants::dequantize_scalar,
    ),
];

/// f16 scales where a decoder could go wrong: ±0, NaNs (quiet, signalling, negative), ±infinity,
/// the largest half, the smallest subnormal, one.
const SPECIAL_HALVES: [u16; 10] = [
    0x0000, 0x8000, 0x7E00, 0x7C01, 0xFE55, 0x7C00, 0xFC00, 0x7BFF, 0x0001, 0x3C00,
];

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545F4914F6CDD1D)
    }
}

fn check(name: &str, what: &str, id: u32, bytes: &[u8], n: usize, fast: Deq, slow: Deq) {
    let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
    assert!(fast(id, bytes, &mut a), "{name}: not decoded");
    assert!(
        slow(id, bytes, &mut b),
        "{name}: not decoded by the scalar port"
    );
    for i in 0..n {
        assert_eq!(
            a[i].to_bits(),
            b[i].to_bits(),
            "{name} {what}: value {i}: {} vs scalar {}",
            a[i],
            b[i]
        );
    }
}

#[test]
fn simd_dequantizers_equal_scalar_ports() {
    let mut rnd = xorshift(0x5EED_CAFE);
    for (name, id, size, qk, scales, fast, slow) in FORMATS {
        let nb = 64;
        let mut bytes: Vec<u8> = (0..nb * size).map(|_| rnd() as u8).collect();
        check(name, "random", id, &bytes, nb * qk, fast, slow);
        // Ordinary scales (random bytes make many NaN/Inf halves): one in [0.5, 2).
        for blk in bytes.chunks_exact_mut(size) {
            for &at in scales {
                let h = 0x3800 | (rnd() as u16 & 0x07FF);
                blk[at..at + 2].copy_from_slice(&h.to_le_bytes());
            }
        }
        check(name, "ordinary scales", id, &bytes, nb * qk, fast, slow);
        for h in SPECIAL_HALVES {
            let mut special = bytes.clone();
            for (k, blk) in special.chunks_exact_mut(size).enumerate() {
                // Every scale of some blocks, one scale of others.
                for (j, &at) in scales.iter().enumerate() {
                    if k % 3 == 0 || k % scales.len() == j {
                        blk[at..at + 2].copy_from_slice(&h.to_le_bytes());
                    }
                }
            }
            check(
                name,
                &format!("scale {h:#06x}"),
                id,
                &special,
                nb * qk,
                fast,
                slow,
            );
        }
        // All-zero and all-ones blocks.
        for fill in [0u8, 0xFF] {
            let b = vec![fill; 4 * size];
            check(
                name,
                &format!("fill {fill:#04x}"),
                id,
                &b,
                4 * qk,
                fast,
                slow,
            );
        }
        // ggml's own bytes.
        for kind in ["plain", "imatrix"] {
            let path = format!(
                "{}/testdata/quant/{name}.{kind}.bin",
                env!("CARGO_MANIFEST_DIR")
            );
            let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(golden.len() % size, 0, "{path}");
            let n = golden.len() / size * qk;
            check(name, kind, id, &golden, n, fast, slow);
        }
    }
}

/// The f16 rows decode every half as the scalar port does (also run in float.rs; here with odd
/// lengths so both the eight-wide loop and the tail run).
#[test]
fn f16_rows_with_tails_equal_scalar() {
    let mut rnd = xorshift(0xF16);
    for n in [0usize, 1, 7, 8, 9, 23, 64, 1001] {
        let x: Vec<f32> = (0..n)
            .map(|i| match i % 7 {
                0 => f32::from_bits(rnd() as u32),
                1 => f32::NAN,
                2 => -f32::INFINITY,
                3 => 65520.0,
                4 => 1e-8,
                _ => (rnd() as i32) as f32 / 1e6,
            })
            .collect();
        let mut c = super::Chunk {
            src: &x,
            dst: &mut vec![0u8; 2 * n],
            n_per_row: n.max(1),
            imatrix: None,
        };
        if n > 0 {
            assert!(float::quantize(float::F16, &mut c));
        }
        let enc = c.dst.to_vec();
        let want: Vec<u8> = x
            .iter()
            .flat_map(|&f| float::fp32_to_fp16(f).to_le_bytes())
            .collect();
        assert_eq!(enc, want, "encode {n}");
        let mut y = vec![0f32; n];
        assert!(float::dequantize(float::F16, &enc, &mut y));
        for (i, v) in y.iter().enumerate() {
            let h = u16::from_le_bytes([enc[2 * i], enc[2 * i + 1]]);
            assert_eq!(
                v.to_bits(),
                float::fp16_to_fp32(h).to_bits(),
                "decode {n} {i}"
            );
        }
    }
}
