//! `verify`'s `structure`, `truncation` and `trailing-data` checks of one shard.

use crate::gguf::{Gguf, GgufError};

use super::read::Shard;
use super::{Options, Out};

/// Structure and truncation of one shard. Returns the header view (validated as if the file were long
/// enough) and whether the tensor data is all there.
pub(super) fn structure<'a>(
    s: &'a Shard,
    opts: &Options,
    label: &str,
    out: &mut Out,
) -> Option<(Gguf<'a>, bool)> {
    let at = |e: &GgufError| {
        Some(match e.offset() {
            Some(o) => format!("{label} byte {o}"),
            None => label.to_string(),
        })
    };
    let whole = s.head.len() as u64 == s.size;
    let g = match s.gguf_as(u64::MAX) {
        Ok(g) => g,
        Err(e) => {
            let cut = matches!(
                e,
                GgufError::Truncated { .. }
                    | GgufError::LengthPastEnd { .. }
                    | GgufError::CountTooLarge { .. }
            );
            if cut && whole && !opts.header_only {
                out.fail(
                    "truncation",
                    format!("the file ({} bytes) ends inside its header: {e}", s.size),
                    at(&e),
                );
            } else if cut && opts.header_only {
                out.fail(
                    "structure",
                    format!(
                        "the first {} bytes do not hold the whole header: {e}",
                        s.head.len()
                    ),
                    at(&e),
                );
            } else {
                out.fail("structure", format!("{e} [{}]", e.kind()), at(&e));
            }
            return None;
        }
    };
    out.pass(
        "structure",
        format!(
            "{label}: GGUF v{}, {}-endian, {} keys, {} tensors, data at byte {}",
            g.version,
            g.endian.name(),
            g.kvs.len(),
            g.tensors.len(),
            g.data_offset
        ),
    );
    if opts.header_only {
        return Some((g, false));
    }
    let last = g.tensors.iter().max_by_key(|t| t.file_offset + t.n_bytes);
    let need = last.map_or(0, |t| t.file_offset + t.n_bytes);
    if need > s.size {
        let t = last.map_or("", |t| t.name);
        out.fail(
            "truncation",
            format!(
                "the file is {} bytes but tensor '{t}' ends at byte {need}: {} bytes missing ({:.1}% of the data)",
                s.size,
                need - s.size,
                100.0 * (need - s.size) as f64 / (need - g.data_offset).max(1) as f64
            ),
            Some(format!("{label} byte {}", s.size)),
        );
        return Some((g, false));
    }
    // Validated as if the file were endless, the header passed every check but the two that
    // depend on the file's size (the data section and each tensor's data inside the file), and
    // both hold now that the last tensor ends inside the file: validating again against the real
    // size could not fail, and would hold a second copy of the tensor table (issue #27).
    out.pass(
        "truncation",
        format!(
            "{label}: all {} bytes of tensor data present",
            need.saturating_sub(g.data_offset)
        ),
    );
    let end = if g.tensors.is_empty() {
        s.size.min(g.data_offset)
    } else {
        g.data_end()
    };
    if s.size > end {
        out.warn(
            "trailing-data",
            format!(
                "{} bytes after the end of the last tensor's padded data (llama.cpp ignores them; a concatenated or half-overwritten file?)",
                s.size - end
            ),
            Some(format!("{label} byte {end}")),
        );
    }
    Some((g, true))
}
