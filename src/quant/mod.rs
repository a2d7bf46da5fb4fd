//! Block formats: ggml's quantized tensor types, one module per family, each a faithful port of
//! `ggml/src/ggml-quants.c` (`quantize_row_*_ref`, `quantize_*` with an importance matrix,
//! `dequantize_row_*`) in the same operation order, so that the bytes are ggml's. Faster versions
//! (SIMD, threads) live beside the scalar reference they are tested against.
//!
//! The entry points mirror ggml's: [`quantize_chunk`] is `ggml_quantize_chunk` (whole rows, optional
//! importance matrix of `n_per_row` weights), [`dequantize_row`] is the type's `to_float`. Large calls
//! are split into whole rows (whole blocks when decoding) and run on rayon's pool; the pieces are
//! independent, so the bytes do not depend on the number of threads.

pub mod float;
pub mod fp4;
pub mod iquants;
pub mod kquants;
pub mod legacy;
pub mod lowbit;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod ternary;

#[cfg(test)]
mod simd_tests;

use rayon::prelude::*;

use crate::gguf::GgmlType;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    #[error("{op} to/from {ty} is not implemented")]
    Unsupported { ty: &'static str, op: &'static str },
    #[error("{ty}: {n} values is not a whole number of {block}-value blocks")]
    PartialBlock {
        ty: &'static str,
        n: usize,
        block: u64,
    },
    #[error("{ty}: buffer of {got} bytes, {want} expected for {n} values")]
    BadLength {
        ty: &'static str,
        got: usize,
        want: usize,
        n: usize,
    },
    #[error("{ty} needs an importance matrix (--imatrix)")]
    NeedsImatrix { ty: &'static str },
    #[error("{ty}: importance matrix has {got} values, rows have {want}")]
    BadImatrix {
        ty: &'static str,
        got: usize,
        want: usize,
    },
}

/// `ggml_quantize_requires_imatrix`.
pub fn requires_imatrix(ty: GgmlType) -> bool {
    matches!(ty.name, "iq2_xxs" | "iq2_xs" | "iq1_s")
}

fn byte_len(ty: GgmlType, n: usize) -> Result<usize, QuantError> {
    ty.bytes_for(n as u64)
        .map(|b| b as usize)
        .ok_or(QuantError::PartialBlock {
            ty: ty.name,
            n,
            block: ty.block_size,
        })
}

/// Decodes `dst.len()` values of type `ty` from `src` (exactly their bytes).
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let want = byte_len(ty, dst.len())?;
    if src.len() != want {
        return Err(QuantError::BadLength {
            ty: ty.name,
            got: src.len(),
            want,
            n: dst.len(),
        });
    }
    let block = ty.block_size as usize;
    if dst.len() >= PAR_MIN_VALUES && rayon::current_num_threads() > 1 {
        // Blocks are independent: decode whole-block pieces in parallel.
        let per = PAR_MIN_VALUES.div_ceil(block) * block;
        let bytes = per / block * ty.type_size as usize;
        src.par_chunks(bytes)
            .zip(dst.par_chunks_mut(per))
            .try_for_each(|(s, d)| dequantize_blocks(ty, s, d))
    } else {
        dequantize_blocks(ty, src, dst)
    }
}

/// One family call on checked whole blocks.
fn dequantize_blocks(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let done = float::dequantize(ty.id, src, dst)
        || legacy::dequantize(ty.id, src, dst)
        || kquants::dequantize(ty.id, src, dst)
        || iquants::dequantize(ty.id, src, dst)
        || ternary::dequantize(ty.id, src, dst)
        || fp4::dequantize(ty.id, src, dst)
        || lowbit::dequantize(ty.id, src, dst);
    if done {
        Ok(())
    } else {
        Err(QuantError::Unsupported {
            ty: ty.name,
            op: "dequantization",
        })
    }
}

/// Quantizes `src` (whole rows of `n_per_row` values) to `dst` as `ggml_quantize_chunk` does, with an
/// optional importance matrix of `n_per_row` weights. Returns the bytes written (all of `dst`).
pub fn quantize_chunk(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
) -> Result<usize, QuantError> {
    if n_per_row == 0 || !src.len().is_multiple_of(n_per_row) {
        return Err(QuantError::PartialBlock {
            ty: ty.name,
            n: src.len(),
            block: n_per_row as u64,
        });
    }
    let row = byte_len(ty, n_per_row)?;
    let nrows = src.len() / n_per_row;
    if dst.len() != row * nrows {
        return Err(QuantError::BadLength {
            ty: ty.name,
            got: dst.len(),
            want: row * nrows,
            n: src.len(),
        });
    }
    if let Some(im) = imatrix {
        if im.len() != n_per_row {
            return Err(QuantError::BadImatrix {
                ty: ty.name,
                got: im.len(),
                want: n_per_row,
            });
        }
    } else if requires_imatrix(ty) {
        return Err(QuantError::NeedsImatrix { ty: ty.name });
    }
    if src.len() >= PAR_MIN_VALUES && nrows > 1 && rayon::current_num_threads() > 1 {
        // Rows are independent in every format (llama-quantize splits them across threads too), so
        // whole-row pieces quantized in parallel give the same bytes as one call.
        let threads = rayon::current_num_threads();
        let rows_per = nrows
            .div_ceil(4 * threads)
            .max(PAR_MIN_VALUES.div_ceil(4 * n_per_row))
            .max(1);
        src.par_chunks(rows_per * n_per_row)
            .zip(dst.par_chunks_mut(rows_per * row))
            .try_for_each(|(s, d)| quantize_rows(ty, s, d, n_per_row, imatrix))?;
    } else {
        quantize_rows(ty, src, dst, n_per_row, imatrix)?;
    }
    Ok(row * nrows)
}

/// Whether the AVX2 kernels can run here (and are allowed to).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    crate::isa::cpu().at_least(crate::isa::Level::Avx2)
}

/// Whether the NEON kernels can run here (and are allowed to).
#[cfg(target_arch = "aarch64")]
#[inline]
pub(crate) fn has_neon() -> bool {
    crate::isa::cpu().at_least(crate::isa::Level::Neon)
}

/// Chunks at least this large (in values) are split across rayon's threads.
const PAR_MIN_VALUES: usize = 1 << 16;

/// One family call on checked whole rows.
fn quantize_rows(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
) -> Result<(), QuantError> {
    let mut args = Chunk {
        src,
        dst,
        n_per_row,
        imatrix,
    };
    let done = float::quantize(ty.id, &mut args)
        || legacy::quantize(ty.id, &mut args)
        || kquants::quantize(ty.id, &mut args)
        || iquants::quantize(ty.id, &mut args)
        || ternary::quantize(ty.id, &mut args)
        || fp4::quantize(ty.id, &mut args)
        || lowbit::quantize(ty.id, &mut args);
    if done {
        Ok(())
    } else {
        Err(QuantError::Unsupported {
            ty: ty.name,
            op: "quantization",
        })
    }
}

/// The arguments of one `quantize_chunk` call, checked: `src` is whole rows of `n_per_row`, `dst` is
/// exactly their bytes, `imatrix` (if any) has `n_per_row` values.
pub struct Chunk<'a> {
    pub src: &'a [f32],
    pub dst: &'a mut [u8],
    pub n_per_row: usize,
    pub imatrix: Option<&'a [f32]>,
}

impl Chunk<'_> {
    pub fn nrows(&self) -> usize {
        self.src.len() / self.n_per_row
    }
}
