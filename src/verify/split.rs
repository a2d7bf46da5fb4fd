//! `verify`'s shard set: finding the other shards of a split model by llama.cpp's names, and the
//! `split` check (numbering, counts, byte order, no tensor in two shards).

use std::collections::HashMap;
use std::path::Path;

use crate::gguf::file::{split_siblings, SplitPlace};
use crate::gguf::spec::{KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use crate::gguf::Gguf;

use super::read::Shard;
use super::{OpenShard, Options, Out};

/// Finds the other shards of a split model from its first shard's header, the way llama.cpp names
/// them, opening each with `open`. Missing shards are reported as failed `split` checks.
pub(super) fn discover(
    first: Shard,
    opts: &Options,
    out: &mut Out,
    open: OpenShard<'_>,
) -> Vec<Shard> {
    if opts.single {
        return vec![first];
    }
    let p = first.path.to_string_lossy().to_string();
    let others = match split_siblings(&first.head, &p) {
        Ok(others) => others,
        // A header that does not parse is reported by the structure check.
        Err(SplitPlace::Unreadable(_)) => vec![],
        Err(SplitPlace::NotFirst { no, count }) => {
            out.fail(
                "split",
                format!(
                    "this is shard {} of {count}, not the first; checking it alone",
                    no.map_or("?".to_string(), |n| (n + 1).to_string())
                ),
                Some(p),
            );
            return vec![first];
        }
        Err(SplitPlace::BadName { count }) => {
            out.fail(
                "split",
                format!("split.count is {count} but the name does not follow llama.cpp's PREFIX-00001-of-{count:05}.gguf, so the other shards cannot be found"),
                Some(p),
            );
            return vec![first];
        }
        Err(e) => {
            out.fail("split", e.message(&p), None);
            return vec![first];
        }
    };
    let count = others.len() + 1;
    let mut shards = vec![first];
    for (i, sp) in others.into_iter().enumerate() {
        match open(&sp) {
            Ok(s) => shards.push(s),
            Err(e) => out.fail(
                "split",
                format!("shard {} of {count} is missing: {e}", i + 2),
                Some(sp),
            ),
        }
    }
    shards
}

pub(super) fn split_checks(shards: &[Shard], gs: &[Option<(Gguf<'_>, bool)>], out: &mut Out) {
    let first = match gs.first() {
        Some(Some((g, _))) => g,
        _ => return,
    };
    let count = first.get_u64(KEY_SPLIT_COUNT);
    if count.is_none_or(|c| c <= 1) && shards.len() == 1 {
        return;
    }
    let count = count.unwrap_or(1);
    let mut ok = true;
    let mut by_no: HashMap<u64, &Path> = HashMap::new();
    for (s, g) in shards.iter().zip(gs) {
        let Some((g, _)) = g else { continue };
        if g.endian != first.endian {
            ok = false;
            out.fail(
                "split",
                format!(
                    "this shard is {}-endian but the first is {}-endian: a set must be one byte order",
                    g.endian.name(),
                    first.endian.name()
                ),
                Some(s.path.display().to_string()),
            );
        }
        let (no, c) = (g.get_u64(KEY_SPLIT_NO), g.get_u64(KEY_SPLIT_COUNT));
        if c != Some(count) {
            ok = false;
            out.fail(
                "split",
                format!("split.count is {c:?}, the first shard says {count}"),
                Some(s.path.display().to_string()),
            );
        }
        match no {
            None => {
                ok = false;
                out.fail(
                    "split",
                    "split.no is missing".into(),
                    Some(s.path.display().to_string()),
                );
            }
            Some(n) => {
                if let Some(other) = by_no.insert(n, &s.path) {
                    ok = false;
                    out.fail(
                        "split",
                        format!(
                            "shard {} appears twice: {} and {} both say split.no = {n}",
                            n + 1,
                            other.display(),
                            s.path.display()
                        ),
                        Some(s.path.display().to_string()),
                    );
                }
            }
        }
    }
    // Only when as many files as split.count were found (bounded by the files, whatever the count
    // says: a 200-byte file claiming 2^64 shards must not loop for hours).
    let found = if shards.len() as u64 == count {
        count
    } else {
        0
    };
    for n in 0..found {
        if !by_no.contains_key(&n) {
            ok = false;
            out.fail(
                "split",
                format!("no file holds shard {} (split.no = {n})", n + 1),
                None,
            );
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut total = 0u64;
    for (i, g) in gs.iter().enumerate() {
        let Some((g, _)) = g else { continue };
        total += g.tensors.len() as u64;
        for t in &g.tensors {
            if let Some(j) = seen.insert(t.name, i) {
                ok = false;
                out.fail(
                    "split",
                    format!(
                        "tensor '{}' is in shard {} and shard {}",
                        t.name,
                        j + 1,
                        i + 1
                    ),
                    Some(shards[i].path.display().to_string()),
                );
                break;
            }
        }
    }
    match first.get_u64(KEY_SPLIT_TENSORS_COUNT) {
        Some(want)
            if want != total && gs.iter().all(|g| g.is_some()) && shards.len() as u64 == count =>
        {
            ok = false;
            out.fail(
                "split",
                format!("split.tensors.count is {want} but the shards hold {total} tensors"),
                None,
            );
        }
        None => out.warn("split", "split.tensors.count is missing".into(), None),
        _ => {}
    }
    if ok && shards.len() as u64 == count {
        out.pass(
            "split",
            format!("{count} shards, numbered 1..{count}, {total} tensors in all, none doubled"),
        );
    }
}
