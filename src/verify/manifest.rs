//! Manifests: lines of `TYPE  VALUE  NAME`, the format of `llama-gguf-hash` (its `sha256  HEX
//! FILE:TENSOR` per tensor and `sha256  HEX  FILE` for all tensor data in file order), which pocket
//! extends with entries llama-gguf-hash skips as unknown: `sha256  HEX  FILE:@header` (every byte
//! before the tensor data), `sha256  HEX  FILE:@kv:KEY` (each metadata record, so a changed key is
//! named) and `size  N  FILE`. With every tensor's hash, the header's and the size, every byte
//! llama.cpp reads from the file is covered. Pocket names files by their file name, so a copy
//! deployed elsewhere checks against the original's manifest.

use std::collections::HashMap;

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `sha256`, `size` (or another llama-gguf-hash type: `xxh64`, `sha1`, `uuid`).
    pub kind: String,
    pub value: String,
    pub name: String,
}

impl Entry {
    pub fn new(kind: &str, value: impl Into<String>, name: impl Into<String>) -> Entry {
        Entry {
            kind: kind.into(),
            value: value.into(),
            name: name.into(),
        }
    }

    /// The line as llama-gguf-hash prints it (`%-8s  %-s  %s`).
    pub fn line(&self) -> String {
        format!("{:<8}  {}  {}", self.kind, self.value, self.name)
    }
}

pub fn hex(h: &[u8]) -> String {
    let mut s = String::with_capacity(h.len() * 2);
    for b in h {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Reads a manifest the way llama-gguf-hash does: each line's type and value (the first two
/// whitespace-separated words), then the name — the rest of the line, so that a file name with spaces
/// in it (which [`Entry::line`] writes as it is) reads back whole; lines with fewer fields ignored.
pub fn parse(text: &str) -> Vec<Entry> {
    fn word(s: &str) -> Option<(&str, &str)> {
        let s = s.trim_start();
        let end = s.find(char::is_whitespace)?;
        Some((&s[..end], &s[end..]))
    }
    text.lines()
        .filter_map(|l| {
            let (k, rest) = word(l)?;
            let (v, rest) = word(rest)?;
            let n = rest.trim();
            if k.starts_with('#') || n.is_empty() {
                return None;
            }
            Some(Entry::new(k, v, n))
        })
        .collect()
}

/// The result of comparing our entries with a manifest's.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub matched: usize,
    pub mismatched: Vec<String>,
    /// In the manifest, for one of our files, but not computed from it (e.g. a tensor now missing).
    pub missing: Vec<String>,
    /// Computed from our files but absent from the manifest.
    pub unlisted: Vec<String>,
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.matched > 0
            && self.mismatched.is_empty()
            && self.missing.is_empty()
            && self.unlisted.is_empty()
    }
}

/// Compares `ours` (all of the kinds we computed) with `theirs` for the files named `files`. Only
/// manifest entries of the kinds in `kinds` and for those files count. `only_prefixes`, if given,
/// restricts the comparison to names with one of these suffix forms (for header-only checks).
pub fn compare(
    ours: &[Entry],
    theirs: &[Entry],
    files: &[String],
    include: &dyn Fn(&Entry) -> bool,
) -> Comparison {
    let file_of = |name: &str| -> String { name.split(':').next().unwrap_or(name).to_string() };
    let mine: HashMap<(&str, &str), &str> = ours
        .iter()
        .filter(|e| include(e))
        .map(|e| ((e.kind.as_str(), e.name.as_str()), e.value.as_str()))
        .collect();
    let mut c = Comparison::default();
    let mut seen = std::collections::HashSet::new();
    for t in theirs {
        if !files.contains(&file_of(&t.name)) || !include(t) {
            continue;
        }
        if !(t.kind == "sha256" || t.kind == "size") {
            continue;
        }
        seen.insert((t.kind.as_str(), t.name.as_str()));
        match mine.get(&(t.kind.as_str(), t.name.as_str())) {
            Some(v) if *v == t.value => c.matched += 1,
            Some(v) => c.mismatched.push(format!(
                "{} {}: {} expected, {} found",
                t.kind, t.name, t.value, v
            )),
            None => c.missing.push(format!("{} {}", t.kind, t.name)),
        }
    }
    for (k, n) in mine.keys() {
        if !seen.contains(&(*k, *n)) {
            c.unlisted.push(format!("{k} {n}"));
        }
    }
    c.unlisted.sort();
    c
}
