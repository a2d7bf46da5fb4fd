//! pocket's side of scripts/bench-quant.py: times `quant::quantize_chunk` for each type named on the
//! command line (`TYPE` or `TYPE:imatrix`) on the same data as scripts/quant-bench.c, split over 2
//! threads by rows. Prints "TYPE MILLISECONDS": the best of at least 5 repetitions and of as many as
//! fit in half a second (at most 50), since the machine may be shared.

use std::time::Instant;

use pocket::gguf::spec::ggml_type_by_name;
use pocket::quant::quantize_chunk;

const NROWS: usize = 128;
const NPR: usize = 4096;
const NTHREADS: usize = 2;

struct XorShift(u64);

impl XorShift {
    fn uni(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / 9007199254740992.0
    }
}

fn main() {
    let mut rng = XorShift(0x9E3779B97F4A7C15);
    let x: Vec<f32> = (0..NROWS * NPR)
        .map(|_| ((rng.uni() + rng.uni() + rng.uni() + rng.uni() - 2.0) * 1.7320508) as f32)
        .collect();
    let im: Vec<f32> = (0..NPR)
        .map(|_| (0.05 + rng.uni() * rng.uni() * 4.0) as f32)
        .collect();
    for arg in std::env::args().skip(1) {
        let (name, with_im) = match arg.split_once(':') {
            Some((n, _)) => (n, true),
            None => (arg.as_str(), false),
        };
        let Some(ty) = ggml_type_by_name(name) else {
            eprintln!("unknown type {name}");
            std::process::exit(2);
        };
        let w = with_im.then_some(&im[..]);
        let row = ty.bytes_for(NPR as u64).expect("whole blocks") as usize;
        let mut q = vec![0u8; row * NROWS];
        // Builds the lattices once, outside the timing (ggml's quantize_init).
        quantize_chunk(ty, &x[..NPR], &mut q[..row], NPR, w).expect("quantize");
        let mut best = f64::MAX;
        let mut total = 0.0;
        for r in 0.. {
            if r >= 50 || (r >= 5 && total >= 500.0) {
                break;
            }
            let t0 = Instant::now();
            std::thread::scope(|s| {
                let per = NROWS / NTHREADS;
                for (xs, qs) in x.chunks(per * NPR).zip(q.chunks_mut(per * row)) {
                    s.spawn(move || quantize_chunk(ty, xs, qs, NPR, w).expect("quantize"));
                }
            });
            let dt = t0.elapsed().as_secs_f64() * 1e3;
            best = best.min(dt);
            total += dt;
        }
        println!("{arg} {best:.3}");
    }
}
