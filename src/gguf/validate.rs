//! The validation pass: judges a parsed header against everything llama.cpp's `gguf.cpp` rejects,
//! and more — every string UTF-8, no duplicate keys or tensor names, known type ids, shapes whose
//! element and byte counts do not overflow, rows of whole blocks, tensor data aligned, inside the
//! file and not overlapping. It turns a [`RawHeader`] into a [`Gguf`], whose accessors can then
//! trust what they read.

use std::collections::HashMap;

use super::error::{GgufError, Result};
use super::parse::{KeyValue, RawHeader};
use super::spec::{
    self, Endian, GgmlType, TypeIdError, ValueType, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAX_DIMS,
    MAX_NAME,
};
use super::value::{Array, Value};

/// A validated tensor info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo<'a> {
    pub name: &'a str,
    /// Shape in ggml order: `dims[0]` is the row length (`ne[0]`).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset relative to the data section, as stored in the file.
    pub offset: u64,
    /// Absolute offset of the data in the file.
    pub file_offset: u64,
    pub n_elements: u64,
    pub n_bytes: u64,
    /// Offset of the tensor info record in the file.
    pub info_offset: u64,
}

/// A validated GGUF file (or header) over borrowed bytes.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    /// The bytes the header was read from: the whole file, or for [`Gguf::parse_header_only`] a prefix.
    pub bytes: &'a [u8],
    pub version: u32,
    pub endian: Endian,
    pub alignment: u64,
    pub kvs: Vec<KeyValue<'a>>,
    pub tensors: Vec<TensorInfo<'a>>,
    /// End of the tensor infos, before padding.
    pub header_end: u64,
    /// Start of the data section (header end padded to the alignment).
    pub data_offset: u64,
    /// Size of the file the header belongs to.
    pub file_size: u64,
    tensor_index: HashMap<&'a str, usize>,
}

/// Rounds `x` up to a multiple of the power of two `align`; `None` on overflow.
pub fn pad(x: u64, align: u64) -> Option<u64> {
    Some(x.checked_add(align - 1)? & !(align - 1))
}

impl<'a> Gguf<'a> {
    /// Parses and validates a whole file held in memory (a mapped file or any byte slice).
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>> {
        let raw = super::parse::parse_header(bytes)?;
        validate(bytes, raw, bytes.len() as u64)
    }

    /// Parses a whole file and validates it leniently ([`validate_lenient`]): everything readable,
    /// and every problem llama.cpp's reader would refuse the file for. Fails only when the records
    /// themselves cannot be read.
    pub fn parse_lenient(bytes: &'a [u8]) -> Result<(Gguf<'a>, Vec<GgufError>)> {
        let raw = super::parse::parse_header(bytes)?;
        Ok(validate_lenient(bytes, raw, bytes.len() as u64))
    }

    /// Parses and validates the header from the first bytes of a file whose full size is `file_size`
    /// (for example a download in progress). Tensor data is not available from such a view.
    pub fn parse_header_only(prefix: &'a [u8], file_size: u64) -> Result<Gguf<'a>> {
        let raw = super::parse::parse_header(prefix)?;
        validate(prefix, raw, file_size)
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.kvs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
    }

    pub fn get_str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(|v| v.as_str())
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.as_u64())
    }

    pub fn architecture(&self) -> Option<&'a str> {
        self.get_str(spec::KEY_ARCHITECTURE)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor's data, borrowed from the file. `None` if this view holds only the header.
    pub fn tensor_data(&self, t: &TensorInfo<'_>) -> Option<&'a [u8]> {
        let start = usize::try_from(t.file_offset).ok()?;
        let end = usize::try_from(t.file_offset + t.n_bytes).ok()?;
        self.bytes.get(start..end)
    }

    /// Total bytes of tensor data (without padding).
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_bytes).sum()
    }

    pub fn n_params(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements).sum()
    }

    /// End of the last tensor's data including its padding (where a canonical writer stops).
    pub fn data_end(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| pad(t.file_offset + t.n_bytes, self.alignment).unwrap_or(u64::MAX))
            .max()
            .unwrap_or(self.data_offset)
    }
}

/// Where validation problems go: returned at once (strict, the reader's rule), or collected while
/// validation goes on with a stand-in so that everything readable is still shown (lenient, what
/// `pocket inspect` uses to show a file llama.cpp would refuse).
struct Sink {
    strict: bool,
    problems: Vec<GgufError>,
}

impl Sink {
    fn report(&mut self, e: GgufError) -> Result<()> {
        if self.strict {
            return Err(e);
        }
        self.problems.push(e);
        Ok(())
    }
}

/// Runs every check on a parsed header. `file_size` is the size of the whole file; `bytes` may be
/// shorter when only the header was read.
pub fn validate<'a>(bytes: &'a [u8], raw: RawHeader<'a>, file_size: u64) -> Result<Gguf<'a>> {
    let mut sink = Sink {
        strict: true,
        problems: Vec::new(),
    };
    checked(bytes, raw, file_size, &mut sink)
}

/// Runs every check but keeps going: the view of everything that could be read (tensors whose own
/// record is unusable are left out; a bad alignment is taken as the default), and every problem
/// found, in file order within each pass. No problems means the file is what [`validate`] accepts.
pub fn validate_lenient<'a>(
    bytes: &'a [u8],
    raw: RawHeader<'a>,
    file_size: u64,
) -> (Gguf<'a>, Vec<GgufError>) {
    let mut sink = Sink {
        strict: false,
        problems: Vec::new(),
    };
    let g = checked(bytes, raw, file_size, &mut sink)
        .expect("a lenient sink reports every problem instead of failing");
    (g, sink.problems)
}

fn checked<'a>(
    bytes: &'a [u8],
    raw: RawHeader<'a>,
    file_size: u64,
    sink: &mut Sink,
) -> Result<Gguf<'a>> {
    let lw = if raw.version >= 2 { 8 } else { 4 };

    // ---- metadata
    let mut seen: HashMap<&str, u64> = HashMap::with_capacity(raw.kvs.len());
    for (i, kv) in raw.kvs.iter().enumerate() {
        if kv.key.is_empty() {
            sink.report(GgufError::EmptyKey {
                index: i as u64,
                offset: kv.offset,
            })?;
        }
        if let Some(&first) = seen.get(kv.key) {
            sink.report(GgufError::DuplicateKey {
                key: kv.key.to_string(),
                offset: kv.offset,
                first,
            })?;
        } else {
            seen.insert(kv.key, kv.offset);
        }
        if let Value::Array(a) = &kv.value {
            if let Err(e) = check_array_utf8(kv.key, a, lw) {
                sink.report(e)?;
            }
        }
    }
    let alignment = match raw.kvs.iter().find(|kv| kv.key == KEY_ALIGNMENT) {
        None => DEFAULT_ALIGNMENT,
        Some(kv) => match kv.value {
            Value::U32(a) if a != 0 && a.is_power_of_two() => a as u64,
            Value::U32(a) => {
                sink.report(GgufError::BadAlignment {
                    value: a as u64,
                    offset: kv.offset,
                })?;
                DEFAULT_ALIGNMENT
            }
            other => {
                sink.report(GgufError::WrongKeyType {
                    key: KEY_ALIGNMENT.to_string(),
                    offset: kv.offset,
                    expected: ValueType::U32.name(),
                    found: other.value_type().name(),
                })?;
                DEFAULT_ALIGNMENT
            }
        },
    };

    // ---- tensor infos
    let mut tensor_index: HashMap<&str, usize> = HashMap::with_capacity(raw.tensors.len());
    let mut infos: Vec<TensorInfo<'a>> = Vec::with_capacity(raw.tensors.len());
    for (i, t) in raw.tensors.iter().enumerate() {
        match tensor_info(i, t, alignment, &tensor_index, &infos) {
            Ok(info) => {
                tensor_index.insert(info.name, infos.len());
                infos.push(info);
            }
            Err(e) => sink.report(e)?,
        }
    }

    // ---- layout
    let data_offset = pad(raw.header_end, alignment).unwrap_or(u64::MAX);
    if !infos.is_empty() && data_offset > file_size {
        sink.report(GgufError::DataSectionPastEnd {
            data_offset,
            file_size,
        })?;
    }
    for t in infos.iter_mut() {
        if t.offset % alignment != 0 {
            sink.report(GgufError::Misaligned {
                name: t.name.to_string(),
                offset: t.offset,
                info_offset: t.info_offset,
                alignment,
            })?;
        }
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes));
        match (start, end) {
            (Some(start), Some(end)) if end <= file_size => t.file_offset = start,
            _ => {
                let start = start.unwrap_or(u64::MAX);
                let end = end.unwrap_or(u64::MAX);
                // Shown where it claims to be; its data is out of reach (`tensor_data` is None).
                t.file_offset = start;
                sink.report(GgufError::TensorPastEnd {
                    name: t.name.to_string(),
                    start,
                    end,
                    file_size,
                    missing: end.saturating_sub(file_size),
                })?;
            }
        }
    }
    let mut by_offset: Vec<&TensorInfo> = infos.iter().collect();
    by_offset.sort_by_key(|t| (t.file_offset, t.info_offset));
    for w in by_offset.windows(2) {
        if w[1].file_offset < w[0].file_offset.saturating_add(w[0].n_bytes) {
            sink.report(GgufError::Overlap {
                name: w[1].name.to_string(),
                other: w[0].name.to_string(),
                start: w[1].file_offset,
                end: w[1].file_offset.saturating_add(w[1].n_bytes),
            })?;
        }
    }
    // llama.cpp requires each tensor to start where the previous one's padded data ends.
    let mut expected = 0u64;
    for t in &infos {
        if t.offset != expected {
            sink.report(GgufError::UnexpectedOffset {
                name: t.name.to_string(),
                offset: t.offset,
                expected,
            })?;
            expected = t.offset;
        }
        expected = pad(t.n_bytes, alignment)
            .and_then(|p| expected.checked_add(p))
            .unwrap_or(u64::MAX);
    }

    Ok(Gguf {
        bytes,
        version: raw.version,
        endian: raw.endian,
        alignment,
        kvs: raw.kvs,
        tensors: infos,
        header_end: raw.header_end,
        data_offset,
        file_size,
        tensor_index,
    })
}

/// One tensor info record judged on its own (and against the names before it).
fn tensor_info<'a>(
    i: usize,
    t: &super::parse::RawTensorInfo<'a>,
    alignment: u64,
    tensor_index: &HashMap<&str, usize>,
    infos: &[TensorInfo<'a>],
) -> Result<TensorInfo<'a>> {
    let name = t.name;
    let at = t.info_offset;
    if name.len() >= MAX_NAME {
        return Err(GgufError::TensorNameTooLong {
            index: i as u64,
            name: name.to_string(),
            len: name.len(),
            offset: at,
            max: MAX_NAME,
        });
    }
    if let Some(&j) = tensor_index.get(name) {
        return Err(GgufError::DuplicateTensor {
            name: name.to_string(),
            offset: at,
            first: infos[j].info_offset,
        });
    }
    let n_dims = t.n_dims as usize;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::BadDimCount {
            name: name.to_string(),
            n_dims: t.n_dims,
            offset: at,
        });
    }
    let dims = t.dims[..n_dims].to_vec();
    for (d, &v) in dims.iter().enumerate() {
        if v == 0 || v > i64::MAX as u64 {
            return Err(GgufError::BadDim {
                name: name.to_string(),
                dim: d,
                value: v,
                offset: at,
            });
        }
    }
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| {
            acc.checked_mul(d).filter(|n| *n <= i64::MAX as u64)
        })
        .ok_or_else(|| GgufError::ElementOverflow {
            name: name.to_string(),
            shape: dims.clone(),
            offset: at,
        })?;
    let ty = spec::ggml_type(t.type_id).map_err(|e| match e {
        TypeIdError::Unknown { id } => GgufError::UnknownType {
            name: name.to_string(),
            type_id: id,
            offset: at,
        },
        TypeIdError::Removed { id, name: what } => GgufError::RemovedType {
            name: name.to_string(),
            type_id: id,
            what,
            offset: at,
        },
    })?;
    if !dims[0].is_multiple_of(ty.block_size) {
        return Err(GgufError::PartialBlock {
            name: name.to_string(),
            ne0: dims[0],
            type_name: ty.name,
            block_size: ty.block_size,
            offset: at,
        });
    }
    let n_bytes = ty
        .bytes_for(n_elements)
        .filter(|b| pad(*b, alignment).is_some())
        .ok_or_else(|| GgufError::ElementOverflow {
            name: name.to_string(),
            shape: dims.clone(),
            offset: at,
        })?;
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset: t.offset,
        file_offset: 0,
        n_elements,
        n_bytes,
        info_offset: at,
    })
}

/// Checks that every string inside an array (at any depth) is UTF-8.
fn check_array_utf8(key: &str, a: &Array<'_>, lw: usize) -> Result<()> {
    match a.elem_type {
        ValueType::String => {
            let mut pos = 0usize;
            for _ in 0..a.len {
                // The parser walked these lengths already; they are in bounds.
                let n = super::value::read_uint(&a.raw[pos..], lw, a.endian).unwrap_or(0) as usize;
                let s = &a.raw[pos + lw..pos + lw + n];
                if let Err(e) = std::str::from_utf8(s) {
                    let offset = a.offset + (pos + lw + e.valid_up_to()) as u64;
                    return Err(GgufError::InvalidUtf8 {
                        what: format!("string in array '{key}'"),
                        offset,
                    });
                }
                pos += lw + n;
            }
            Ok(())
        }
        ValueType::Array => {
            for v in a.iter() {
                if let Value::Array(inner) = v {
                    check_array_utf8(key, &inner, lw)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
