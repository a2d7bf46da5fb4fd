//! Byte-order conversion: metadata and tensor infos re-encoded in the target order, tensor data
//! swapped field by field from each type's block layout ([`crate::gguf::blocks::layout`]): plain
//! types word by word (I16/I32/I64/F16/BF16/F32/F64), block formats only in their multi-byte fields
//! (f16 scales, Q8_K's f32 scale and u16 sums, the u16/u32 words IQ kernels read), single bytes
//! untouched. Swapping is its own inverse, so LE → BE → LE gives the identical file.

use std::io::Write;
use std::path::Path;

use super::{io_err, Result};
use crate::fsio::AtomicFile;
use crate::gguf::blocks::layout;
use crate::gguf::spec::Endian;
use crate::gguf::{GgmlType, Gguf, GgufWriter};

/// The multi-byte words of one block: (offset, width) for each word to reverse.
pub fn swap_words(ty: GgmlType) -> Result<Vec<(usize, usize)>> {
    let fields = layout(ty.id);
    let mut words = Vec::new();
    for f in fields {
        let w = f.kind.size();
        if w > 1 {
            for k in 0..f.count {
                words.push((f.offset + k * w, w));
            }
        }
    }
    Ok(words)
}

/// Swaps the byte order of whole blocks of type `ty` in `data` (its length a multiple of the block's
/// bytes).
pub fn swap_blocks(ty: GgmlType, words: &[(usize, usize)], data: &mut [u8]) {
    if words.is_empty() {
        return;
    }
    let bs = ty.type_size as usize;
    for block in data.chunks_exact_mut(bs) {
        for &(o, w) in words {
            block[o..o + w].reverse();
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    pub from: Endian,
    pub to: Endian,
    pub n_tensors: usize,
    /// Tensors whose data had words to swap.
    pub swapped_tensors: usize,
    pub bytes_written: u64,
}

/// Writes `g` (read from `input`) to `output` in byte order `to`, atomically. `progress` is called
/// with the bytes of tensor data as they are written.
pub fn convert_endian(
    g: &Gguf<'_>,
    input: &Path,
    output: &Path,
    to: Endian,
    progress: &mut dyn FnMut(u64),
) -> Result<ConvertReport> {
    let mut w = GgufWriter::from_gguf(g);
    w.endian = to;
    let plans = g
        .tensors
        .iter()
        .map(|t| swap_words(t.ty))
        .collect::<Result<Vec<_>>>()?;
    let swap = g.endian != to;
    let align = w.alignment()?;
    let size = w.header_len()?
        + g.tensors
            .iter()
            .map(|t| crate::gguf::validate::pad(t.n_bytes, align).unwrap_or(u64::MAX))
            .sum::<u64>();
    let mut out = AtomicFile::create(output, &[input], Some(size))?;
    // Chunks of whole blocks, so a big tensor is never held in memory at once.
    let mut buf = Vec::new();
    let n = w
        .write(&mut out, |i, dst| {
            let t = &g.tensors[i];
            let data = g.tensor_data(t).ok_or_else(|| {
                std::io::Error::other(format!("tensor '{}': data not in the file", t.name))
            })?;
            if !swap || plans[i].is_empty() {
                dst.write_all(data)?;
                progress(data.len() as u64);
                return Ok(());
            }
            let bs = t.ty.type_size as usize;
            let chunk = (1 << 20) / bs * bs;
            for part in data.chunks(chunk.max(bs)) {
                buf.clear();
                buf.extend_from_slice(part);
                swap_blocks(t.ty, &plans[i], &mut buf);
                dst.write_all(&buf)?;
                progress(buf.len() as u64);
            }
            Ok(())
        })
        .map_err(|e| io_err(output, e))?;
    out.flush().map_err(|e| io_err(output, e))?;
    out.commit()?;
    Ok(ConvertReport {
        from: g.endian,
        to,
        n_tensors: g.tensors.len(),
        swapped_tensors: if swap {
            plans.iter().filter(|p| !p.is_empty()).count()
        } else {
            0
        },
        bytes_written: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::spec::ggml_types;

    #[test]
    fn every_type_swaps_only_its_multibyte_fields_and_twice_is_identity() {
        for ty in ggml_types() {
            let words = swap_words(ty).unwrap();
            let bs = ty.type_size as usize;
            let orig: Vec<u8> = (0..bs * 3).map(|i| (i * 7 + 1) as u8).collect();
            let mut d = orig.clone();
            swap_blocks(ty, &words, &mut d);
            let changed = d.iter().zip(&orig).filter(|(a, b)| a != b).count();
            let in_words: usize = words.iter().map(|w| w.1).sum::<usize>() * 3;
            assert!(changed <= in_words, "{}", ty.name);
            swap_blocks(ty, &words, &mut d);
            assert_eq!(d, orig, "{}", ty.name);
        }
        let f16 = crate::gguf::spec::ggml_type_by_name("f16").unwrap();
        let mut d = vec![1, 2, 3, 4];
        swap_blocks(f16, &swap_words(f16).unwrap(), &mut d);
        assert_eq!(d, [2, 1, 4, 3]);
        let q8k = crate::gguf::spec::ggml_type_by_name("q8_K").unwrap();
        let w = swap_words(q8k).unwrap();
        assert_eq!(w[0], (0, 4), "Q8_K's f32 scale");
        assert_eq!(w.len(), 1 + 16, "and its 16 u16 bsums");
    }
}
