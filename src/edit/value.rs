//! Metadata values given by a person (a command-line string) or a program (JSON), parsed for one of
//! the 13 GGUF value types with range checks, and encoded in a file's byte order. A [`NewValue`] owns
//! its data; [`NewValue::as_value`] lends it to the writer as a [`Value`].

use serde_json::Value as J;

use super::{EditError, Result};
use crate::gguf::spec::{Endian, ValueType};
use crate::gguf::write::array_from_encoded;
use crate::gguf::Value;

/// A value to write.
#[derive(Debug, Clone, PartialEq)]
pub enum NewValue {
    /// Any scalar but a string.
    Scalar(Value<'static>),
    Str(String),
    Array {
        elem: ValueType,
        items: Vec<NewValue>,
    },
}

/// A type asked for: a scalar type, or an array with (or without) its element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeSpec {
    Scalar(ValueType),
    Array(Option<ValueType>),
}

impl TypeSpec {
    /// `u32`, `UINT32`, `str`, `string`, `array`, `array[string]`, `ARRAY[FLOAT32]`...
    pub fn parse(s: &str) -> Option<TypeSpec> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        if let Some(rest) = lower
            .strip_prefix("array[")
            .or_else(|| lower.strip_prefix("arr["))
        {
            let inner = rest.strip_suffix(']')?;
            return Some(TypeSpec::Array(Some(ValueType::from_name(inner).or(
                match inner {
                    "string" => Some(ValueType::String),
                    _ => None,
                },
            )?)));
        }
        match lower.as_str() {
            "string" => Some(TypeSpec::Scalar(ValueType::String)),
            "array" | "arr" => Some(TypeSpec::Array(None)),
            _ => ValueType::from_name(t).map(TypeSpec::Scalar),
        }
    }

    /// The type of an existing value.
    pub fn of(v: &Value<'_>) -> TypeSpec {
        match v {
            Value::Array(a) => TypeSpec::Array(Some(a.elem_type)),
            other => TypeSpec::Scalar(other.value_type()),
        }
    }
}

fn bad(key: &str, message: impl Into<String>) -> EditError {
    EditError::BadValue {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Parses a scalar typed as text: integers in range, floats (`nan`, `inf` too), `true`/`false`/`1`/`0`.
pub fn parse_scalar_text(key: &str, text: &str, ty: ValueType) -> Result<NewValue> {
    let t = text.trim();
    // Rust's parse errors ("invalid digit found in string") say nothing of the type's range.
    macro_rules! int {
        ($t:ty, $v:ident) => {
            t.parse::<$t>()
                .map(|x| NewValue::Scalar(Value::$v(x)))
                .map_err(|_| {
                    let why = if t.parse::<i128>().is_ok() {
                        format!("out of range ({} to {})", <$t>::MIN, <$t>::MAX)
                    } else {
                        "not a whole number".to_string()
                    };
                    bad(key, format!("'{text}' is not a {}: {why}", ty.short_name()))
                })
        };
    }
    macro_rules! float {
        ($t:ty, $v:ident) => {
            t.parse::<$t>()
                .map(|x| NewValue::Scalar(Value::$v(x)))
                .map_err(|e| bad(key, format!("'{text}' is not a {}: {e}", ty.short_name())))
        };
    }
    match ty {
        ValueType::U8 => int!(u8, U8),
        ValueType::I8 => int!(i8, I8),
        ValueType::U16 => int!(u16, U16),
        ValueType::I16 => int!(i16, I16),
        ValueType::U32 => int!(u32, U32),
        ValueType::I32 => int!(i32, I32),
        ValueType::U64 => int!(u64, U64),
        ValueType::I64 => int!(i64, I64),
        ValueType::F32 => float!(f32, F32),
        ValueType::F64 => float!(f64, F64),
        ValueType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(NewValue::Scalar(Value::Bool(true))),
            "false" | "0" => Ok(NewValue::Scalar(Value::Bool(false))),
            _ => Err(bad(key, format!("'{text}' is not a bool (true/false/1/0)"))),
        },
        // Strings are taken exactly as given, untrimmed.
        ValueType::String => Ok(NewValue::Str(text.to_string())),
        ValueType::Array => Err(bad(key, "an array is given as JSON")),
    }
}

/// Parses a command-line value of type `ty`: scalars as text, arrays as JSON.
pub fn parse_text(key: &str, text: &str, ty: TypeSpec) -> Result<NewValue> {
    match ty {
        TypeSpec::Scalar(t) => parse_scalar_text(key, text, t),
        TypeSpec::Array(_) => {
            let j: J = serde_json::from_str(text)
                .map_err(|e| bad(key, format!("array value is not JSON: {e}")))?;
            from_json(key, &j, Some(ty))
        }
    }
}

/// A JSON value as GGUF, of type `ty`, or inferred as gguf-py infers Python values (integer → INT32,
/// or INT64/UINT64 when out of range; number → FLOAT32; bool, string, list → ARRAY).
pub fn from_json(key: &str, j: &J, ty: Option<TypeSpec>) -> Result<NewValue> {
    let ty = match ty {
        Some(t) => t,
        None => infer(key, j)?,
    };
    match ty {
        TypeSpec::Array(elem) => {
            let items = j
                .as_array()
                .ok_or_else(|| bad(key, format!("expected a JSON array, got {j}")))?;
            let elem = match elem {
                Some(e) => e,
                None => match items.first() {
                    Some(first) => match infer(key, first)? {
                        TypeSpec::Scalar(t) => t,
                        TypeSpec::Array(_) => ValueType::Array,
                    },
                    None => return Err(bad(key, "empty array: give its type as array[TYPE]")),
                },
            };
            let items = items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let k = format!("{key}[{i}]");
                    let t = if elem == ValueType::Array {
                        if !x.is_array() {
                            return Err(bad(&k, format!("expected an array, got {x}")));
                        }
                        None
                    } else {
                        Some(TypeSpec::Scalar(elem))
                    };
                    from_json(&k, x, t)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(NewValue::Array { elem, items })
        }
        TypeSpec::Scalar(t) => scalar_from_json(key, j, t),
    }
}

fn infer(key: &str, j: &J) -> Result<TypeSpec> {
    Ok(match j {
        J::Bool(_) => TypeSpec::Scalar(ValueType::Bool),
        J::String(_) => TypeSpec::Scalar(ValueType::String),
        J::Array(_) => TypeSpec::Array(None),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i32::try_from(i).is_ok() {
                    TypeSpec::Scalar(ValueType::I32)
                } else {
                    TypeSpec::Scalar(ValueType::I64)
                }
            } else if n.as_u64().is_some() {
                TypeSpec::Scalar(ValueType::U64)
            } else {
                TypeSpec::Scalar(ValueType::F32)
            }
        }
        J::Null | J::Object(_) => {
            return Err(bad(key, format!("{j} has no GGUF type; give one")));
        }
    })
}

fn scalar_from_json(key: &str, j: &J, ty: ValueType) -> Result<NewValue> {
    let wrong = || bad(key, format!("{j} is not a {}", ty.short_name()));
    macro_rules! int {
        ($t:ty, $v:ident) => {{
            let x = j
                .as_i64()
                .and_then(|x| <$t>::try_from(x).ok())
                .or_else(|| j.as_u64().and_then(|x| <$t>::try_from(x).ok()))
                .ok_or_else(wrong)?;
            Ok(NewValue::Scalar(Value::$v(x)))
        }};
    }
    match ty {
        ValueType::U8 => int!(u8, U8),
        ValueType::I8 => int!(i8, I8),
        ValueType::U16 => int!(u16, U16),
        ValueType::I16 => int!(i16, I16),
        ValueType::U32 => int!(u32, U32),
        ValueType::I32 => int!(i32, I32),
        ValueType::U64 => int!(u64, U64),
        ValueType::I64 => int!(i64, I64),
        ValueType::F32 => Ok(NewValue::Scalar(Value::F32(
            j.as_f64().ok_or_else(wrong)? as f32
        ))),
        ValueType::F64 => Ok(NewValue::Scalar(Value::F64(j.as_f64().ok_or_else(wrong)?))),
        ValueType::Bool => Ok(NewValue::Scalar(Value::Bool(
            j.as_bool().ok_or_else(wrong)?,
        ))),
        ValueType::String => Ok(NewValue::Str(j.as_str().ok_or_else(wrong)?.to_string())),
        ValueType::Array => from_json(key, j, Some(TypeSpec::Array(None))),
    }
}

impl NewValue {
    pub fn value_type(&self) -> ValueType {
        match self {
            NewValue::Scalar(v) => v.value_type(),
            NewValue::Str(_) => ValueType::String,
            NewValue::Array { .. } => ValueType::Array,
        }
    }

    /// The bytes backing an array's elements in byte order `e` (empty for scalars and strings).
    pub fn encode(&self, e: Endian) -> Vec<u8> {
        let mut out = Vec::new();
        if let NewValue::Array { items, .. } = self {
            for it in items {
                put(&mut out, it, e);
            }
        }
        out
    }

    /// The value as the writer takes it; `raw` must be [`NewValue::encode`]'s bytes for the same `e`.
    pub fn as_value<'b>(&'b self, raw: &'b [u8], e: Endian) -> Value<'b> {
        match self {
            NewValue::Scalar(v) => *v,
            NewValue::Str(s) => Value::String(s),
            NewValue::Array { elem, items } => {
                Value::Array(array_from_encoded(*elem, items.len() as u64, raw, e))
            }
        }
    }
}

fn uint(out: &mut Vec<u8>, v: u64, width: usize, e: Endian) {
    match e {
        Endian::Little => out.extend_from_slice(&v.to_le_bytes()[..width]),
        Endian::Big => out.extend_from_slice(&v.to_be_bytes()[8 - width..]),
    }
}

fn put(out: &mut Vec<u8>, v: &NewValue, e: Endian) {
    match v {
        NewValue::Scalar(s) => {
            let w = s.value_type().fixed_size().expect("scalar");
            let bits = match *s {
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
                Value::String(_) | Value::Array(_) => unreachable!("not a scalar"),
            };
            uint(out, bits, w, e);
        }
        NewValue::Str(s) => {
            uint(out, s.len() as u64, 8, e);
            out.extend_from_slice(s.as_bytes());
        }
        NewValue::Array { elem, items } => {
            uint(out, *elem as u64, 4, e);
            uint(out, items.len() as u64, 8, e);
            for it in items {
                put(out, it, e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scalar_type_parses_and_checks_its_range() {
        for (t, ok, bad_) in [
            ("u8", "255", "256"),
            ("i8", "-128", "128"),
            ("u16", "65535", "-1"),
            ("i16", "-32768", "32768"),
            ("u32", "4294967295", "4294967296"),
            ("i32", "-2147483648", "2147483648"),
            ("u64", "18446744073709551615", "-1"),
            ("i64", "-9223372036854775808", "9223372036854775808"),
            ("f32", "1.5", "x"),
            ("f64", "-2.25e10", "1..2"),
            ("bool", "true", "yes"),
        ] {
            let TypeSpec::Scalar(ty) = TypeSpec::parse(t).unwrap() else {
                panic!("{t}")
            };
            let v = parse_scalar_text("k", ok, ty).unwrap();
            assert_eq!(v.value_type(), ty, "{t}");
            assert!(parse_scalar_text("k", bad_, ty).is_err(), "{t} {bad_}");
        }
        assert_eq!(
            parse_scalar_text("k", " a b ", ValueType::String).unwrap(),
            NewValue::Str(" a b ".into())
        );
    }

    #[test]
    fn arrays_come_from_json_typed_or_inferred() {
        let v = parse_text("k", "[1, 2, 3]", TypeSpec::parse("array[u8]").unwrap()).unwrap();
        let a = v.encode(Endian::Little);
        assert_eq!(a, [1, 2, 3]);
        let Value::Array(arr) = v.as_value(&a, Endian::Little) else {
            panic!()
        };
        assert_eq!(arr.elem_type, ValueType::U8);
        assert_eq!(arr.iter().map(|x| x.as_u64().unwrap()).sum::<u64>(), 6);
        assert!(parse_text("k", "[1, 300]", TypeSpec::parse("array[u8]").unwrap()).is_err());
        let v = from_json("k", &serde_json::json!([["a"], ["b", "c"]]), None).unwrap();
        let raw = v.encode(Endian::Big);
        let Value::Array(arr) = v.as_value(&raw, Endian::Big) else {
            panic!()
        };
        let inner: Vec<Vec<String>> = arr
            .iter()
            .map(|x| x.as_array().unwrap().strings().map(String::from).collect())
            .collect();
        assert_eq!(inner, vec![vec!["a"], vec!["b", "c"]]);
        assert!(from_json("k", &serde_json::json!([]), None).is_err());
        assert_eq!(
            TypeSpec::parse("ARRAY[STRING]"),
            Some(TypeSpec::Array(Some(ValueType::String)))
        );
    }
}
