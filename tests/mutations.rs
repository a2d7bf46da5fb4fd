//! Seeded mutations of every testdata file — byte flips, truncations, splices, and 8-byte fields set
//! to hostile values — go through the parser, the validator and everything `inspect` computes from
//! a file that passes (summary, memory estimate, JSON of every value, the writer). Each must end in
//! a value or an error, never a panic. Deterministic: a fixed xorshift seed.

mod common;

use common::Rng;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pocket::gguf::json::value_to_json;
use pocket::gguf::{Gguf, GgufWriter};

const HOSTILE_U64: [u64; 8] = [
    0,
    1,
    31,
    0xFFFF_FFFF,
    1 << 32,
    1 << 62,
    i64::MAX as u64,
    u64::MAX,
];

fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    // Most damage goes where the structure is: the first 64 KiB.
    let hot = base.len().min(65536);
    let mut b = base.to_vec();
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(hot);
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => b.truncate(rng.below(base.len())),
        2 => {
            let i = rng.below(hot.saturating_sub(8));
            let v = HOSTILE_U64[rng.below(HOSTILE_U64.len())];
            let bytes = if rng.below(2) == 0 {
                v.to_le_bytes()
            } else {
                (v as u32 as u64).to_le_bytes()
            };
            let n = 8.min(b.len() - i);
            b[i..i + n].copy_from_slice(&bytes[..n]);
        }
        3 => {
            // Splice a piece of another file (or this one) over a piece of this one.
            let src = if rng.below(2) == 0 { other } else { base };
            let n = 1 + rng.below(256);
            let from = rng.below(src.len().min(65536).saturating_sub(n).max(1));
            let to = rng.below(hot.saturating_sub(n).max(1));
            let piece = &src[from..(from + n).min(src.len())];
            let end = (to + piece.len()).min(b.len());
            b[to..end].copy_from_slice(&piece[..end - to]);
        }
        _ => {
            // Insert or delete bytes, shifting everything after.
            let i = rng.below(hot);
            if rng.below(2) == 0 {
                b.drain(i..(i + 1 + rng.below(16)).min(b.len()));
            } else {
                let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                b.splice(i..i, junk);
            }
        }
    }
    b
}

/// Everything inspect does with a file, minus printing.
fn exercise(bytes: &[u8]) {
    let Ok(g) = Gguf::parse(bytes) else { return };
    let s = pocket::summary::summarize(std::slice::from_ref(&g));
    let _ = pocket::memory::estimate(&g, s.tensor_bytes, 4096);
    for kv in &g.kvs {
        let _ = value_to_json(&kv.value);
    }
    for t in &g.tensors {
        let _ = g.tensor_data(t);
    }
    let mut out = Vec::new();
    let _ = GgufWriter::from_gguf(&g).write_from(&mut out, &g);
}

#[test]
fn mutated_files_never_panic() {
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(common::testdata(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    files.sort();
    assert!(files.len() >= 8);
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let cases = 4000;
    let mut accepted = 0;
    for case in 0..cases {
        let i = rng.below(files.len());
        let j = rng.below(files.len());
        let m = mutate(&mut rng, &files[i], &files[j]);
        if Gguf::parse(&m).is_ok() {
            accepted += 1;
        }
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| exercise(&m))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            std::fs::write(
                std::env::temp_dir().join(format!("pocket-mutant-{case}.gguf")),
                &m,
            )
            .unwrap();
            panic!("case {case} (file #{i}) panicked: {msg:?}; mutant saved in the temp folder");
        }
    }
    // The mutations must be hostile enough to be rejected most of the time, but not always.
    assert!(
        accepted < cases * 3 / 4,
        "{accepted} of {cases} mutants accepted: mutations too gentle"
    );
    assert!(
        accepted > 0,
        "no mutant accepted: mutations never leave a valid file, coverage of valid paths lost"
    );
}
