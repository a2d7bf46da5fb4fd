//! The NEON kernels against their scalar ports in `exec::dot` (bounded float-order difference;
//! `neon` and `dotprod` bit for bit). Run under qemu on x86 hosts.

use super::*;
use crate::exec::dot;

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545F4914F6CDD1D)
    }
}

fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_bits().to_le_bytes()
}

/// (name, type id, weight block bytes, activation block bytes, values per block, scalar port)
type Case = (&'static str, TypeId, usize, usize, usize, DotFn);

fn q45_k_low(w: &[u8], a: &[u8]) -> f32 {
    dot::dot_q45_k(w, a, false)
}

fn q45_k_high(w: &[u8], a: &[u8]) -> f32 {
    dot::dot_q45_k(w, a, true)
}

const CASES: [Case; 6] = [
    ("q8_0", TypeId::Q8_0, 34, 34, 32, dot::dot_q8_0),
    ("q4_0", TypeId::Q4_0, 18, 34, 32, dot::dot_q4_0),
    ("q5_0", TypeId::Q5_0, 22, 34, 32, dot::dot_q5_0),
    ("q4_K", TypeId::Q4_K, 144, 292, 256, q45_k_low),
    ("q5_K", TypeId::Q5_K, 176, 292, 256, q45_k_high),
    ("q6_K", TypeId::Q6_K, 210, 292, 256, dot::dot_q6_k),
];

/// A weight row of `nb` blocks: every quant bit random (so every level, high bit and six-bit
/// scale occurs), f16 scales random in ±[2^-12, 2) (finite, both signs; K-quant `d`/`dmin`
/// positive as quantizers make them, Q6_K's int8 scales random).
fn weights(case: &Case, nb: usize, rnd: &mut impl FnMut() -> u64, extreme: bool) -> Vec<u8> {
    let (_, id, bs, ..) = *case;
    let mut w: Vec<u8> = (0..nb * bs)
        .map(|_| if extreme { 0xff } else { rnd() as u8 })
        .collect();
    let mut scale = |neg: bool| {
        let m = 1.0 + (rnd() % 1000) as f32 / 1000.0;
        let e = (rnd() % 12) as i32;
        let v = m * 2f32.powi(-e);
        f16_bytes(if neg && rnd() % 2 == 0 { -v } else { v })
    };
    for b in w.chunks_exact_mut(bs) {
        match id {
            TypeId::Q8_0 | TypeId::Q4_0 | TypeId::Q5_0 => b[..2].copy_from_slice(&scale(true)),
            TypeId::Q4_K | TypeId::Q5_K => {
                b[..2].copy_from_slice(&scale(false));
                b[2..4].copy_from_slice(&scale(false));
            }
            _ => b[208..210].copy_from_slice(&scale(false)),
        }
        if extreme && id == TypeId::Q8_0 {
            // -128 in every quant: the largest products.
            b[2..].fill(0x80);
        }
    }
    w
}

/// An activation row of `nb` blocks (Q8_0, or Q8_K with consistent block sums), quants random
/// in -128..=127 (all -128 when `extreme`).
fn acts(case: &Case, nb: usize, rnd: &mut impl FnMut() -> u64, extreme: bool) -> Vec<u8> {
    let (_, _, _, abs, ..) = *case;
    let mut a = vec![0u8; nb * abs];
    for b in a.chunks_exact_mut(abs) {
        let d = (1.0 + (rnd() % 1000) as f32 / 1000.0) * 2f32.powi(-((rnd() % 10) as i32));
        if abs == 34 {
            b[..2].copy_from_slice(&f16_bytes(d));
            for v in &mut b[2..] {
                *v = if extreme { 0x80 } else { rnd() as u8 };
            }
        } else {
            b[..4].copy_from_slice(&d.to_le_bytes());
            for v in &mut b[4..260] {
                *v = if extreme { 0x80 } else { rnd() as u8 };
            }
            for j in 0..16 {
                let s: i16 = b[4 + 16 * j..20 + 16 * j]
                    .iter()
                    .map(|&v| v as i8 as i16)
                    .sum();
                b[260 + 2 * j..262 + 2 * j].copy_from_slice(&s.to_le_bytes());
            }
        }
    }
    a
}

/// `Σ |w_i · a_i|` over the dequantized values (f64): the scale of the float rounding a kernel
/// can differ by.
fn abs_sum(case: &Case, w: &[u8], a: &[u8], n: usize) -> f64 {
    use crate::quant::dequantize_row;
    let (_, id, _, abs, ..) = *case;
    let mut wd = vec![0f32; n];
    let mut ad = vec![0f32; n];
    dequantize_row(id.ty(), w, &mut wd).unwrap();
    let at = if abs == 34 {
        TypeId::Q8_0
    } else {
        TypeId::Q8_K
    };
    dequantize_row(at.ty(), a, &mut ad).unwrap();
    wd.iter()
        .zip(&ad)
        .map(|(x, y)| (*x as f64 * *y as f64).abs())
        .sum()
}

/// Relative tolerance of a kernel against its scalar reference, times `Σ |w_i · a_i|`: the
/// integer sums are exact, only the order of the float scaling and adding differs.
const TOL: f64 = 1e-5;

fn check(name: &str, form: &str, got: f32, want: f32, bound: f64) {
    let err = (got as f64 - want as f64).abs();
    assert!(
        err <= TOL * bound,
        "{name} {form}: {got} vs scalar {want} (|diff| {err:e} > {TOL} x {bound:e})"
    );
}

/// Block counts: one, an odd count (the scalar tail of the 32-value kernels), an even count
/// and a model-sized row.
const LENGTHS: [usize; 5] = [1, 2, 3, 7, 16];

/// Every form this CPU can run of every kernel, and the form `best_dot` picks, on random rows
/// and rows of the largest quants, against the scalar references.
#[test]
fn kernels_match_scalar_references() {
    let dotprod = has_dotprod();
    eprintln!("exec::neon: dotprod {dotprod}, i8mm {}", has_i8mm());
    let mut rnd = xorshift(0x5eed);
    for case in &CASES {
        let (name, id, _, _, per, scalar) = *case;
        let best = best_dot(id);
        if crate::isa::cpu().simd() {
            let want = dot_for(id, dotprod).unwrap();
            assert!(best.unwrap() as usize == want as usize, "{name}: best_dot");
        } else {
            assert!(best.is_none(), "{name}: POCKET_FORCE_SCALAR");
        }
        for &nb in &LENGTHS {
            for trial in 0..6 {
                let extreme = trial == 0;
                let w = weights(case, nb, &mut rnd, extreme);
                let a = acts(case, nb, &mut rnd, extreme);
                let want = scalar(&w, &a);
                let bound = abs_sum(case, &w, &a, nb * per);
                type Form = unsafe fn(&[u8], &[u8]) -> f32;
                let (plain, sdot): (Form, Form) = match id {
                    TypeId::Q8_0 => (q8_0::neon as _, q8_0::dotprod as _),
                    TypeId::Q4_0 => (q4_0::neon as _, q4_0::dotprod as _),
                    TypeId::Q5_0 => (q5_0::neon as _, q5_0::dotprod as _),
                    TypeId::Q4_K => (q4_k::neon as _, q4_k::dotprod as _),
                    TypeId::Q5_K => (q5_k::neon as _, q5_k::dotprod as _),
                    _ => (q6_k::neon as _, q6_k::dotprod as _),
                };
                // SAFETY: NEON is part of every aarch64 target.
                check(name, "neon", unsafe { plain(&w, &a) }, want, bound);
                if dotprod {
                    // SAFETY: the CPU has dotprod (checked above).
                    let (p, d) = unsafe { (plain(&w, &a), sdot(&w, &a)) };
                    check(name, "dotprod", d, want, bound);
                    assert_eq!(p.to_bits(), d.to_bits(), "{name}: neon and dotprod forms");
                }
                check(
                    name,
                    "safe_neon",
                    dot_for(id, false).unwrap()(&w, &a),
                    want,
                    bound,
                );
                check(
                    name,
                    "safe_dotprod",
                    dot_for(id, true).unwrap()(&w, &a),
                    want,
                    bound,
                );
                if let Some(best) = best {
                    check(name, "best_dot", best(&w, &a), want, bound);
                }
            }
        }
    }
}

type I8mmForm = unsafe fn(&[u8], &[u8], &[u8], &[u8]) -> [[f32; 2]; 2];

/// The i8mm two-by-two kernels (when the CPU has i8mm) and their safe wrappers (any CPU) give
/// the four scalar dots.
#[test]
fn two_by_two_kernels_match_scalar_references() {
    let i8mm = has_i8mm();
    let mut rnd = xorshift(0x2b2);
    for case in [&CASES[0], &CASES[1], &CASES[3], &CASES[5]] {
        let (name, id, _, _, per, scalar) = *case;
        assert_eq!(
            best_dot_2x2(id).is_some(),
            i8mm && crate::isa::cpu().simd(),
            "{name}"
        );
        for &nb in &LENGTHS {
            for trial in 0..4 {
                let extreme = trial == 0;
                let w = [
                    weights(case, nb, &mut rnd, extreme),
                    weights(case, nb, &mut rnd, false),
                ];
                let a = [
                    acts(case, nb, &mut rnd, extreme),
                    acts(case, nb, &mut rnd, false),
                ];
                let (wrapper, i8mm_form): (Dot2x2Fn, I8mmForm) = match id {
                    TypeId::Q8_0 => (q8_0_2x2, q8_0_2x2_i8mm),
                    TypeId::Q4_0 => (q4_0_2x2, q4_0_2x2_i8mm),
                    TypeId::Q4_K => (q4_k_2x2, q4_k_2x2_i8mm),
                    _ => (q6_k_2x2, q6_k_2x2_i8mm),
                };
                let got_safe = wrapper(&w[0], &w[1], &a[0], &a[1]);
                let got_i8mm = i8mm.then(|| {
                    // SAFETY: the CPU has i8mm (checked above).
                    unsafe { i8mm_form(&w[0], &w[1], &a[0], &a[1]) }
                });
                for r in 0..2 {
                    for t in 0..2 {
                        let want = scalar(&w[r], &a[t]);
                        let bound = abs_sum(case, &w[r], &a[t], nb * per);
                        check(name, "2x2 wrapper", got_safe[r][t], want, bound);
                        if let Some(g) = got_i8mm {
                            check(name, "i8mm", g[r][t], want, bound);
                        }
                    }
                }
            }
        }
    }
}

/// Rows of different lengths: the kernels, like the scalar code, stop at the shorter one.
#[test]
fn kernels_stop_at_the_shorter_row() {
    let mut rnd = xorshift(9);
    for case in &CASES {
        let (name, id, bs, _, _, scalar) = *case;
        let w = weights(case, 5, &mut rnd, false);
        let a = acts(case, 4, &mut rnd, false);
        for dotprod in [false, true] {
            let k = dot_for(id, dotprod).unwrap();
            assert_eq!(k(&w, &a), k(&w[..4 * bs], &a), "{name}");
            let want = scalar(&w, &a);
            assert!(
                (k(&w, &a) - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{name}"
            );
        }
    }
}

/// The kernels on real weights: every row of the tiny llamas' matrices (Q8_0; Q4_K, Q6_K and
/// whatever else Q4_K_M mixes in) against activations quantized as `matmul` quantizes them.
#[test]
fn kernels_match_scalar_on_model_rows() {
    use crate::exec::Weights;
    let mut rnd = xorshift(77);
    for file in ["tiny-llama-q8_0.gguf", "tiny-llama-q4_k_m.gguf"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(file);
        let f = crate::GgufFile::open(&path).unwrap();
        let g = f.gguf().unwrap();
        let w = Weights::load(std::slice::from_ref(&g)).unwrap();
        let l = &w.layers[0];
        for m in [
            &l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down, &w.output,
        ] {
            let case = CASES.iter().find(|c| c.1 == m.ty.id).unwrap();
            let x: Vec<f32> = (0..m.cols)
                .map(|_| (rnd() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let a = crate::exec::dot::quantize_one(m.ty, &x);
            for r in 0..m.rows {
                let wr = &m.data[r * m.row_bytes..(r + 1) * m.row_bytes];
                let want = (case.5)(wr, &a);
                let bound = abs_sum(case, wr, &a, m.cols);
                let plain = dot_for(m.ty.id, false).unwrap()(wr, &a);
                let sdot = dot_for(m.ty.id, true).unwrap()(wr, &a);
                check(m.name, "neon", plain, want, bound);
                check(m.name, "dotprod", sdot, want, bound);
                assert_eq!(plain.to_bits(), sdot.to_bits(), "{}: forms", m.name);
            }
        }
    }
}

/// `Mat::matmul` (which takes the NEON kernels on aarch64) against the scalar dots, on the tiny
/// llamas' matrices, for batches of one to nine activation rows (odd and even: the 2×2 kernels
/// and their edges).
#[test]
fn matmul_matches_scalar_on_model_rows() {
    use crate::exec::Weights;
    let mut rnd = xorshift(78);
    for file in ["tiny-llama-q8_0.gguf", "tiny-llama-q4_k_m.gguf"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(file);
        let f = crate::GgufFile::open(&path).unwrap();
        let g = f.gguf().unwrap();
        let w = Weights::load(std::slice::from_ref(&g)).unwrap();
        let l = &w.layers[1];
        for m in [&l.wq, &l.wk, &l.down, &w.output] {
            let case = CASES.iter().find(|c| c.1 == m.ty.id).unwrap();
            for n in [1, 2, 3, 8, 9] {
                let x: Vec<f32> = (0..m.cols * n)
                    .map(|_| (rnd() % 2001) as f32 / 1000.0 - 1.0)
                    .collect();
                let mut out = vec![0f32; m.rows * n];
                m.matmul(&x, n, &mut out).unwrap();
                for (t, xt) in x.chunks_exact(m.cols).enumerate() {
                    let a = crate::exec::dot::quantize_one(m.ty, xt);
                    for r in 0..m.rows {
                        let wr = &m.data[r * m.row_bytes..(r + 1) * m.row_bytes];
                        let want = (case.5)(wr, &a);
                        let bound = abs_sum(case, wr, &a, m.cols);
                        check(m.name, "matmul", out[t * m.rows + r], want, bound);
                    }
                }
            }
        }
    }
}

/// The Q5_0 table is ggml's `table_b2b_1` (`B8(00, 10)`): byte k = 0x10 when bit k is clear.
#[test]
fn table_b2b_1_is_ggmls() {
    assert_eq!(TABLE_B2B_1[0], 0x1010_1010_1010_1010);
    assert_eq!(TABLE_B2B_1[0xff], 0);
    assert_eq!(TABLE_B2B_1[0b1010_0101], 0x0010_0010_1000_1000);
}
