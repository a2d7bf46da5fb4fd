//! What `pocket bench` measures, as `llama-bench` does: prompt processing (one batch of `n_prompt`
//! random tokens after BOS, logits of the last only) and generation (`n_gen` single-token steps
//! from BOS, logits every step), each repeated after a warm-up run; plus the machine's memory read
//! bandwidth and the bytes a generated token has to read, the limit decode speed is held to.

use std::time::Instant;

use super::{ExecError, Session, Weights};

/// Seconds taken by each repetition of one test.
#[derive(Debug, Clone)]
pub struct Timings {
    pub n_tokens: usize,
    pub secs: Vec<f64>,
}

impl Timings {
    /// Tokens per second of each repetition.
    pub fn rates(&self) -> Vec<f64> {
        self.secs.iter().map(|s| self.n_tokens as f64 / s).collect()
    }

    /// Mean and sample standard deviation of the tokens per second (as llama-bench reports).
    pub fn mean_sd(&self) -> (f64, f64) {
        let r = self.rates();
        let n = r.len() as f64;
        let mean = r.iter().sum::<f64>() / n;
        let sd = if r.len() > 1 {
            (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        (mean, sd)
    }
}

/// llama-bench's token stream: `std::rand() % n_vocab` with glibc's default seed is not something to
/// copy; any fixed pseudo-random sequence does (the cost of a token does not depend on its id).
fn tokens(n: usize, n_vocab: usize, bos: u32, seed: &mut u64) -> Vec<u32> {
    let mut t = Vec::with_capacity(n);
    t.push(bos);
    while t.len() < n {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        t.push(((*seed >> 33) % n_vocab as u64) as u32);
    }
    t
}

/// Prompt processing: `reps` timed runs of one `n_prompt`-token batch (plus one warm-up).
pub fn prompt(w: &Weights, n_prompt: usize, reps: usize, bos: u32) -> Result<Timings, ExecError> {
    let mut s = Session::try_new(w, n_prompt)?;
    let mut seed = 1;
    let mut secs = Vec::with_capacity(reps);
    for rep in 0..=reps {
        let toks = tokens(n_prompt, w.hp.n_vocab, bos, &mut seed);
        s.clear();
        let t0 = Instant::now();
        s.eval(&toks, 1)?;
        if rep > 0 {
            secs.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(Timings {
        n_tokens: n_prompt,
        secs,
    })
}

/// Generation: `reps` timed runs of `n_gen` single-token steps from an empty context (plus one
/// warm-up of a single step, as llama-bench warms up).
pub fn generate(w: &Weights, n_gen: usize, reps: usize, bos: u32) -> Result<Timings, ExecError> {
    let mut s = Session::try_new(w, n_gen.max(1))?;
    let mut seed = 2;
    s.eval(&[bos], 1)?;
    let mut secs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let toks = tokens(n_gen, w.hp.n_vocab, bos, &mut seed);
        s.clear();
        let t0 = Instant::now();
        for t in &toks {
            s.eval(&[*t], 1)?;
        }
        secs.push(t0.elapsed().as_secs_f64());
    }
    Ok(Timings {
        n_tokens: n_gen,
        secs,
    })
}

/// Seconds one parallel operation of the executor costs with no work in it: `threads * 8` empty
/// tasks (the split of a matrix product) on the current pool, the mean over `reps` operations.
pub fn dispatch_overhead(reps: usize) -> f64 {
    use rayon::prelude::*;
    let tasks = rayon::current_num_threads() * 8;
    let t0 = Instant::now();
    for _ in 0..reps {
        (0..tasks).into_par_iter().for_each(|i| {
            std::hint::black_box(i);
        });
    }
    t0.elapsed().as_secs_f64() / reps.max(1) as f64
}

/// Parallel operations in one generated token: per layer the seven matrix products (Q, K, V,
/// attention output, gate, up, down) and attention, then the output matrix.
pub fn parallel_ops_per_token(w: &Weights) -> usize {
    w.layers.len() * 8 + 1
}

/// Bytes of weights one generated token reads: every matrix of every layer, the output matrix and
/// one row of the token embeddings, plus the norm vectors (small).
pub fn weight_bytes_per_token(w: &Weights) -> u64 {
    let mut b = w.output.data.len() as u64 + w.tok_embd.row_bytes as u64;
    for l in &w.layers {
        for m in [&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down] {
            b += m.data.len() as u64;
        }
        // lfm2's conv layers (their attention matrices are empty).
        if let Some(c) = &l.shortconv {
            b += (c.in_proj.data.len() + c.out_proj.data.len() + 4 * c.kernel.len()) as u64;
        }
    }
    b
}

/// Memory read bandwidth in bytes per second: `threads` threads summing their share of a
/// `bytes`-long buffer (already touched), the best of `reps` passes.
pub fn memory_bandwidth(bytes: usize, threads: usize, reps: usize) -> f64 {
    let words = bytes / 8;
    let buf: Vec<u64> = (0..words as u64).collect();
    let threads = threads.max(1);
    let per = words.div_ceil(threads);
    let mut best = 0f64;
    for _ in 0..reps {
        let t0 = Instant::now();
        std::thread::scope(|sc| {
            for part in buf.chunks(per) {
                sc.spawn(move || {
                    let mut acc = [0u64; 8];
                    for c in part.chunks_exact(8) {
                        for (a, v) in acc.iter_mut().zip(c) {
                            *a = a.wrapping_add(*v);
                        }
                    }
                    std::hint::black_box(acc);
                });
            }
        });
        let rate = (words * 8) as f64 / t0.elapsed().as_secs_f64();
        best = best.max(rate);
    }
    best
}

/// Resident memory of this process now and at its peak (`VmRSS`, `VmHWM` of /proc/self/status),
/// in bytes; None where there is no such file.
pub fn rss() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |k: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(k))?;
        let kb: u64 = line[k.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sd_as_llama_bench() {
        let t = Timings {
            n_tokens: 10,
            secs: vec![1.0, 0.5, 0.25],
        };
        assert_eq!(t.rates(), vec![10.0, 20.0, 40.0]);
        let (m, sd) = t.mean_sd();
        assert!((m - 70.0 / 3.0).abs() < 1e-9);
        assert!((sd - 15.275252316519467).abs() < 1e-9, "{sd}");
    }

    #[test]
    fn bandwidth_is_positive_and_rss_is_read() {
        assert!(memory_bandwidth(1 << 20, 2, 2) > 0.0);
        if cfg!(target_os = "linux") {
            let (now, peak) = rss().unwrap();
            assert!(now > 0 && peak >= now);
        }
    }
}
