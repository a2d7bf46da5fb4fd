//! The AVX-512 VNNI tiles and quantizers against the one-row kernels and the scalar quantizers
//! (skipped without AVX-512 VNNI), and the tile timing used for tuning.

mod q8k_tests {
    use crate::exec::x86::{detect, Level};
    use crate::gguf::spec::ggml_type;
    use crate::quant::quantize_chunk;

    /// The vectorized Q8_0 quantizer writes the bytes of the scalar one (ggml-cpu's x86 rounding),
    /// NaNs, infinities and zero blocks included.
    #[test]
    fn q8_0_equals_scalar() {
        if detect() != Some(Level::Avx512Vnni) {
            return eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
        }
        let mut x = crate::exec::dot::tests::lcg(32 * 40, 12);
        x[3] = f32::NAN;
        x[64..96].fill(0.0);
        x[100] = f32::INFINITY;
        x[140] = -x[141].abs() * 3.0;
        for v in &mut x[160..192] {
            *v *= 1e-30;
        }
        for (i, v) in x[192..224].iter_mut().enumerate() {
            *v = (i as f32 - 16.0) * 0.5; // ties at .5 after scaling by 127 / 8
        }
        let mut want = vec![0u8; 34 * 40];
        for (xb, yb) in x.chunks_exact(32).zip(want.chunks_exact_mut(34)) {
            crate::exec::dot::quantize_q8_0_x86(xb, yb);
        }
        let mut got = vec![1u8; 34 * 40];
        // SAFETY: the CPU has AVX-512 VNNI (checked above).
        unsafe { super::super::quantize_q8_0(&x, &mut got) };
        for (b, (g, w)) in got.chunks(34).zip(want.chunks(34)).enumerate() {
            assert_eq!(g, w, "block {b}");
        }
    }

    /// The vectorized Q8_K quantizer writes the scalar port's bytes, NaNs, infinities, ties and
    /// zero blocks included.
    #[test]
    fn q8_k_equals_scalar_port() {
        if detect() != Some(Level::Avx512Vnni) {
            return eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
        }
        let mut x = crate::exec::dot::tests::lcg(256 * 8, 11);
        x[3] = f32::NAN;
        x[300] = -x
            .iter()
            .skip(256)
            .take(256)
            .fold(0f32, |m, v| m.max(v.abs()));
        x[301] = -x[300];
        x[512..768].fill(0.0);
        x[800] = f32::INFINITY;
        for v in &mut x[1024..1280] {
            *v *= 1e-30;
        }
        let ty = ggml_type(15).unwrap();
        let mut want = vec![0u8; 292 * 8];
        quantize_chunk(ty, &x, &mut want, 256 * 8, None).unwrap();
        let mut got = vec![1u8; 292 * 8];
        // SAFETY: the CPU has AVX-512 VNNI (checked above).
        unsafe { super::super::quantize_q8_k(&x, &mut got) };
        for (b, (g, w)) in got.chunks(292).zip(want.chunks(292)).enumerate() {
            assert_eq!(g, w, "super-block {b}");
        }
    }
}

mod q6_tests {
    use super::super::*;
    use crate::exec::dot::tests::case;
    use crate::exec::x86::{detect, Level};

    /// The Q6_K tiles give every output the bits of the one-row kernel.
    #[test]
    fn q6k_tiles_equal_one_row_kernel() {
        if detect() != Some(Level::Avx512Vnni) {
            return eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
        }
        for (cols, rows, n) in [(256, 3, 2), (512, 5, 11), (2048, 4, 8), (768, 2, 3)] {
            let (wq, acts, _) = case("q6_K", cols, rows, n, (cols * 7 + n) as u64);
            let rb = wq.len() / rows;
            let (q, stride, _) = acts.q_rows().unwrap();
            let mut packed = Vec::new();
            let mut got = vec![0f32; rows * n];
            // SAFETY: the CPU has AVX-512 VNNI (checked above).
            unsafe {
                pack_acts_k(q, stride, n, &mut packed);
                q6k_rows(&wq, rb, &packed, n, &mut got);
            }
            for r in 0..rows {
                let w = &wq[r * rb..(r + 1) * rb];
                for t in 0..n {
                    // SAFETY: as above.
                    let want = unsafe {
                        crate::exec::x86::vnni::q6_k::<1, false>(
                            w,
                            [&q[t * stride..(t + 1) * stride]],
                        )
                    }[0];
                    assert_eq!(
                        got[t * rows + r].to_bits(),
                        want.to_bits(),
                        "cols {cols} row {r} token {t}"
                    );
                }
            }
        }
    }
}

mod rows {
    use super::super::*;
    use crate::exec::dot::tests::case;
    use crate::exec::x86::{detect, Level};

    /// Every output of the tiles has the bits of the one-row, one-column kernel of the same order
    /// (`b32` for Q8_0, Q4_0 and Q5_0; for IQ4_NL `b32` too, which is tinyBLAS's order), for
    /// row and column counts that leave every tile shape.
    #[test]
    fn tiles_equal_single_products() {
        if detect() != Some(Level::Avx512Vnni) {
            return eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
        }
        for name in ["q8_0", "q4_0", "q5_0", "iq4_nl"] {
            for (cols, rows, n) in [(64, 9, 7), (640, 6, 4), (96, 4, 9), (32, 3, 2)] {
                let (wq, acts, ty) = case(name, cols, rows, n, (cols + n) as u64);
                let rb = wq.len() / rows;
                let (q, stride, _) = acts.q_rows().unwrap();
                let ds = crate::exec::dot::tests::act_scales(&acts);
                let mut got = vec![0f32; rows * n];
                let mut packed = Vec::new();
                // SAFETY: the CPU has AVX-512 VNNI (checked above).
                assert!(unsafe {
                    pack_acts(q, stride, ds, n, &mut packed);
                    b32_rows(ty.id, &wq, rb, &packed, n, &mut got)
                });
                for r in 0..rows {
                    let w = &wq[r * rb..(r + 1) * rb];
                    for t in 0..n {
                        let y = &q[t * stride..(t + 1) * stride];
                        let nb = stride / 34;
                        // SAFETY: as above.
                        let want = unsafe {
                            match ty.id {
                                TypeId::Q8_0 => crate::exec::x86::vnni::b32::<1, { raw::Q8_0 }>(
                                    w,
                                    [y],
                                    [&ds[t * nb..]],
                                ),
                                TypeId::Q4_0 => crate::exec::x86::vnni::b32::<1, { raw::Q4_0 }>(
                                    w,
                                    [y],
                                    [&ds[t * nb..]],
                                ),
                                TypeId::Q5_0 => crate::exec::x86::vnni::b32::<1, { raw::Q5_0 }>(
                                    w,
                                    [y],
                                    [&ds[t * nb..]],
                                ),
                                _ => crate::exec::x86::vnni::b32::<1, { raw::IQ4_NL }>(
                                    w,
                                    [y],
                                    [&ds[t * nb..]],
                                ),
                            }
                        };
                        assert_eq!(
                            got[t * rows + r].to_bits(),
                            want[0].to_bits(),
                            "{name} cols {cols} row {r} col {t}"
                        );
                    }
                }
            }
        }
    }
}

mod k4_tests {
    use super::super::*;
    use crate::exec::dot::tests::case;
    use crate::exec::x86::{detect, Level};

    /// The Q4_K tiles give the bits of the one-row kernel in llama.cpp's GEMM order for tokens
    /// in whole groups of 4, and its GEMV order for the rest.
    #[test]
    fn q4k_tiles_equal_one_row_kernel() {
        if detect() != Some(Level::Avx512Vnni) {
            return eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
        }
        for (cols, rows, n) in [(256, 16, 4), (512, 35, 10), (2048, 32, 8), (768, 17, 6)] {
            let (wq, acts, _) = case("q4_K", cols, rows, n, (cols * 3 + n) as u64);
            let rb = wq.len() / rows;
            let (q, stride, _) = acts.q_rows().unwrap();
            let mut got = vec![0f32; rows * n];
            // SAFETY: the CPU has AVX-512 VNNI (checked above).
            unsafe { q4k_rows(&wq, rb, q, stride, n, &mut got) };
            for r in 0..rows {
                let w = &wq[r * rb..(r + 1) * rb];
                let row = |t: usize| &q[t * stride..(t + 1) * stride];
                for t in 0..n {
                    // SAFETY: as above.
                    let want = unsafe {
                        if t < n / 4 * 4 {
                            let g = t / 4 * 4;
                            crate::exec::x86::vnni::q4_k_r8::<4, true>(
                                w,
                                [row(g), row(g + 1), row(g + 2), row(g + 3)],
                            )[t - g]
                        } else {
                            crate::exec::x86::vnni::q4_k_r8::<1, false>(w, [row(t)])[0]
                        }
                    };
                    assert_eq!(
                        got[t * rows + r].to_bits(),
                        want.to_bits(),
                        "cols {cols} row {r} token {t}: {} vs {want}",
                        got[t * rows + r]
                    );
                }
            }
        }
    }
}

mod speed {
    use super::super::*;
    use crate::exec::dot::tests::case;

    /// Not a test: `cargo test --release --lib x86_gemm::tests::speed -- --ignored --nocapture` prints
    /// cycles' worth of nanoseconds per output block for tuning the tiles.
    #[test]
    #[ignore]
    fn tile_speed() {
        for name in ["q5_0", "q8_0"] {
            let (rows, cols, n) = (256, 640, 128);
            let (wq, acts, ty) = case(name, cols, rows, n, 5);
            let rb = wq.len() / rows;
            let (q, stride, _) = acts.q_rows().unwrap();
            let ds = crate::exec::dot::tests::act_scales(&acts);
            let mut out = vec![0f32; rows * n];
            let reps = 20;
            let mut packed = Vec::new();
            // SAFETY: only run on VNNI machines by hand.
            unsafe { pack_acts(q, stride, ds, n, &mut packed) };
            let t = std::time::Instant::now();
            for _ in 0..reps {
                // SAFETY: as above.
                unsafe { b32_rows(ty.id, &wq, rb, &packed, n, &mut out) };
            }
            let ns = t.elapsed().as_nanos() as f64 / (reps * rows * n * cols / 32) as f64;
            eprintln!("{name}: {ns:.3} ns per block product");
        }
        let (rows, cols, n) = (256, 2048, 128);
        let (wq, acts, _) = case("q4_K", cols, rows, n, 5);
        let rb = wq.len() / rows;
        let (q, stride, _) = acts.q_rows().unwrap();
        let mut out = vec![0f32; rows * n];
        let reps = 5;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            // SAFETY: as above.
            unsafe { q4k_rows(&wq, rb, q, stride, n, &mut out) };
        }
        let ns = t.elapsed().as_nanos() as f64 / (reps * rows * n * cols / 32) as f64;
        eprintln!("q4_K: {ns:.3} ns per 32 products");
    }
}
