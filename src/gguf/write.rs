//! Writes GGUF files the way llama.cpp's `gguf_write_out` and gguf-py's `GGUFWriter` do: header,
//! key/value pairs, tensor infos, zero padding to the alignment, then each tensor's data followed by
//! zero padding to the alignment. Tensor data is streamed from a callback, one tensor at a time, so
//! nothing needs the whole model in memory. A file read with [`super::Gguf`] and written back with
//! [`GgufWriter::from_gguf`] is byte-identical when it was written by either of those writers.

use std::io::{self, Write};

use super::error::{GgufError, Result};
use super::parse::KeyValue;
use super::spec::{self, Endian, GgmlType, ValueType, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAX_DIMS};
use super::validate::{pad, Gguf};
use super::value::{scalar_bits, Array, Value};

/// A tensor to write: its data comes from the callback given to [`GgufWriter::write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec<'a> {
    pub name: &'a str,
    /// Shape in ggml order (`dims[0]` is the row length).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

impl TensorSpec<'_> {
    pub fn n_bytes(&self) -> Option<u64> {
        let n = self.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        self.ty.bytes_for(n)
    }
}

/// Everything a GGUF file holds besides tensor data.
#[derive(Debug, Clone)]
pub struct GgufWriter<'a> {
    pub version: u32,
    pub endian: Endian,
    pub kvs: Vec<KeyValue<'a>>,
    pub tensors: Vec<TensorSpec<'a>>,
}

impl<'a> GgufWriter<'a> {
    pub fn new(endian: Endian) -> Self {
        GgufWriter {
            version: spec::MAX_VERSION,
            endian,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// The header of an existing file, ready to be written again (possibly after edits).
    pub fn from_gguf(g: &Gguf<'a>) -> Self {
        GgufWriter {
            version: g.version,
            endian: g.endian,
            kvs: g.kvs.clone(),
            tensors: g
                .tensors
                .iter()
                .map(|t| TensorSpec {
                    name: t.name,
                    dims: t.dims.clone(),
                    ty: t.ty,
                })
                .collect(),
        }
    }

    /// Sets a key, replacing its value in place if present, else appending it.
    pub fn set(&mut self, key: &'a str, value: Value<'a>) {
        match self.kvs.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.kvs.push(KeyValue {
                key,
                value,
                offset: 0,
            }),
        }
    }

    pub fn remove(&mut self, key: &str) -> bool {
        let n = self.kvs.len();
        self.kvs.retain(|kv| kv.key != key);
        self.kvs.len() != n
    }

    /// `general.alignment` if set (and valid), else the default 32.
    pub fn alignment(&self) -> Result<u64> {
        match self.kvs.iter().find(|kv| kv.key == KEY_ALIGNMENT) {
            None => Ok(DEFAULT_ALIGNMENT),
            Some(kv) => match kv.value {
                Value::U32(a) if a != 0 && a.is_power_of_two() => Ok(a as u64),
                Value::U32(a) => Err(GgufError::BadAlignment {
                    value: a as u64,
                    offset: kv.offset,
                }),
                v => Err(GgufError::WrongKeyType {
                    key: KEY_ALIGNMENT.into(),
                    offset: kv.offset,
                    expected: ValueType::U32.name(),
                    found: v.value_type().name(),
                }),
            },
        }
    }

    fn lw(&self) -> usize {
        if self.version >= 2 {
            8
        } else {
            4
        }
    }

    /// The header bytes, up to and including the padding before the data section. The padding is
    /// allocated: for a length alone use [`GgufWriter::header_len`], which allocates nothing for it
    /// (a valid file may ask for an alignment of 2^31).
    pub fn header_bytes(&self) -> Result<Vec<u8>> {
        let mut out = self.header_records()?;
        let end = self.header_len()? as usize;
        out.resize(end, 0);
        Ok(out)
    }

    /// Length of the header with its padding: where the data section starts.
    pub fn header_len(&self) -> Result<u64> {
        let n = self.header_records()?.len() as u64;
        pad(n, self.alignment()?).ok_or(GgufError::BadAlignment {
            value: self.alignment()?,
            offset: 0,
        })
    }

    /// The header's records (magic to the last tensor info), without the padding after them.
    pub fn header_records(&self) -> Result<Vec<u8>> {
        let align = self.alignment()?;
        let e = self.endian;
        let lw = self.lw();
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(&spec::MAGIC);
        put_uint(&mut out, self.version as u64, 4, e);
        put_uint(&mut out, self.tensors.len() as u64, lw, e);
        put_uint(&mut out, self.kvs.len() as u64, lw, e);
        for kv in &self.kvs {
            put_str(&mut out, kv.key, lw, e);
            put_uint(&mut out, kv.value.value_type() as u64, 4, e);
            put_value(&mut out, &kv.value, lw, e);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            if t.dims.is_empty() || t.dims.len() > MAX_DIMS {
                return Err(GgufError::BadDimCount {
                    name: t.name.into(),
                    n_dims: t.dims.len() as u32,
                    offset: 0,
                });
            }
            let n_bytes = t.n_bytes().ok_or_else(|| GgufError::ElementOverflow {
                name: t.name.into(),
                shape: t.dims.clone(),
                offset: 0,
            })?;
            put_str(&mut out, t.name, lw, e);
            put_uint(&mut out, t.dims.len() as u64, 4, e);
            for &d in &t.dims {
                put_uint(&mut out, d, lw, e);
            }
            put_uint(&mut out, t.ty.id.raw() as u64, 4, e);
            put_uint(&mut out, offset, 8, e);
            offset = pad(n_bytes, align)
                .and_then(|p| offset.checked_add(p))
                .ok_or_else(|| GgufError::ElementOverflow {
                    name: t.name.into(),
                    shape: t.dims.clone(),
                    offset: 0,
                })?;
        }
        Ok(out)
    }

    /// Writes the whole file to `out`. `data(i, w)` must write exactly the bytes of tensor `i`.
    /// Returns the number of bytes written.
    pub fn write<W: Write>(
        &self,
        out: &mut W,
        mut data: impl FnMut(usize, &mut dyn Write) -> io::Result<()>,
    ) -> io::Result<u64> {
        let header = self.header_records().map_err(io::Error::other)?;
        let align = self.alignment().map_err(io::Error::other)?;
        out.write_all(&header)?;
        let header_len = self.header_len().map_err(io::Error::other)?;
        write_zeros(out, header_len - header.len() as u64)?;
        let mut total = header_len;
        for (i, t) in self.tensors.iter().enumerate() {
            let want = t.n_bytes().expect("checked by header_bytes");
            let mut counted = CountingWriter {
                inner: &mut *out,
                n: 0,
            };
            data(i, &mut counted)?;
            if counted.n != want {
                return Err(io::Error::other(format!(
                    "tensor '{}': {} bytes written, {} expected",
                    t.name, counted.n, want
                )));
            }
            let padded = pad(want, align).expect("checked by header_bytes");
            write_zeros(out, padded - want)?;
            total += padded;
        }
        Ok(total)
    }

    /// Writes the header and copies each tensor's data from the validated source file `src`.
    pub fn write_from<W: Write>(&self, out: &mut W, src: &Gguf<'_>) -> io::Result<u64> {
        self.write(out, |i, w| {
            let name = self.tensors[i].name;
            let t = src.tensor(name).ok_or_else(|| {
                io::Error::other(format!("tensor '{name}' not in the source file"))
            })?;
            let bytes = src
                .tensor_data(t)
                .ok_or_else(|| io::Error::other(format!("tensor '{name}': data not available")))?;
            w.write_all(bytes)
        })
    }
}

/// Writes `n` zero bytes without allocating `n`: padding can be as long as the alignment, which a
/// valid file may set to 2^31.
fn write_zeros<W: Write + ?Sized>(out: &mut W, mut n: u64) -> io::Result<()> {
    static ZEROS: [u8; 65536] = [0; 65536];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

struct CountingWriter<'w, W: Write> {
    inner: &'w mut W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn put_uint(out: &mut Vec<u8>, v: u64, width: usize, e: Endian) {
    let b = match e {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    };
    match e {
        Endian::Little => out.extend_from_slice(&b[..width]),
        Endian::Big => out.extend_from_slice(&b[8 - width..]),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str, lw: usize, e: Endian) {
    put_uint(out, s.len() as u64, lw, e);
    out.extend_from_slice(s.as_bytes());
}

/// Encodes a value's payload (not its type tag).
fn put_value(out: &mut Vec<u8>, v: &Value<'_>, lw: usize, e: Endian) {
    match v {
        Value::String(s) => put_str(out, s, lw, e),
        Value::Array(a) => put_array(out, a, lw, e),
        scalar => {
            let size = scalar.value_type().fixed_size().expect("scalar");
            put_uint(out, scalar_bits(scalar).expect("scalar"), size, e);
        }
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array<'_>, lw: usize, e: Endian) {
    put_uint(out, a.elem_type as u64, 4, e);
    put_uint(out, a.len, lw, e);
    // Same byte order and length width: the stored bytes are already the encoding.
    if a.endian == e && a.len_width() == lw {
        out.extend_from_slice(a.raw);
        return;
    }
    for v in a.iter() {
        if let Value::Array(inner) = &v {
            put_array(out, inner, lw, e);
        } else {
            put_value(out, &v, lw, e);
        }
    }
}

/// Encodes a standalone array value (for building metadata): element type, values, byte order.
/// The returned bytes back an [`Array`] made with [`array_from_encoded`].
pub fn encode_array(elem_type: ValueType, values: &[Value<'_>], e: Endian) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        debug_assert_eq!(v.value_type(), elem_type);
        if let Value::Array(inner) = v {
            put_array(&mut out, inner, 8, e);
        } else {
            put_value(&mut out, v, 8, e);
        }
    }
    out
}

/// An [`Array`] over bytes produced by [`encode_array`] (GGUF v2+ length width).
pub fn array_from_encoded(elem_type: ValueType, len: u64, raw: &[u8], e: Endian) -> Array<'_> {
    Array {
        elem_type,
        len,
        raw,
        offset: 0,
        endian: e,
        wide: true,
    }
}
