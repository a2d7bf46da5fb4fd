//! Choosing the next token: greedy (argmax, ties to the lowest id) at temperature 0, otherwise
//! top-k, then top-p, then min-p (llama.cpp's order), then temperature and a draw from a seeded
//! generator (splitmix64), so a run is reproducible from its seed.

/// Sampling settings.
#[derive(Debug, Clone)]
pub struct Sampler {
    pub temp: f32,
    pub top_k: usize,
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0: off).
    pub min_p: f32,
    state: u64,
}

impl Sampler {
    pub fn new(temp: f32, top_k: usize, top_p: f32, seed: u64) -> Sampler {
        Sampler {
            temp,
            top_k,
            top_p,
            min_p: 0.0,
            state: seed,
        }
    }

    fn next_f64(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks a token from one row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temp <= 0.0 {
            return argmax(logits);
        }
        let mut c: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l))
            .collect();
        c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.top_k > 0 {
            c.truncate(self.top_k);
        }
        // Probabilities at temperature 1 for top-p, then at `temp` for the draw.
        let probs = |c: &[(u32, f32)], t: f32| -> Vec<f64> {
            let m = c[0].1;
            let e: Vec<f64> = c.iter().map(|x| (((x.1 - m) / t) as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|x| x / s).collect()
        };
        if self.top_p < 1.0 {
            let p = probs(&c, 1.0);
            let mut acc = 0.0;
            let mut keep = c.len();
            for (i, x) in p.iter().enumerate() {
                acc += x;
                if acc >= self.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep.max(1));
        }
        if self.min_p > 0.0 {
            // As llama.cpp: relative to the most likely token, on the logits before temperature.
            let floor = c[0].1 + self.min_p.ln();
            let keep = c.iter().take_while(|x| x.1 >= floor).count();
            c.truncate(keep.max(1));
        }
        let p = probs(&c, self.temp);
        let r = self.next_f64();
        let mut acc = 0.0;
        for (x, pi) in c.iter().zip(&p) {
            acc += pi;
            if r < acc {
                return x.0;
            }
        }
        c[c.len() - 1].0
    }
}

/// The first index of the largest value.
pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_seeded() {
        let l = [0.1, 3.0, 2.9, -1.0];
        assert_eq!(Sampler::new(0.0, 0, 1.0, 1).sample(&l), 1);
        // top-k 1 is greedy at any temperature.
        assert_eq!(Sampler::new(5.0, 1, 1.0, 9).sample(&l), 1);
        let draw = |seed| {
            let mut s = Sampler::new(1.0, 0, 1.0, seed);
            (0..20).map(|_| s.sample(&l)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        let d = draw(3);
        assert!(d.contains(&1) && d.contains(&2), "{d:?}");
    }

    #[test]
    fn min_p_drops_the_unlikely() {
        // exp(2.9 - 3.0) = 0.905 of the best: kept at min-p 0.9, dropped at 0.95.
        let l = [0.1, 3.0, 2.9, -1.0];
        let draw = |min_p: f32| {
            let mut s = Sampler::new(1.0, 0, 1.0, 5);
            s.min_p = min_p;
            (0..50).map(|_| s.sample(&l)).collect::<Vec<_>>()
        };
        let d = draw(0.9);
        assert!(d.contains(&1) && d.contains(&2) && !d.contains(&0), "{d:?}");
        assert!(draw(0.95).iter().all(|&t| t == 1));
    }
}
