//! Writing a requantized model: the checks llama-quantize makes before converting (importance matrix
//! present where needed, requantizing allowed, the source convertible), then each tensor read from the
//! mapped input, dequantized to f32 and quantized in slabs of rows (rayon across rows), written and
//! released from memory before the next — peak memory is a few slabs whatever the model's size.
//! Quantization is row by row, so splitting the rows differently from llama-quantize's threads gives
//! the same bytes. Optionally measures each converted tensor's error against its source.

use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::imatrix::Imatrix;
use super::meta::{self, KvOverride, KvOverrideValue};
use super::plan::{self, weight_order, ModelInfo, Params, Plan, Planned, TensorDesc};
use super::RequantError;
use crate::fsio::AtomicFile;
use crate::gguf::spec::{self, Endian, FtypeId, GgmlType, TypeId};
use crate::gguf::validate::pad;
use crate::gguf::write::{GgufWriter, TensorSpec};
use crate::gguf::{Gguf, GgufFile, TensorInfo};
use crate::quant::{self, QuantError};

/// Everything `pocket requantize` is asked to do besides the file names.
#[derive(Debug)]
pub struct Options {
    pub params: Params,
    pub allow_requantize: bool,
    pub keep_split: bool,
    /// `--override-kv`, in order.
    pub overrides: Vec<KvOverride>,
    /// The importance matrix (already filtered by --include/--exclude-weights) and the file name as
    /// given on the command line (it is written into the output's metadata).
    pub imatrix: Option<(Imatrix, String)>,
    /// Worker threads (0: rayon's default).
    pub n_threads: usize,
    /// Measure each converted tensor's error against its source.
    pub report: bool,
}

/// A model planned and ready to write.
#[derive(Debug)]
pub struct Prepared<'a> {
    pub model: ModelInfo,
    /// (input shard, tensor), in llama-quantize's processing order.
    pub order: Vec<(usize, &'a TensorInfo<'a>)>,
    pub plan: Plan,
    /// `general.file_type` of the output.
    pub file_type: u32,
    /// Output shards (1 unless `--keep-split` of a split model).
    pub n_split: usize,
    /// Every override written, the user's then the importance matrix's.
    pub overrides: Vec<KvOverride>,
    /// Total elements (for bits per weight).
    pub n_elements: u64,
    /// A tensor needs an importance matrix that was not given (an error unless only planning).
    pub needs_imatrix: Option<(String, &'static str)>,
}

fn has_imatrix(opts: &Options) -> bool {
    opts.imatrix
        .as_ref()
        .is_some_and(|(m, _)| !m.entries.is_empty())
}

/// Reads the model's hyperparameters, orders its tensors and plans each one's type.
pub fn prepare<'a>(
    ggufs: &'a [Gguf<'a>],
    paths: &[&Path],
    opts: &Options,
) -> Result<Prepared<'a>, RequantError> {
    for (g, p) in ggufs.iter().zip(paths) {
        if g.endian == Endian::Big {
            return Err(RequantError::BigEndian {
                path: p.display().to_string(),
            });
        }
    }
    let first = ggufs
        .first()
        .ok_or_else(|| RequantError::Model("no input file".into()))?;
    let ints: Vec<(String, i64)> = opts
        .overrides
        .iter()
        .filter_map(|o| match o.value {
            KvOverrideValue::Int(i) => Some((o.key.clone(), i)),
            _ => None,
        })
        .collect();
    let model = ModelInfo::from_kvs(&first.kvs, &ints)?;
    let mut order: Vec<(usize, &'a TensorInfo<'a>)> = ggufs
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.tensors.iter().map(move |t| (i, t)))
        .collect();
    if opts.keep_split {
        order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.offset.cmp(&b.1.offset)));
    } else {
        order.sort_by(|a, b| weight_order(a.1.name, b.1.name));
    }
    let descs: Vec<TensorDesc<'_>> = order
        .iter()
        .map(|(_, t)| TensorDesc {
            name: t.name,
            dims: t.dims.clone(),
            ty: t.ty,
        })
        .collect();
    let plan = plan::plan(&model, &descs, &opts.params, has_imatrix(opts))?;
    let file_type = if opts.params.ftype.is_copy() {
        match first.get(spec::KEY_FILE_TYPE).and_then(|v| v.as_u64()) {
            Some(f) => f as u32,
            None => guessed_ftype(&order).raw() | FtypeId::GUESSED,
        }
    } else {
        opts.params.ftype.id.raw()
    };
    let n_split = if opts.keep_split {
        order.iter().map(|(s, _)| s + 1).max().unwrap_or(1)
    } else {
        1
    };
    let mut overrides = opts.overrides.clone();
    if let Some((m, arg)) = &opts.imatrix {
        if !m.entries.is_empty() {
            overrides.extend(meta::imatrix_overrides(
                arg,
                &m.datasets,
                m.entries.len(),
                m.chunk_count,
            ));
        }
    }
    let needs_imatrix = if has_imatrix(opts) {
        None
    } else {
        plan.tensors
            .iter()
            .find(|p| p.allows_quantization && p.requires_imatrix)
            .map(|p| (p.name.clone(), p.to.name))
    };
    let n_elements = order.iter().map(|(_, t)| t.n_elements).sum();
    Ok(Prepared {
        model,
        order,
        plan,
        file_type,
        n_split,
        overrides,
        n_elements,
        needs_imatrix,
    })
}

/// The file type llama.cpp guesses when `general.file_type` is absent (for COPY).
fn guessed_ftype(order: &[(usize, &TensorInfo<'_>)]) -> FtypeId {
    let mut by_name: Vec<&TensorInfo<'_>> = order.iter().map(|(_, t)| *t).collect();
    by_name.sort_by(|a, b| weight_order(a.name, b.name));
    let mut counts = [0usize; spec::GGML_TYPE_COUNT as usize];
    let (mut best, mut best_n) = (TypeId::F32, 0usize);
    for t in by_name {
        let c = &mut counts[t.ty.id.raw() as usize];
        *c += 1;
        if best_n < *c {
            best_n = *c;
            best = t.ty.id;
        }
    }
    spec::guess_ftype(best)
}

impl Prepared<'_> {
    /// The output shard of the `i`-th tensor in processing order.
    pub fn shard_of(&self, i: usize) -> usize {
        if self.n_split > 1 {
            self.order[i].0
        } else {
            0
        }
    }

    /// The headers of the output files (shard by shard).
    pub fn headers<'s>(&'s self, first: &'s Gguf<'s>) -> Vec<GgufWriter<'s>> {
        let mut out: Vec<GgufWriter<'s>> = (0..self.n_split)
            .map(|_| GgufWriter::new(Endian::Little))
            .collect();
        out[0].kvs = meta::output_kvs(&first.kvs, self.file_type, &self.overrides);
        for (i, p) in self.plan.tensors.iter().enumerate() {
            let n_dims = TensorDesc {
                name: &p.name,
                dims: p.dims.clone(),
                ty: p.from,
            }
            .n_dims();
            out[self.shard_of(i)].tensors.push(TensorSpec {
                name: &p.name,
                dims: p.dims[..n_dims].to_vec(),
                ty: p.to,
            });
        }
        if self.n_split > 1 {
            let n = self.plan.tensors.len();
            for (s, w) in out.iter_mut().enumerate() {
                meta::add_split_keys(&mut w.kvs, s as u16, self.n_split as u16, n);
            }
        }
        out
    }

    /// Size of each output file.
    pub fn output_sizes(&self, first: &Gguf<'_>) -> Result<Vec<u64>, RequantError> {
        let mut sizes = Vec::new();
        for h in self.headers(first) {
            let align = h.alignment()?;
            let mut n = h.header_bytes()?.len() as u64;
            for t in &h.tensors {
                n += pad(t.n_bytes().unwrap_or(0), align).unwrap_or(0);
            }
            sizes.push(n);
        }
        Ok(sizes)
    }

    /// The checks llama-quantize makes before (or while) converting, all made up front.
    pub fn check(&self, opts: &Options) -> Result<(), RequantError> {
        if let Some((tensor, ty)) = &self.needs_imatrix {
            return Err(RequantError::NeedsImatrix {
                tensor: tensor.clone(),
                ty,
            });
        }
        for p in &self.plan.tensors {
            if !p.converts() {
                continue;
            }
            // ggml itself cannot quantize these without one, even where llama-quantize does not ask
            // (token_embd with --pure): llama-quantize aborts there, pocket refuses up front.
            if self.imatrix_for(p, opts)?.is_none() && quant::requires_imatrix(p.to) {
                return Err(RequantError::MissingImatrix {
                    tensor: p.name.clone(),
                    ty: p.to.name,
                });
            }
            if p.from.quantized && !opts.allow_requantize {
                return Err(RequantError::RequantizeDisabled {
                    tensor: p.name.clone(),
                    ty: p.from.name,
                });
            }
            if p.dims[0] % p.to.block_size != 0 {
                return Err(RequantError::RowBlocks {
                    tensor: p.name.clone(),
                    ncols: p.dims[0],
                    ty: p.to.name,
                    block: p.to.block_size,
                });
            }
            if !(p.from.quantized || matches!(p.from.id, TypeId::F32 | TypeId::F16 | TypeId::BF16))
            {
                return Err(RequantError::CannotConvert {
                    tensor: p.name.clone(),
                    ty: p.from.name,
                });
            }
        }
        Ok(())
    }

    /// The importance matrix for a converted tensor, checked as llama-quantize does.
    fn imatrix_for<'o>(
        &self,
        p: &Planned,
        opts: &'o Options,
    ) -> Result<Option<&'o [f32]>, RequantError> {
        let found = self.imatrix_for_budget(p, opts)?;
        if found.is_none() && p.requires_imatrix {
            return Err(RequantError::MissingImatrix {
                tensor: p.name.clone(),
                ty: p.to.name,
            });
        }
        Ok(found)
    }

    /// The importance matrix entry of a tensor (row length × experts), if the matrix has one; an
    /// entry of the wrong size is an error (but for the token embeddings, whose entry llama.cpp
    /// ignores then).
    pub(crate) fn imatrix_for_budget<'o>(
        &self,
        p: &Planned,
        opts: &'o Options,
    ) -> Result<Option<&'o [f32]>, RequantError> {
        let mut found = None;
        if let Some((m, _)) = &opts.imatrix {
            if let Some(v) = m.entries.get(&p.name) {
                let want = p.dims[0] * p.dims.get(2).copied().unwrap_or(1);
                if v.len() as u64 == want {
                    found = Some(v.as_slice());
                } else if !(p.name == "token_embd.weight"
                    || p.name == "per_layer_token_embd.weight")
                {
                    return Err(RequantError::ImatrixSize {
                        tensor: p.name.clone(),
                        got: v.len(),
                        want,
                    });
                }
            }
        }
        Ok(found)
    }
}

/// Where the writing is, after each tensor.
#[derive(Debug, Clone)]
pub struct Progress<'p> {
    pub index: usize,
    pub total: usize,
    pub name: &'p str,
    /// Source bytes done so far, of `bytes_total`.
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Quantization error of one converted tensor against its source (as f32).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorReport {
    pub name: String,
    pub from: GgmlType,
    pub to: GgmlType,
    pub n: u64,
    pub rmse: f64,
    pub max_abs: f64,
    /// RMS error over RMS of the source.
    pub rel: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    sse: f64,
    ss: f64,
    max_abs: f64,
    n: u64,
}

impl Stats {
    fn merge(a: Stats, b: Stats) -> Stats {
        Stats {
            sse: a.sse + b.sse,
            ss: a.ss + b.ss,
            max_abs: a.max_abs.max(b.max_abs),
            n: a.n + b.n,
        }
    }
}

/// Output paths: OUT, or with `--keep-split` llama-quantize's shard names.
pub fn output_paths(out: &Path, prep: &Prepared<'_>, keep_split: bool) -> Vec<PathBuf> {
    if !keep_split {
        return vec![out.to_path_buf()];
    }
    let s = out.to_string_lossy();
    (0..prep.n_split)
        .map(|i| PathBuf::from(meta::keep_split_path(&s, i as u16, prep.n_split as u16)))
        .collect()
}

/// Values per slab of rows converted and written at once: bounds the output buffer (32 MiB at most,
/// for F32) and how much of the source is resident before it is released.
const SLAB_VALUES: usize = 8 << 20;
/// Bytes copied at a time for tensors that keep their type.
const COPY_CHUNK: usize = 16 << 20;
/// Values per parallel task (llama-quantize's minimum chunk).
const TASK_VALUES: usize = 32 * 512;

/// Writes the requantized model. `files` and `ggufs` are the input shards (the same ones `prep` was
/// made from); `outputs` come from [`output_paths`]. Returns the error report of converted tensors
/// when `opts.report` is set.
pub fn requantize(
    files: &[GgufFile],
    ggufs: &[Gguf<'_>],
    prep: &Prepared<'_>,
    opts: &Options,
    outputs: &[PathBuf],
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<Vec<TensorReport>, RequantError> {
    prep.check(opts)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.n_threads)
        .build()
        .map_err(|e| RequantError::Model(format!("thread pool: {e}")))?;
    let inputs: Vec<&Path> = files.iter().map(|f| f.path()).collect();
    let headers = prep.headers(&ggufs[0]);
    let sizes = prep.output_sizes(&ggufs[0])?;
    // Check every output before writing any.
    for o in outputs {
        crate::fsio::refuse_same(o, &inputs)?;
        crate::fsio::refuse_odd_target(o)?;
    }
    let bytes_total: u64 = prep.order.iter().map(|(_, t)| t.n_bytes).sum();
    let mut bytes_done = 0u64;
    let mut reports = Vec::new();
    let mut index_of_shard: Vec<Vec<usize>> = vec![Vec::new(); prep.n_split];
    for i in 0..prep.order.len() {
        index_of_shard[prep.shard_of(i)].push(i);
    }
    let mut pending = Vec::new();
    for (s, header) in headers.iter().enumerate() {
        let mut file = AtomicFile::create(&outputs[s], &inputs, Some(sizes[s]))?;
        let mut failure: Option<RequantError> = None;
        let written = header.write(&mut file, |k, w| {
            let i = index_of_shard[s][k];
            let (shard, t) = prep.order[i];
            let p = &prep.plan.tensors[i];
            let result = (|| -> Result<Option<Stats>, RequantError> {
                let src = ggufs[shard].tensor_data(t).ok_or_else(|| {
                    RequantError::Model(format!("tensor {}: data not available", t.name))
                })?;
                // Each slab of the source is released once used, so that even one huge tensor
                // (a 256k-token embedding) does not stay resident.
                let release = |off: usize, len: usize| {
                    files[shard].release(t.file_offset + off as u64, len as u64)
                };
                let stats = if p.converts() {
                    let im = prep.imatrix_for(p, opts)?;
                    convert_tensor(&pool, p, src, im, w, opts.report, &release)?
                } else {
                    for (k, chunk) in src.chunks(COPY_CHUNK).enumerate() {
                        w.write_all(chunk).map_err(|e| io_err(&outputs[s], e))?;
                        release(k * COPY_CHUNK, chunk.len());
                    }
                    None
                };
                Ok(stats)
            })();
            match result {
                Ok(stats) => {
                    if let Some(st) = stats {
                        reports.push(report_of(p, st));
                    }
                    bytes_done += t.n_bytes;
                    progress(&Progress {
                        index: i,
                        total: prep.order.len(),
                        name: t.name,
                        bytes_done,
                        bytes_total,
                    });
                    Ok(())
                }
                Err(e) => {
                    let msg = e.to_string();
                    failure = Some(e);
                    Err(std::io::Error::other(msg))
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        written.map_err(|e| io_err(&outputs[s], e))?;
        pending.push(file);
    }
    // The shards of a --keep-split output are committed together, all or nothing.
    crate::fsio::commit_all(pending)?;
    reports.sort_by(|a, b| b.rel.total_cmp(&a.rel));
    Ok(reports)
}

fn io_err(p: &Path, e: std::io::Error) -> RequantError {
    RequantError::Io {
        path: p.display().to_string(),
        source: e,
    }
}

fn report_of(p: &Planned, s: Stats) -> TensorReport {
    let n = s.n.max(1) as f64;
    TensorReport {
        name: p.name.clone(),
        from: p.from,
        to: p.to,
        n: s.n,
        rmse: (s.sse / n).sqrt(),
        max_abs: s.max_abs,
        rel: if s.ss > 0.0 {
            (s.sse / s.ss).sqrt()
        } else if s.sse > 0.0 {
            f64::INFINITY
        } else {
            0.0
        },
    }
}

fn qerr(p: &Planned, e: QuantError) -> RequantError {
    RequantError::Quant {
        tensor: p.name.clone(),
        source: e,
    }
}

/// Converts one tensor, slab by slab, writing its bytes to `w`.
fn convert_tensor(
    pool: &rayon::ThreadPool,
    p: &Planned,
    src: &[u8],
    imatrix: Option<&[f32]>,
    w: &mut dyn Write,
    report: bool,
    release: &dyn Fn(usize, usize),
) -> Result<Option<Stats>, RequantError> {
    let ne0 = p.dims[0] as usize;
    let ne1 = p.dims.get(1).copied().unwrap_or(1) as usize;
    let rows = (p.n_elements() as usize) / ne0;
    let row_src = p
        .from
        .bytes_for(ne0 as u64)
        .ok_or_else(|| qerr(p, partial(p.from, ne0)))? as usize;
    let row_dst =
        p.to.bytes_for(ne0 as u64)
            .ok_or_else(|| qerr(p, partial(p.to, ne0)))? as usize;
    let slab_rows = (SLAB_VALUES / ne0).max(1).min(rows);
    let task_rows = (TASK_VALUES / ne0).max(1);
    let mut dst = vec![0u8; slab_rows * row_dst];
    let mut total = Stats::default();
    let mut r0 = 0;
    while r0 < rows {
        let r1 = (r0 + slab_rows).min(rows);
        let n = r1 - r0;
        // Tasks of whole rows that never cross an expert (each has its own importance matrix).
        let mut tasks: Vec<(usize, usize)> = Vec::new();
        let mut r = r0;
        while r < r1 {
            let expert_end = (r / ne1 + 1) * ne1;
            let end = (r + task_rows).min(r1).min(expert_end);
            tasks.push((r, end));
            r = end;
        }
        let mut slices: Vec<&mut [u8]> = Vec::with_capacity(tasks.len());
        let mut rest = &mut dst[..n * row_dst];
        for &(a, b) in &tasks {
            let (head, tail) = rest.split_at_mut((b - a) * row_dst);
            slices.push(head);
            rest = tail;
        }
        let stats = pool
            .install(|| {
                tasks
                    .par_iter()
                    .zip(slices.into_par_iter())
                    .map(|(&(a, b), out)| -> Result<Stats, QuantError> {
                        // Each task decodes its own rows: they stay in cache between the two steps.
                        let bytes = &src[a * row_src..b * row_src];
                        let mut x = vec![0f32; (b - a) * ne0];
                        if p.from.id == TypeId::F32 {
                            for (v, c) in x.iter_mut().zip(bytes.chunks_exact(4)) {
                                *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                            }
                        } else {
                            quant::dequantize_row(p.from, bytes, &mut x)?;
                        }
                        let x = &x[..];
                        let im = imatrix.map(|m| {
                            let e = a / ne1;
                            &m[e * ne0..(e + 1) * ne0]
                        });
                        quant::quantize_chunk(p.to, x, out, ne0, im)?;
                        if !report {
                            return Ok(Stats::default());
                        }
                        let mut y = vec![0f32; x.len()];
                        quant::dequantize_row(p.to, out, &mut y)?;
                        let mut st = Stats {
                            n: x.len() as u64,
                            ..Stats::default()
                        };
                        for (a, b) in x.iter().zip(&y) {
                            let d = (*a as f64) - (*b as f64);
                            st.sse += d * d;
                            st.ss += (*a as f64) * (*a as f64);
                            st.max_abs = st.max_abs.max(d.abs());
                        }
                        Ok(st)
                    })
                    .try_reduce(Stats::default, |a, b| Ok(Stats::merge(a, b)))
            })
            .map_err(|e| qerr(p, e))?;
        total = Stats::merge(total, stats);
        w.write_all(&dst[..n * row_dst])
            .map_err(|e| RequantError::Io {
                path: "output".into(),
                source: e,
            })?;
        release(r0 * row_src, n * row_src);
        r0 = r1;
    }
    Ok(report.then_some(total))
}

fn partial(ty: GgmlType, n: usize) -> QuantError {
    QuantError::PartialBlock {
        ty: ty.name,
        n,
        block: ty.block_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::spec::ggml_type_by_name;

    #[test]
    fn report_measures_rms_max_and_relative_error() {
        let p = Planned {
            name: "w".into(),
            dims: vec![4],
            from: ggml_type_by_name("f16").unwrap(),
            to: ggml_type_by_name("q8_0").unwrap(),
            rule: super::super::Rule::Default,
            fallback_from: None,
            allows_quantization: true,
            requires_imatrix: false,
        };
        // x = [3, 4, 0, 0], y = [3, 3, 0, 1]: errors 0, 1, 0, -1
        let a = Stats {
            sse: 1.0,
            ss: 25.0,
            max_abs: 1.0,
            n: 2,
        };
        let b = Stats {
            sse: 1.0,
            ss: 0.0,
            max_abs: 1.0,
            n: 2,
        };
        let r = report_of(&p, Stats::merge(a, b));
        assert_eq!(r.n, 4);
        assert!((r.rmse - (2.0f64 / 4.0).sqrt()).abs() < 1e-12);
        assert_eq!(r.max_abs, 1.0);
        assert!((r.rel - (2.0f64 / 25.0).sqrt()).abs() < 1e-12);
        // a source of zeros: no relative error unless something was lost
        let z = report_of(&p, Stats::default());
        assert_eq!(z.rel, 0.0);
        let inf = report_of(
            &p,
            Stats {
                sse: 1.0,
                n: 1,
                ..Stats::default()
            },
        );
        assert!(inf.rel.is_infinite());
    }
}
