//! Quantizing for a budget: a type per tensor chosen so that the file meets a size (or bits per
//! weight) with the least expected loss of quality.
//!
//! Each tensor's **sensitivity** to each candidate type is measured on a sample of its rows: the rows
//! are quantized as `pocket requantize` would quantize them (with the importance matrix when one is
//! given), decoded again, and the error is weighted by the importance matrix — the mean square of the
//! activation each column meets, so `Σ_j imatrix[j] · (w_j − ŵ_j)²` is the expected square error of
//! the product's output (columns taken as uncorrelated). Divided by the same sum of the weights
//! themselves, `Σ_j imatrix[j] · w_j²`, it is the noise-to-signal ratio the type adds to that
//! product's output, which is what the costs of different tensors are compared by.
//!
//! With `--measure`, the ratios are put on the model's own scale ([`calibrate`]): each tensor is
//! quantized whole to one candidate and the executor measures how far that alone moves the model's
//! next-token distributions on a text (KL-divergence); the tensor's costs are scaled to match, and
//! then add up to an expected KL-divergence.
//!
//! The **choice** is a knapsack: minimise the sum of the tensors' costs with the sum of their bytes
//! under the budget, solved exactly (up to a 2^-16 rounding of the budget) by dynamic programming.
//!
//! The result is a list of `REGEX=TYPE` lines in llama-quantize's `--tensor-type-file` format (one
//! anchored pattern per tensor), so `llama-quantize --tensor-type-file` writes the same file.

use super::convert::{Options, Prepared};
use super::plan::{Planned, Rule};
use super::RequantError;
use crate::gguf::{GgmlType, Gguf};
use crate::quant;

/// Rows of each tensor the sensitivity is measured on (evenly spaced); all rows when fewer.
pub const DEFAULT_SAMPLE_ROWS: usize = 256;

/// One candidate type of one tensor: its size in the whole tensor and its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub ty: GgmlType,
    pub bytes: u64,
    /// The noise-to-signal ratio the type adds to the tensor's products (see the module's header).
    pub cost: f64,
}

/// A tensor whose type the budget chooses, and its candidates (cheapest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    pub name: String,
    /// Index in the plan.
    pub index: usize,
    pub candidates: Vec<Candidate>,
}

/// Whether the budget chooses this tensor's type: a weight the mix would quantize by its own rules
/// (not one an option fixes: `--tensor-type`, `--output-tensor-type`, `--token-embedding-type`).
fn chosen_by_budget(p: &Planned) -> bool {
    p.allows_quantization && matches!(p.rule, Rule::Default | Rule::Mix(_) | Rule::Pure)
}

/// Measures the sensitivity of every tensor the budget chooses to each of `types` (those whose
/// blocks divide its rows, and that do not need an importance matrix when none is given), on up to
/// `sample_rows` rows of each. `progress(done, total)` is called after each tensor.
pub fn sensitivity(
    ggufs: &[Gguf<'_>],
    prep: &Prepared<'_>,
    opts: &Options,
    types: &[GgmlType],
    sample_rows: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Sensitivity>, RequantError> {
    let todo: Vec<usize> = (0..prep.plan.tensors.len())
        .filter(|&i| chosen_by_budget(&prep.plan.tensors[i]))
        .collect();
    let has_imatrix = opts
        .imatrix
        .as_ref()
        .is_some_and(|(m, _)| !m.entries.is_empty());
    let mut out = Vec::with_capacity(todo.len());
    for (k, &i) in todo.iter().enumerate() {
        let p = &prep.plan.tensors[i];
        let (shard, t) = prep.order[i];
        let src = ggufs[shard]
            .tensor_data(t)
            .ok_or_else(|| RequantError::Model(format!("tensor {}: data not available", p.name)))?;
        let im = prep.imatrix_for_budget(p, opts)?;
        let ne0 = p.dims[0] as usize;
        let rows = (p.n_elements() / p.dims[0].max(1)) as usize;
        let x = sample(p, src, ne0, rows, sample_rows)?;
        let n_rows = x.len() / ne0;
        // An importance matrix per expert (3-D tensors): the first expert's stands for all.
        let w: Vec<f32> = match im {
            Some(v) => v[..ne0].to_vec(),
            None => vec![1.0; ne0],
        };
        let signal = weighted(&x, &w, |a| a * a);
        let mut candidates = Vec::new();
        for &ty in types {
            if !(ne0 as u64).is_multiple_of(ty.block_size)
                || (quant::requires_imatrix(ty) && !has_imatrix)
            {
                continue;
            }
            let Some(bytes) = ty.bytes_for(p.n_elements()) else {
                continue;
            };
            let row = ty.bytes_for(ne0 as u64).unwrap_or(0) as usize;
            let mut q = vec![0u8; row * n_rows];
            let qe = |e| RequantError::Quant {
                tensor: p.name.clone(),
                source: e,
            };
            quant::quantize_chunk(ty, &x, &mut q, ne0, im.map(|v| &v[..ne0])).map_err(qe)?;
            let mut y = vec![0f32; x.len()];
            quant::dequantize_row(ty, &q, &mut y).map_err(qe)?;
            let diff: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
            let noise = weighted(&diff, &w, |d| d * d);
            let cost = if signal > 0.0 { noise / signal } else { 0.0 };
            candidates.push(Candidate { ty, bytes, cost });
        }
        if candidates.is_empty() {
            return Err(RequantError::Model(format!(
                "tensor {}: none of the candidate types fits its rows of {ne0} values",
                p.name
            )));
        }
        candidates.sort_by(|a, b| a.bytes.cmp(&b.bytes).then(a.cost.total_cmp(&b.cost)));
        out.push(Sensitivity {
            name: p.name.clone(),
            index: i,
            candidates,
        });
        progress(k + 1, todo.len());
    }
    Ok(out)
}

/// The candidate a tensor is measured with by [`calibrate`]: the noisiest of those with at least 4
/// bits per weight (the regime budgets work in; noisy enough to measure well), else the best.
fn probe_candidate(s: &Sensitivity, n_elements: u64) -> usize {
    let bits = |c: &Candidate| c.bytes as f64 * 8.0 / n_elements.max(1) as f64;
    (0..s.candidates.len())
        .filter(|&i| bits(&s.candidates[i]) >= 3.9)
        .max_by(|&a, &b| s.candidates[a].cost.total_cmp(&s.candidates[b].cost))
        .unwrap_or(s.candidates.len() - 1)
}

/// How far the model moves with tensor `name` replaced by `bytes` of a type.
pub type Measure<'m> = dyn FnMut(&str, GgmlType, &[u8]) -> Result<f64, RequantError> + 'm;

/// Puts the tensors' costs on one scale, the model's own: each tensor is quantized whole to one of
/// its candidates and `measure(name, type, bytes)` says how far that moves the model's output (the
/// executor's mean KL-divergence on a text); the tensor's costs are scaled so that this candidate's
/// cost is the measured value. The costs then add up to an expected KL-divergence. `progress(done,
/// total)` after each tensor.
pub fn calibrate(
    ggufs: &[Gguf<'_>],
    prep: &Prepared<'_>,
    opts: &Options,
    sens: &mut [Sensitivity],
    measure: &mut Measure<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), RequantError> {
    let total = sens.len();
    for (k, s) in sens.iter_mut().enumerate() {
        let p = &prep.plan.tensors[s.index];
        let (shard, t) = prep.order[s.index];
        let src = ggufs[shard]
            .tensor_data(t)
            .ok_or_else(|| RequantError::Model(format!("tensor {}: data not available", p.name)))?;
        let im = prep.imatrix_for_budget(p, opts)?;
        let ne0 = p.dims[0] as usize;
        let rows = (p.n_elements() / p.dims[0].max(1)) as usize;
        let c = probe_candidate(s, p.n_elements());
        let ty = s.candidates[c].ty;
        let x = sample(p, src, ne0, rows, rows)?;
        let row = ty.bytes_for(ne0 as u64).unwrap_or(0) as usize;
        let mut q = vec![0u8; row * rows];
        let experts = p.dims.get(2).copied().unwrap_or(1) as usize;
        let per_expert = rows / experts.max(1);
        for (e, (xe, qe)) in x
            .chunks(per_expert * ne0)
            .zip(q.chunks_mut(per_expert * row))
            .enumerate()
        {
            let ie = im.map(|v| &v[e * ne0..(e + 1) * ne0]);
            quant::quantize_chunk(ty, xe, qe, ne0, ie).map_err(|e| RequantError::Quant {
                tensor: p.name.clone(),
                source: e,
            })?;
        }
        drop(x);
        let kld = measure(&p.name, ty, &q)?;
        let proxy = s.candidates[c].cost;
        // A candidate the proxy calls exact (the tensor was that type before) says nothing of the
        // scale: keep the proxy's then.
        if proxy > 1e-9 && kld.is_finite() {
            let scale = kld.max(0.0) / proxy;
            for c in s.candidates.iter_mut() {
                c.cost *= scale;
            }
        }
        progress(k + 1, total);
    }
    Ok(())
}

/// `Σ_rows Σ_j w_j · f(x_ij)` in f64.
fn weighted(x: &[f32], w: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    x.chunks(w.len())
        .map(|r| {
            r.iter()
                .zip(w)
                .map(|(&a, &wj)| wj as f64 * f(a as f64))
                .sum::<f64>()
        })
        .sum()
}

/// Up to `max_rows` evenly spaced rows of a tensor, decoded to f32.
fn sample(
    p: &Planned,
    src: &[u8],
    ne0: usize,
    rows: usize,
    max_rows: usize,
) -> Result<Vec<f32>, RequantError> {
    let row_bytes = p.from.bytes_for(ne0 as u64).unwrap_or(0) as usize;
    let take = rows.min(max_rows.max(1));
    let mut x = vec![0f32; take * ne0];
    for (k, dst) in x.chunks_mut(ne0).enumerate() {
        // Spread over the whole tensor: row k·rows/take.
        let r = k * rows / take;
        let b = src
            .get(r * row_bytes..(r + 1) * row_bytes)
            .ok_or_else(|| RequantError::Model(format!("tensor {}: data too short", p.name)))?;
        quant::dequantize_row(p.from, b, dst).map_err(|e| RequantError::Quant {
            tensor: p.name.clone(),
            source: e,
        })?;
    }
    Ok(x)
}

/// The candidates of a tensor worth choosing under some budget: each better than every smaller one.
/// Indices into `c` (sorted by bytes), smallest first.
fn pareto(c: &[Candidate]) -> Vec<usize> {
    let mut h: Vec<usize> = Vec::new();
    for (i, x) in c.iter().enumerate() {
        if let Some(&last) = h.last() {
            if x.cost >= c[last].cost {
                continue;
            }
            if x.bytes == c[last].bytes {
                h.pop();
            }
        }
        h.push(i);
    }
    h
}

/// Budgets are split into at most this many units for the knapsack (each candidate's bytes rounded
/// up to whole units: the choice may leave up to one unit per tensor unspent, which a last pass
/// spends on upgrades that still fit).
const UNITS: u64 = 1 << 16;

/// The choice for each tensor (an index into its candidates) with the least total cost whose bytes
/// sum to at most `budget`; `None` when even the smallest candidates do not fit. A multiple-choice
/// knapsack solved by dynamic programming over the budget in [`UNITS`] steps, on each tensor's
/// candidates that are better than all smaller ones — exact when the budget is at most [`UNITS`]
/// bytes.
pub fn choose(sens: &[Sensitivity], budget: u64) -> Option<Vec<usize>> {
    let smallest: u64 = sens.iter().map(|s| s.candidates[0].bytes).sum();
    if smallest > budget {
        return None;
    }
    let hulls: Vec<Vec<usize>> = sens.iter().map(|s| pareto(&s.candidates)).collect();
    // Units of bytes above each tensor's smallest candidate (what the budget leaves for upgrades).
    let spare = budget - smallest;
    let unit = spare.div_ceil(UNITS).max(1);
    let cap = (spare / unit) as usize;
    let extra = |t: usize, h: usize| {
        let c = &sens[t].candidates;
        (c[hulls[t][h]].bytes - c[hulls[t][0]].bytes).div_ceil(unit) as usize
    };
    // best[b]: least cost of the tensors so far with b units spent; pick[t][b]: the hull point.
    let mut best = vec![0f64; cap + 1];
    let mut pick: Vec<Vec<u8>> = Vec::with_capacity(sens.len());
    for t in 0..sens.len() {
        let mut next = vec![f64::INFINITY; cap + 1];
        let mut choice = vec![0u8; cap + 1];
        for (h, &ci) in hulls[t].iter().enumerate().take(u8::MAX as usize) {
            let (du, cost) = (extra(t, h), sens[t].candidates[ci].cost);
            for b in du..=cap {
                let v = best[b - du] + cost;
                if v < next[b] {
                    next[b] = v;
                    choice[b] = h as u8;
                }
            }
        }
        best = next;
        pick.push(choice);
    }
    // Walk back from the cheapest end state.
    let mut b = (0..=cap).min_by(|&x, &y| best[x].total_cmp(&best[y]))?;
    let mut at = vec![0usize; sens.len()];
    for t in (0..sens.len()).rev() {
        let h = pick[t][b] as usize;
        at[t] = h;
        b -= extra(t, h);
    }
    // Spend what the rounding left: upgrades that still fit, best gain per byte first.
    let mut used: u64 = (0..sens.len())
        .map(|t| sens[t].candidates[hulls[t][at[t]]].bytes)
        .sum();
    loop {
        let mut top: Option<(f64, usize)> = None;
        for t in 0..sens.len() {
            let h = at[t];
            if h + 1 >= hulls[t].len() {
                continue;
            }
            let (a, n) = (
                &sens[t].candidates[hulls[t][h]],
                &sens[t].candidates[hulls[t][h + 1]],
            );
            if used + (n.bytes - a.bytes) > budget {
                continue;
            }
            let gain = (a.cost - n.cost) / (n.bytes - a.bytes) as f64;
            if top.is_none_or(|(g, _)| gain > g) {
                top = Some((gain, t));
            }
        }
        let Some((_, t)) = top else { break };
        let c = &sens[t].candidates;
        used += c[hulls[t][at[t] + 1]].bytes - c[hulls[t][at[t]]].bytes;
        at[t] += 1;
    }
    Some(at.iter().enumerate().map(|(t, &h)| hulls[t][h]).collect())
}

/// The `--tensor-type-file` lines of a choice: `^NAME$=TYPE` with the name's dots escaped.
pub fn tensor_type_lines(sens: &[Sensitivity], choice: &[usize]) -> Vec<(String, GgmlType)> {
    sens.iter()
        .zip(choice)
        .map(|(s, &c)| {
            (
                format!("^{}$", s.name.replace('.', "\\.")),
                s.candidates[c].ty,
            )
        })
        .collect()
}

/// The total cost of a choice.
pub fn total_cost(sens: &[Sensitivity], choice: &[usize]) -> f64 {
    sens.iter()
        .zip(choice)
        .map(|(s, &c)| s.candidates[c].cost)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::spec::ggml_type_by_name;

    fn cand(ty: &str, bytes: u64, cost: f64) -> Candidate {
        Candidate {
            ty: ggml_type_by_name(ty).unwrap(),
            bytes,
            cost,
        }
    }

    fn tensor(name: &str, c: Vec<Candidate>) -> Sensitivity {
        Sensitivity {
            name: name.into(),
            index: 0,
            candidates: c,
        }
    }

    #[test]
    fn pareto_keeps_only_candidates_better_than_every_smaller_one() {
        let c = vec![
            cand("q3_K", 10, 1.0),
            cand("q4_0", 12, 0.9),
            cand("q4_K", 12, 0.5), // same size, better: replaces q4_0
            cand("q5_K", 14, 0.6), // larger and worse: dominated
            cand("q8_0", 20, 0.0),
        ];
        assert_eq!(pareto(&c), vec![0, 2, 4]);
    }

    /// The choice against every assignment, on small random instances.
    #[test]
    fn choice_is_optimal_on_random_instances() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let n = 4;
            let sens: Vec<Sensitivity> = (0..n)
                .map(|i| {
                    let unit = 1 + rnd() % 4;
                    let scale = (1 + rnd() % 100) as f64;
                    // bytes unit·{3,4,5,6,8}; costs falling, not always convexly, some
                    // dominated.
                    let c = [3u64, 4, 5, 6, 8]
                        .iter()
                        .map(|&b| {
                            let wobble = 0.5 + (rnd() % 1000) as f64 / 1000.0;
                            cand("q8_0", unit * b, scale * (-(b as f64)).exp2() * wobble)
                        })
                        .collect();
                    tensor(&format!("t{i}"), c)
                })
                .collect();
            let min: u64 = sens.iter().map(|s| s.candidates[0].bytes).sum();
            let max: u64 = sens.iter().map(|s| s.candidates[4].bytes).sum();
            let budget = min + rnd() % (max - min + 1);
            let got = choose(&sens, budget).unwrap();
            let bytes: u64 = sens
                .iter()
                .zip(&got)
                .map(|(s, &c)| s.candidates[c].bytes)
                .sum();
            assert!(bytes <= budget);
            let mut best = f64::INFINITY;
            for code in 0..5usize.pow(n as u32) {
                let pick: Vec<usize> = (0..n).map(|t| code / 5usize.pow(t as u32) % 5).collect();
                let b: u64 = sens
                    .iter()
                    .zip(&pick)
                    .map(|(s, &c)| s.candidates[c].bytes)
                    .sum();
                if b <= budget {
                    best = best.min(total_cost(&sens, &pick));
                }
            }
            // Budgets under 2^16 bytes: the knapsack is exact.
            let cost = total_cost(&sens, &got);
            assert!(
                (cost - best).abs() <= 1e-9 * best.max(1.0),
                "cost {cost} best {best}"
            );
        }
    }

    #[test]
    fn budget_below_the_smallest_is_refused() {
        let s = vec![tensor(
            "a",
            vec![cand("q3_K", 10, 1.0), cand("q8_0", 20, 0.0)],
        )];
        assert_eq!(choose(&s, 9), None);
        assert_eq!(choose(&s, 10), Some(vec![0]));
        assert_eq!(choose(&s, 20), Some(vec![1]));
    }

    #[test]
    fn lines_are_anchored_and_escaped() {
        let s = vec![tensor("blk.1.attn_v.weight", vec![cand("q6_K", 1, 0.0)])];
        let l = tensor_type_lines(&s, &[0]);
        assert_eq!(l[0].0, "^blk\\.1\\.attn_v\\.weight$");
        let re = regex::Regex::new(&l[0].0).unwrap();
        assert!(re.is_match("blk.1.attn_v.weight"));
        assert!(!re.is_match("blk.11.attn_v.weight"));
        assert!(!re.is_match("blkx1.attn_v.weight"));
    }
}
