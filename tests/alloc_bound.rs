//! Allocation discipline: parsing a file allocates at most a small multiple of its size, whatever
//! its counts and lengths claim — no number from the file sizes an allocation before it is checked
//! against the bytes that back it. A counting global allocator measures every parse of the testdata
//! files, the hostile corpus and seeded mutants.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pocket::gguf::Gguf;

struct Counting;

thread_local! {
    // Per thread: the test harness runs tests in parallel, and each must count only its own
    // allocations. A const-initialised Cell needs no allocation to be reached.
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(n: usize) {
    let _ = ALLOCATED.try_with(|c| c.set(c.get() + n));
}

fn allocated() -> usize {
    ALLOCATED.with(|c| c.get())
}

// SAFETY: forwards to the system allocator unchanged; only counts the bytes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        // SAFETY: same layout, passed through.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: p was allocated by System with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new);
        // SAFETY: p was allocated by System with layout l.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Bytes allocated (in total, not just at the peak) while parsing and validating `b`.
fn allocated_by_parse(b: &[u8]) -> usize {
    let before = allocated();
    let r = Gguf::parse(b);
    let after = allocated();
    drop(r);
    after - before
}

fn check(name: &str, b: &[u8]) {
    let used = allocated_by_parse(b);
    // The header records are decoded into structs a few times larger than their smallest encoding
    // (a 13-byte key/value becomes an ~80-byte entry); 8x the file plus a fixed 64 KiB is the bound.
    let bound = 8 * b.len() + 65536;
    assert!(
        used <= bound,
        "{name}: parsing {} bytes allocated {used} bytes (bound {bound})",
        b.len()
    );
}

#[test]
fn parsing_allocates_a_small_multiple_of_the_file() {
    let mut n = 0;
    for dir in ["", "hostile"] {
        for e in std::fs::read_dir(common::testdata(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "gguf") {
                let b = std::fs::read(&p).unwrap();
                check(&p.display().to_string(), &b);
                // Every prefix at a few hundred cut points: truncated files claim more than they hold.
                let step = (b.len() / 300).max(1);
                for cut in (0..b.len().min(1 << 20)).step_by(step) {
                    check(&format!("{} cut at {cut}", p.display()), &b[..cut]);
                }
                n += 1;
            }
        }
    }
    assert!(n >= 60, "only {n} files checked");
}

#[test]
fn counts_claiming_2_pow_64_records_allocate_nothing_large() {
    // 1 tensor, 2^64-1 keys claimed, a few bytes given.
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    b.extend_from_slice(&[0u8; 64]);
    let used = allocated_by_parse(&b);
    assert!(used < 4096, "allocated {used} bytes for an 88-byte file");
}
