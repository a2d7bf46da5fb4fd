//! Reads the records of a GGUF header with nom: magic, version, counts, key/value pairs and tensor
//! infos. This pass only establishes structure — every count and length is checked against the bytes
//! left before anything is allocated or sliced, so no value from the file sizes an allocation unchecked.
//! What the records *mean* (duplicate keys, type ids, shapes, offsets) is judged afterwards by
//! [`super::validate`].

use nom::number::complete as num;
use nom::number::Endianness;
use nom::Parser;

use super::error::{GgufError, Result};
use super::spec::{
    self, Endian, ValueType, MAX_ARRAY_DEPTH, MAX_ARRAY_ELEMENTS, MAX_STRING_LENGTH,
};
use super::value::{read_uint, scalar_from_bits, Array, Value};

/// A key/value pair and where it starts in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyValue<'a> {
    pub key: &'a str,
    pub value: Value<'a>,
    /// Offset of the key's length field.
    pub offset: u64,
}

/// A tensor info record as read, before validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTensorInfo<'a> {
    pub name: &'a str,
    pub n_dims: u32,
    pub dims: [u64; spec::MAX_DIMS],
    pub type_id: u32,
    /// Offset relative to the start of the data section, as stored.
    pub offset: u64,
    /// Offset of this record (its name's length field) in the file.
    pub info_offset: u64,
}

/// Everything before the tensor data, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct RawHeader<'a> {
    pub version: u32,
    pub endian: Endian,
    pub kvs: Vec<KeyValue<'a>>,
    pub tensors: Vec<RawTensorInfo<'a>>,
    /// Offset just past the last tensor info (before the padding to the data section).
    pub header_end: u64,
}

type NomErr<'a> = nom::error::Error<&'a [u8]>;

/// A position in the file. All reads go through here so that every error knows its offset.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    endian: Endian,
    /// u64 lengths and counts (v2+) or u32 (v1).
    wide: bool,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn nom_endian(&self) -> Endianness {
        match self.endian {
            Endian::Little => Endianness::Little,
            Endian::Big => Endianness::Big,
        }
    }

    fn truncated(&self, what: &str, needed: u64) -> GgufError {
        GgufError::Truncated {
            what: what.to_string(),
            offset: self.pos as u64,
            needed,
            available: self.left(),
        }
    }

    /// Runs a nom parser at the current position, mapping "incomplete" to a `Truncated` error.
    fn run<T>(
        &mut self,
        what: &str,
        needed: u64,
        mut p: impl Parser<&'a [u8], Output = T, Error = NomErr<'a>>,
    ) -> Result<T> {
        match p.parse(&self.buf[self.pos..]) {
            Ok((rest, v)) => {
                self.pos = self.buf.len() - rest.len();
                Ok(v)
            }
            Err(_) => Err(self.truncated(what, needed)),
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let e = self.nom_endian();
        self.run(what, 4, num::u32(e))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let e = self.nom_endian();
        self.run(what, 8, num::u64(e))
    }

    /// A length or count: u64 from v2 on, u32 in v1.
    fn len(&mut self, what: &str) -> Result<u64> {
        if self.wide {
            self.u64(what)
        } else {
            self.u32(what).map(u64::from)
        }
    }

    fn bytes(&mut self, what: &str, n: u64) -> Result<&'a [u8]> {
        let n_usize = usize::try_from(n).map_err(|_| self.truncated(what, n))?;
        self.run(
            what,
            n,
            nom::bytes::complete::take::<usize, &'a [u8], NomErr<'a>>(n_usize),
        )
    }

    /// A length-prefixed UTF-8 string, as used for keys, tensor names and string values.
    fn string(&mut self, what: &str) -> Result<&'a str> {
        let at = self.pos as u64;
        let n = self.len(&format!("length of {what}"))?;
        if n > MAX_STRING_LENGTH {
            return Err(GgufError::LengthOverLimit {
                what: what.to_string(),
                len: n,
                offset: at,
                max: MAX_STRING_LENGTH,
            });
        }
        if n > self.left() {
            return Err(GgufError::LengthPastEnd {
                what: what.to_string(),
                len: n,
                offset: at,
                available: self.left(),
            });
        }
        let start = self.pos as u64;
        let b = self.bytes(what, n)?;
        std::str::from_utf8(b).map_err(|e| GgufError::InvalidUtf8 {
            what: what.to_string(),
            offset: start + e.valid_up_to() as u64,
        })
    }
}

/// Smallest possible encoding of one element of `ty`, used to reject counts before looping on them.
fn min_elem_size(ty: ValueType, lw: u64) -> u64 {
    match ty.fixed_size() {
        Some(s) => s as u64,
        None if ty == ValueType::String => lw,
        None => 4 + lw, // nested array: element type + count
    }
}

/// Detects the byte order from the raw version field and returns (version, endian).
pub fn detect_version(raw: [u8; 4]) -> Result<(u32, Endian)> {
    let le = u32::from_le_bytes(raw);
    let (version, endian) = if le != 0 && le & 0xFFFF == 0 {
        (u32::from_be_bytes(raw), Endian::Big)
    } else {
        (le, Endian::Little)
    };
    if version == 0 || version > spec::MAX_VERSION {
        return Err(GgufError::UnsupportedVersion { version });
    }
    Ok((version, endian))
}

/// Parses the header of a GGUF file held in `buf` (a whole file or at least its header).
pub fn parse_header(buf: &[u8]) -> Result<RawHeader<'_>> {
    let mut c = Cursor {
        buf,
        pos: 0,
        endian: Endian::Little,
        wide: true,
    };

    let magic = c.bytes("magic", 4)?;
    if magic != spec::MAGIC {
        return Err(GgufError::BadMagic {
            found: String::from_utf8_lossy(magic).escape_debug().to_string(),
        });
    }
    let raw_version: [u8; 4] = c.bytes("version", 4)?.try_into().expect("took 4 bytes");
    let (version, endian) = detect_version(raw_version)?;
    c.endian = endian;
    c.wide = version >= 2;
    let lw: u64 = if c.wide { 8 } else { 4 };

    let at = c.pos as u64;
    let n_tensors = c.len("tensor count")?;
    let at_kv = c.pos as u64;
    let n_kv = c.len("key/value count")?;

    // Each key/value needs a key length, a type and at least one byte of value; each tensor info a
    // name length, n_dims, a type and an offset. Checking this first means no loop or allocation
    // below is sized by a count the file cannot back.
    let min_kv = lw + 4 + 1;
    let min_ti = lw + 4 + 4 + 8;
    check_count("key/value", n_kv, at_kv, c.left(), min_kv)?;
    let kv_bytes_min = n_kv.saturating_mul(min_kv);
    check_count(
        "tensor info",
        n_tensors,
        at,
        c.left().saturating_sub(kv_bytes_min),
        min_ti,
    )?;

    let mut kvs = Vec::with_capacity(n_kv as usize);
    for _ in 0..n_kv {
        let offset = c.pos as u64;
        let key = c.string("key")?;
        let value = parse_value(&mut c, key)?;
        kvs.push(KeyValue { key, value, offset });
    }

    check_count("tensor info", n_tensors, at, c.left(), min_ti)?;
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let info_offset = c.pos as u64;
        let name = c.string(&format!("name of tensor #{i}"))?;
        let dims_at = c.pos as u64;
        let n_dims = c.u32("dimension count")?;
        if n_dims as usize > spec::MAX_DIMS {
            return Err(GgufError::BadDimCount {
                name: name.to_string(),
                n_dims,
                offset: dims_at,
            });
        }
        let mut dims = [1u64; spec::MAX_DIMS];
        for d in dims.iter_mut().take(n_dims as usize) {
            *d = c.len("dimension")?;
        }
        let type_id = c.u32("tensor type")?;
        let offset = c.u64("tensor offset")?;
        tensors.push(RawTensorInfo {
            name,
            n_dims,
            dims,
            type_id,
            offset,
            info_offset,
        });
    }

    Ok(RawHeader {
        version,
        endian,
        kvs,
        tensors,
        header_end: c.pos as u64,
    })
}

fn check_count(
    what: &'static str,
    count: u64,
    offset: u64,
    available: u64,
    min_each: u64,
) -> Result<()> {
    if count
        .checked_mul(min_each)
        .is_none_or(|need| need > available)
    {
        return Err(GgufError::CountTooLarge {
            what: what.to_string(),
            count,
            offset,
            available,
            min_each,
        });
    }
    Ok(())
}

fn parse_value<'a>(c: &mut Cursor<'a>, key: &str) -> Result<Value<'a>> {
    let at = c.pos as u64;
    let type_id = c.u32("value type")?;
    let ty = ValueType::try_from(type_id).map_err(|t| GgufError::BadValueType {
        key: key.to_string(),
        type_id: t,
        offset: at,
    })?;
    if let Some(size) = ty.fixed_size() {
        let b = c.bytes(&format!("value of '{key}'"), size as u64)?;
        let bits = read_uint(b, size, c.endian).expect("took exactly `size` bytes");
        return Ok(scalar_from_bits(ty, bits));
    }
    if ty == ValueType::String {
        return Ok(Value::String(c.string(&format!("value of '{key}'"))?));
    }
    // An array: element type, count, elements.
    let et_at = c.pos as u64;
    let et_id = c.u32("array element type")?;
    let elem_type = ValueType::try_from(et_id).map_err(|t| GgufError::BadValueType {
        key: key.to_string(),
        type_id: t,
        offset: et_at,
    })?;
    let len_at = c.pos as u64;
    let len = c.len("array length")?;
    let lw = if c.wide { 8 } else { 4 };
    check_array_len(key, len, len_at, c.left(), elem_type, lw as u64)?;
    let start = c.pos;
    let extent = array_extent(&c.buf[start..], elem_type, len, c.endian, lw, 1)
        .map_err(|e| e.into_error(key, start as u64))?;
    let raw = c.bytes("array", extent as u64)?;
    Ok(Value::Array(Array {
        elem_type,
        len,
        raw,
        offset: start as u64,
        endian: c.endian,
        wide: c.wide,
    }))
}

fn check_array_len(
    key: &str,
    len: u64,
    offset: u64,
    available: u64,
    elem_type: ValueType,
    lw: u64,
) -> Result<()> {
    let what = format!("array '{key}'");
    if len > MAX_ARRAY_ELEMENTS {
        return Err(GgufError::LengthOverLimit {
            what,
            len,
            offset,
            max: MAX_ARRAY_ELEMENTS,
        });
    }
    // A count, not a byte length: report it with the least each element needs, so a reader that
    // grows its buffer (verify's, the remote one) knows how many bytes the array can take.
    let min_each = min_elem_size(elem_type, lw);
    if len.saturating_mul(min_each) > available {
        return Err(GgufError::CountTooLarge {
            what,
            count: len,
            offset,
            available,
            min_each,
        });
    }
    Ok(())
}

/// Why an array's extent could not be determined, relative to the array's first element.
#[derive(Debug)]
pub(crate) enum ExtentError {
    /// At `rel`, a length or count runs past the end.
    Past {
        rel: u64,
        len: u64,
        available: u64,
    },
    TooDeep {
        rel: u64,
    },
    BadType {
        rel: u64,
        type_id: u32,
    },
    OverLimit {
        rel: u64,
        len: u64,
        max: u64,
    },
}

impl ExtentError {
    fn into_error(self, key: &str, base: u64) -> GgufError {
        let key = key.to_string();
        match self {
            ExtentError::Past {
                rel,
                len,
                available,
            } => GgufError::LengthPastEnd {
                what: format!("element of array '{key}'"),
                len,
                offset: base + rel,
                available,
            },
            ExtentError::TooDeep { rel } => GgufError::NestingTooDeep {
                key,
                offset: base + rel,
                max: MAX_ARRAY_DEPTH,
            },
            ExtentError::BadType { rel, type_id } => GgufError::BadValueType {
                key,
                type_id,
                offset: base + rel,
            },
            ExtentError::OverLimit { rel, len, max } => GgufError::LengthOverLimit {
                what: format!("element of array '{key}'"),
                len,
                offset: base + rel,
                max,
            },
        }
    }
}

/// Walks `n` elements of type `ty` at the start of `b` and returns how many bytes they take.
/// Fixed-size elements are a multiplication; strings and nested arrays are walked, each length
/// checked against what is left. Nesting is limited to [`MAX_ARRAY_DEPTH`].
pub(crate) fn array_extent(
    b: &[u8],
    ty: ValueType,
    n: u64,
    e: Endian,
    lw: usize,
    depth: usize,
) -> Result<usize, ExtentError> {
    let left = b.len() as u64;
    if let Some(size) = ty.fixed_size() {
        let total = n.checked_mul(size as u64).filter(|t| *t <= left);
        return total.map(|t| t as usize).ok_or(ExtentError::Past {
            rel: 0,
            len: n,
            available: left,
        });
    }
    if n.saturating_mul(min_elem_size(ty, lw as u64)) > left {
        return Err(ExtentError::Past {
            rel: 0,
            len: n,
            available: left,
        });
    }
    let mut pos = 0usize;
    match ty {
        ValueType::String => {
            for _ in 0..n {
                let len = read_uint(&b[pos..], lw, e).ok_or(ExtentError::Past {
                    rel: pos as u64,
                    len: lw as u64,
                    available: (b.len() - pos) as u64,
                })?;
                let avail = (b.len() - pos - lw) as u64;
                if len > MAX_STRING_LENGTH {
                    return Err(ExtentError::OverLimit {
                        rel: pos as u64,
                        len,
                        max: MAX_STRING_LENGTH,
                    });
                }
                if len > avail {
                    return Err(ExtentError::Past {
                        rel: pos as u64,
                        len,
                        available: avail,
                    });
                }
                pos += lw + len as usize;
            }
        }
        ValueType::Array => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(ExtentError::TooDeep { rel: 0 });
            }
            for _ in 0..n {
                let here = pos as u64;
                let short = || ExtentError::Past {
                    rel: here,
                    len: 4 + lw as u64,
                    available: (b.len() - pos) as u64,
                };
                let et_id = read_uint(&b[pos..], 4, e).ok_or_else(short)? as u32;
                let et = ValueType::try_from(et_id).map_err(|t| ExtentError::BadType {
                    rel: here,
                    type_id: t,
                })?;
                let len =
                    read_uint(b.get(pos + 4..).ok_or_else(short)?, lw, e).ok_or_else(short)?;
                if len > MAX_ARRAY_ELEMENTS {
                    return Err(ExtentError::OverLimit {
                        rel: here + 4,
                        len,
                        max: MAX_ARRAY_ELEMENTS,
                    });
                }
                pos += 4 + lw;
                let inner = array_extent(&b[pos..], et, len, e, lw, depth + 1)
                    .map_err(|err| err.shift(pos as u64))?;
                pos += inner;
            }
        }
        _ => unreachable!("fixed-size types handled above"),
    }
    Ok(pos)
}

impl ExtentError {
    fn shift(self, by: u64) -> ExtentError {
        match self {
            ExtentError::Past {
                rel,
                len,
                available,
            } => ExtentError::Past {
                rel: rel + by,
                len,
                available,
            },
            ExtentError::TooDeep { rel } => ExtentError::TooDeep { rel: rel + by },
            ExtentError::BadType { rel, type_id } => ExtentError::BadType {
                rel: rel + by,
                type_id,
            },
            ExtentError::OverLimit { rel, len, max } => ExtentError::OverLimit {
                rel: rel + by,
                len,
                max,
            },
        }
    }
}
