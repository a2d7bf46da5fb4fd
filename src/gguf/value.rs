//! Metadata values as they sit in the file. Scalars are decoded; strings borrow from the file; arrays
//! keep their raw bytes and decode elements on demand, so a 262,144-entry vocabulary costs nothing
//! until somebody looks at it. By the time a caller holds a [`Value`] from a validated file, every
//! string in it (arrays included) is known to be UTF-8.

use super::spec::{Endian, ValueType};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(&'a str),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(Array<'a>),
}

/// An array value: element type, count and the raw bytes of the elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Array<'a> {
    pub elem_type: ValueType,
    pub len: u64,
    /// The elements' bytes exactly as stored (after the type and count).
    pub raw: &'a [u8],
    /// Offset of `raw` in the file.
    pub offset: u64,
    pub(crate) endian: Endian,
    /// GGUF v1 stores string and array lengths as u32, later versions as u64.
    pub(crate) wide: bool,
}

impl<'a> Value<'a> {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
            Value::Array(_) => ValueType::Array,
        }
    }

    /// Any integer (or bool) that is non-negative, as u64.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            Value::Bool(b) => Some(b as u64),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v as i64),
            Value::I16(v) => Some(v as i64),
            Value::I32(v) => Some(v as i64),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// Any number, as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self
                .as_i64()
                .map(|v| v as f64)
                .or_else(|| self.as_u64().map(|v| v as f64)),
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array<'a>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl<'a> Array<'a> {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements, decoded one by one.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            arr: *self,
            pos: 0,
            left: self.len,
        }
    }

    /// The string elements, for arrays of strings (empty for any other type).
    pub fn strings(&self) -> impl Iterator<Item = &'a str> + 'a {
        let is_str = self.elem_type == ValueType::String;
        self.iter()
            .filter_map(move |v| if is_str { v.as_str() } else { None })
    }

    pub(crate) fn len_width(&self) -> usize {
        if self.wide {
            8
        } else {
            4
        }
    }
}

/// Decodes array elements in order. The bytes were walked and bounds-checked while parsing, so the
/// reads here cannot go past `raw`; a malformed array (only possible if built by hand) ends early.
pub struct ArrayIter<'a> {
    arr: Array<'a>,
    pos: usize,
    left: u64,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let raw = self.arr.raw;
        let e = self.arr.endian;
        let w = self.arr.len_width();
        let (v, used) = decode_element(
            raw.get(self.pos..)?,
            self.arr.elem_type,
            e,
            w,
            self.arr.offset + self.pos as u64,
        )?;
        self.pos += used;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

pub(crate) fn read_uint(b: &[u8], width: usize, e: Endian) -> Option<u64> {
    let b = b.get(..width)?;
    Some(match (width, e) {
        (1, _) => b[0] as u64,
        (2, Endian::Little) => u16::from_le_bytes([b[0], b[1]]) as u64,
        (2, Endian::Big) => u16::from_be_bytes([b[0], b[1]]) as u64,
        (4, Endian::Little) => u32::from_le_bytes(b.try_into().ok()?) as u64,
        (4, Endian::Big) => u32::from_be_bytes(b.try_into().ok()?) as u64,
        (8, Endian::Little) => u64::from_le_bytes(b.try_into().ok()?),
        (8, Endian::Big) => u64::from_be_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// Decodes one element at the start of `b`, returning it and its size in bytes.
fn decode_element<'a>(
    b: &'a [u8],
    ty: ValueType,
    e: Endian,
    lw: usize,
    offset: u64,
) -> Option<(Value<'a>, usize)> {
    if let Some(size) = ty.fixed_size() {
        let bits = read_uint(b, size, e)?;
        return Some((scalar_from_bits(ty, bits), size));
    }
    match ty {
        ValueType::String => {
            let n = usize::try_from(read_uint(b, lw, e)?).ok()?;
            let s = b.get(lw..lw.checked_add(n)?)?;
            // Validation has checked UTF-8; the fallback only serves arrays built by hand.
            let s = std::str::from_utf8(s).unwrap_or("\u{fffd}");
            Some((Value::String(s), lw + n))
        }
        ValueType::Array => {
            let et = ValueType::try_from(read_uint(b, 4, e)? as u32).ok()?;
            let n = read_uint(b.get(4..)?, lw, e)?;
            let head = 4 + lw;
            let extent = super::parse::array_extent(b.get(head..)?, et, n, e, lw, 1).ok()?;
            let raw = b.get(head..head + extent)?;
            let arr = Array {
                elem_type: et,
                len: n,
                raw,
                offset: offset + head as u64,
                endian: e,
                wide: lw == 8,
            };
            Some((Value::Array(arr), head + extent))
        }
        _ => None,
    }
}

/// Builds a scalar from its bits (already in host order).
pub(crate) fn scalar_from_bits<'a>(ty: ValueType, bits: u64) -> Value<'a> {
    match ty {
        ValueType::U8 => Value::U8(bits as u8),
        ValueType::I8 => Value::I8(bits as u8 as i8),
        ValueType::U16 => Value::U16(bits as u16),
        ValueType::I16 => Value::I16(bits as u16 as i16),
        ValueType::U32 => Value::U32(bits as u32),
        ValueType::I32 => Value::I32(bits as u32 as i32),
        ValueType::F32 => Value::F32(f32::from_bits(bits as u32)),
        ValueType::Bool => Value::Bool(bits != 0),
        ValueType::U64 => Value::U64(bits),
        ValueType::I64 => Value::I64(bits as i64),
        ValueType::F64 => Value::F64(f64::from_bits(bits)),
        ValueType::String | ValueType::Array => unreachable!("not a scalar type"),
    }
}

/// The bits of a scalar (inverse of [`scalar_from_bits`]); `None` for strings and arrays.
pub(crate) fn scalar_bits(v: &Value<'_>) -> Option<u64> {
    Some(match *v {
        Value::U8(x) => x as u64,
        Value::I8(x) => x as u8 as u64,
        Value::U16(x) => x as u64,
        Value::I16(x) => x as u16 as u64,
        Value::U32(x) => x as u64,
        Value::I32(x) => x as u32 as u64,
        Value::F32(x) => x.to_bits() as u64,
        Value::Bool(x) => x as u64,
        Value::U64(x) => x,
        Value::I64(x) => x as u64,
        Value::F64(x) => x.to_bits(),
        Value::String(_) | Value::Array(_) => return None,
    })
}
