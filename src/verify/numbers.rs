//! The data pass: one read of each tensor (in chunks of whole blocks, via `pread`), feeding a SHA-256
//! and a scan of every floating-point field for NaN and Inf — the values of plain float tensors and
//! the scales of block formats (`d`, `dmin`, `m`, E8M0/UE4M3 exponents), located with
//! [`crate::gguf::blocks`] without decoding any quant. It also notes the largest magnitude and whether
//! the tensor is all zeros (every value, or for block formats every scale, is ±0; for formats without
//! float fields, every byte is 0).

use std::io;

use sha2::{Digest, Sha256};

use crate::gguf::blocks::{float_fields, Field, Kind};
use crate::gguf::{Endian, TensorInfo, TypeId};

use super::read::{read_exact_at, Source};

/// Bytes read per step (rounded down to whole blocks).
const CHUNK: u64 = 4 << 20;

/// The first NaN or Inf found in a tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// "NaN" or "Inf".
    pub what: &'static str,
    /// The block field it is in (`d`, `dmin`, ... or `value` for plain float tensors).
    pub field: &'static str,
    /// Index of the block (or element, for plain types) in the tensor.
    pub block: u64,
    /// Absolute byte offset of the value in the file.
    pub file_offset: u64,
}

/// What the data pass found in one tensor.
#[derive(Debug, Clone, Default)]
pub struct TensorScan {
    pub nan: u64,
    pub inf: u64,
    pub first_bad: Option<BadValue>,
    /// Largest finite magnitude among the float fields (0 if none).
    pub max_abs: f64,
    pub all_zero: bool,
    pub sha256: Option<[u8; 32]>,
}

#[derive(Clone, Copy)]
struct Scanner {
    nan: u64,
    inf: u64,
    // Largest magnitude per kind as raw bits with the sign cleared (monotonic for finite values).
    max_f16: u16,
    max_bf16: u16,
    max_f32: u32,
    max_f64: u64,
    any_nonzero: bool,
}

fn u16_at(b: &[u8], e: Endian) -> u16 {
    let a = [b[0], b[1]];
    match e {
        Endian::Little => u16::from_le_bytes(a),
        Endian::Big => u16::from_be_bytes(a),
    }
}

fn u32_at(b: &[u8], e: Endian) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    match e {
        Endian::Little => u32::from_le_bytes(a),
        Endian::Big => u32::from_be_bytes(a),
    }
}

fn u64_at(b: &[u8], e: Endian) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    match e {
        Endian::Little => u64::from_le_bytes(a),
        Endian::Big => u64::from_be_bytes(a),
    }
}

/// 0 finite, 1 NaN, 2 Inf.
#[inline]
fn class_bits(mag: u64, exp_mask: u64) -> u8 {
    if mag & exp_mask != exp_mask {
        0
    } else if mag == exp_mask {
        2
    } else {
        1
    }
}

impl Scanner {
    fn new() -> Self {
        Scanner {
            nan: 0,
            inf: 0,
            max_f16: 0,
            max_bf16: 0,
            max_f32: 0,
            max_f64: 0,
            any_nonzero: false,
        }
    }

    /// Looks at one value; returns 0 finite, 1 NaN, 2 Inf.
    #[inline]
    fn value(&mut self, kind: Kind, b: &[u8], e: Endian) -> u8 {
        let c = match kind {
            Kind::F16 => {
                let m = u16_at(b, e) & 0x7fff;
                self.any_nonzero |= m != 0;
                let c = class_bits(m as u64, 0x7c00);
                if c == 0 {
                    self.max_f16 = self.max_f16.max(m);
                }
                c
            }
            Kind::Bf16 => {
                let m = u16_at(b, e) & 0x7fff;
                self.any_nonzero |= m != 0;
                let c = class_bits(m as u64, 0x7f80);
                if c == 0 {
                    self.max_bf16 = self.max_bf16.max(m);
                }
                c
            }
            Kind::F32 => {
                let m = u32_at(b, e) & 0x7fff_ffff;
                self.any_nonzero |= m != 0;
                let c = class_bits(m as u64, 0x7f80_0000);
                if c == 0 {
                    self.max_f32 = self.max_f32.max(m);
                }
                c
            }
            Kind::F64 => {
                let m = u64_at(b, e) & 0x7fff_ffff_ffff_ffff;
                self.any_nonzero |= m != 0;
                let c = class_bits(m, 0x7ff0_0000_0000_0000);
                if c == 0 {
                    self.max_f64 = self.max_f64.max(m);
                }
                c
            }
            // E8M0: 2^(x-127), 0xFF is NaN; never zero, so it does not count towards all-zero.
            Kind::E8m0 => u8::from(b[0] == 0xff),
            // Unsigned E4M3: 0x7F and 0xFF are NaN (no Inf).
            Kind::Ue4m3 => {
                self.any_nonzero |= b[0] & 0x7f != 0;
                u8::from(b[0] & 0x7f == 0x7f)
            }
            _ => 0,
        };
        match c {
            1 => self.nan += 1,
            2 => self.inf += 1,
            _ => {}
        }
        c
    }

    fn max_abs(&self) -> f64 {
        let a = half::f16::from_bits(self.max_f16).to_f64();
        let b = half::bf16::from_bits(self.max_bf16).to_f64();
        let c = f32::from_bits(self.max_f32) as f64;
        let d = f64::from_bits(self.max_f64);
        a.max(b).max(c).max(d)
    }
}

/// Reads tensor `t` of `file` once, hashing it if `hash` and scanning it if `scan`.
pub fn scan_tensor(
    file: &dyn Source,
    t: &TensorInfo<'_>,
    endian: Endian,
    scan: bool,
    hash: bool,
) -> io::Result<TensorScan> {
    let ts = t.ty.type_size;
    let fields: Vec<&'static Field> = float_fields(t.ty.id).collect();
    let chunk = (CHUNK / ts).max(1) * ts;
    let mut buf = vec![0u8; chunk.min(t.n_bytes) as usize];
    let mut hasher = hash.then(Sha256::new);
    // Big-endian files disagree on block fields: llama.cpp's gguf_convert_endian.py swaps the scales
    // inside quantized blocks, gguf-py's writer leaves them (and BF16, which it stores as bytes) in
    // little-endian order. For those a value counts as NaN/Inf only in the reading with fewer of them.
    let orders: &[Endian] = if endian == Endian::Big && (t.ty.quantized || t.ty.id == TypeId::BF16)
    {
        &[Endian::Big, Endian::Little]
    } else {
        std::slice::from_ref(&endian)
    };
    let mut scs = [Scanner::new(); 2];
    let mut first_bads: [Option<BadValue>; 2] = [None, None];
    let mut any_byte = false;
    let mut done = 0u64;
    while done < t.n_bytes {
        let n = chunk.min(t.n_bytes - done) as usize;
        let b = &mut buf[..n];
        read_exact_at(file, b, t.file_offset + done)?;
        if let Some(h) = hasher.as_mut() {
            h.update(&*b);
        }
        if scan {
            if fields.is_empty() {
                any_byte |= b.iter().any(|&x| x != 0);
            } else {
                for (k, &e) in orders.iter().enumerate() {
                    let sc = &mut scs[k];
                    let before = sc.nan + sc.inf;
                    scan_blocks(sc, b, ts as usize, &fields, e);
                    if first_bads[k].is_none() && sc.nan + sc.inf > before {
                        first_bads[k] = locate_first_bad(b, ts as usize, &fields, e).map(
                            |(blk, f, off, what)| BadValue {
                                what,
                                field: f,
                                block: done / ts + blk as u64,
                                file_offset: t.file_offset + done + off as u64,
                            },
                        );
                    }
                }
            }
        }
        done += n as u64;
    }
    let pick = if orders.len() == 2 && scs[1].nan + scs[1].inf < scs[0].nan + scs[0].inf {
        1
    } else {
        0
    };
    let sc = scs[pick];
    let first_bad = first_bads[pick].take();
    Ok(TensorScan {
        nan: sc.nan,
        inf: sc.inf,
        first_bad,
        max_abs: sc.max_abs(),
        all_zero: scan && !(sc.any_nonzero || any_byte),
        sha256: hasher.map(|h| h.finalize().into()),
    })
}

fn scan_blocks(sc: &mut Scanner, b: &[u8], ts: usize, fields: &[&Field], e: Endian) {
    // Plain float types: one field of one value per "block"; a tight loop over the elements.
    if fields.len() == 1 && fields[0].count == 1 && fields[0].kind.size() == ts {
        let kind = fields[0].kind;
        for v in b.chunks_exact(ts) {
            sc.value(kind, v, e);
        }
        return;
    }
    for blk in b.chunks_exact(ts) {
        for f in fields {
            let w = f.kind.size();
            for k in 0..f.count {
                let at = f.offset + k * w;
                sc.value(f.kind, &blk[at..at + w], e);
            }
        }
    }
}

/// Where the first NaN/Inf in a chunk is: (block index in chunk, field, byte offset in chunk, what).
fn locate_first_bad(
    b: &[u8],
    ts: usize,
    fields: &[&Field],
    e: Endian,
) -> Option<(usize, &'static str, usize, &'static str)> {
    let mut sc = Scanner::new();
    for (i, blk) in b.chunks_exact(ts).enumerate() {
        for f in fields {
            let w = f.kind.size();
            for k in 0..f.count {
                let at = f.offset + k * w;
                match sc.value(f.kind, &blk[at..at + w], e) {
                    1 => return Some((i, f.name, i * ts + at, "NaN")),
                    2 => return Some((i, f.name, i * ts + at, "Inf")),
                    _ => {}
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_f16_and_f32_specials() {
        let mut sc = Scanner::new();
        assert_eq!(
            sc.value(Kind::F16, &0x7e00u16.to_le_bytes(), Endian::Little),
            1
        );
        assert_eq!(
            sc.value(Kind::F16, &0xfc00u16.to_le_bytes(), Endian::Little),
            2
        );
        assert_eq!(
            sc.value(Kind::F16, &0x3c00u16.to_le_bytes(), Endian::Little),
            0
        );
        assert_eq!(
            sc.value(Kind::F32, &f32::NAN.to_bits().to_be_bytes(), Endian::Big),
            1
        );
        assert_eq!(
            sc.value(
                Kind::F32,
                &(-1e30f32).to_bits().to_le_bytes(),
                Endian::Little
            ),
            0
        );
        assert_eq!(sc.value(Kind::E8m0, &[0xff], Endian::Little), 1);
        assert_eq!(sc.value(Kind::Ue4m3, &[0x7f], Endian::Little), 1);
        assert_eq!((sc.nan, sc.inf), (4, 1));
        assert_eq!(sc.max_abs(), 1e30f32 as f64);
        assert!(sc.any_nonzero);
    }
}
