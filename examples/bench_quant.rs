//! pocket's side of scripts/bench-quant.sh: times `quantize_chunk` per type on the same values as
//! scripts/bench-quant.c (same xorshift generator), on a 1-thread and an N-thread rayon pool, and prints
//! "type imatrix threads seconds fnv" (fnv-1a of the bytes, so the script can check they are ggml's),
//! then one line for decoding the last output on one thread ("type deq 1 seconds fnv").

use pocket::gguf::spec::ggml_type_by_name;
use pocket::quant::{dequantize_row, quantize_chunk};
use std::time::Instant;

const NPR: usize = 4096;
const NROWS: usize = 512;

fn main() {
    let nthreads: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2);
    let mut s: u64 = 0x9E3779B97F4A7C15;
    let mut uni = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / 9007199254740992.0
    };
    let x: Vec<f32> = (0..NPR * NROWS)
        .map(|_| ((uni() + uni() + uni() + uni() - 2.0) * 1.7320508) as f32)
        .collect();
    let im: Vec<f32> = (0..NPR)
        .map(|_| (0.05 + uni() * uni() * 4.0) as f32)
        .collect();
    let names = [
        "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K",
        "q6_K",
    ];
    // Optional second argument: only this type (for profiling one kernel).
    let only = std::env::args().nth(2);
    for name in names {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let t = ggml_type_by_name(name).unwrap();
        let mut q = vec![0u8; t.bytes_for((NPR * NROWS) as u64).unwrap() as usize];
        for use_im in [false, true] {
            if use_im && matches!(name, "f16" | "bf16" | "q8_0") {
                continue;
            }
            for n in [1, nthreads] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap();
                let mut best = f64::MAX;
                for _ in 0..5 {
                    let t0 = Instant::now();
                    pool.install(|| {
                        quantize_chunk(t, &x, &mut q, NPR, use_im.then_some(&im[..])).unwrap()
                    });
                    best = best.min(t0.elapsed().as_secs_f64());
                }
                let mut h: u64 = 0xcbf29ce484222325;
                for b in &q {
                    h ^= *b as u64;
                    h = h.wrapping_mul(0x100000001b3);
                }
                println!("{name} {} {n} {best:.6} {h:016x}", use_im as u8);
            }
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut y = vec![0f32; NPR * NROWS];
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t0 = Instant::now();
            one.install(|| dequantize_row(t, &q, &mut y).unwrap());
            best = best.min(t0.elapsed().as_secs_f64());
        }
        let mut h: u64 = 0xcbf29ce484222325;
        for b in y.iter().flat_map(|v| v.to_le_bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        println!("{name} deq 1 {best:.6} {h:016x}");
    }
}
