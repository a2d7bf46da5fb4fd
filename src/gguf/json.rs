//! Metadata values as JSON, for `--json` output. Numbers keep their exact value (u64 and i64 stay
//! integers; an f32 is written as its shortest round-trip decimal, 0.95 rather than the f64 widening
//! 0.949999988079071, and reads back as the same f32); non-finite floats, which JSON cannot carry,
//! become null.

use serde_json::{json, Number, Value as J};

use super::spec::ValueType;
use super::value::Value;

/// The value as plain JSON: a number, bool, string or (nested) array.
pub fn value_to_json(v: &Value<'_>) -> J {
    match *v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F32(x) => float(shortest_f32(x)),
        Value::F64(x) => float(x),
        Value::Bool(b) => J::Bool(b),
        Value::String(s) => J::String(s.to_string()),
        Value::Array(a) => J::Array(a.iter().map(|e| value_to_json(&e)).collect()),
    }
}

/// The f64 nearest the shortest decimal that reads back as `x` (Rust's `Display` for f32 is that
/// decimal).
fn shortest_f32(x: f32) -> f64 {
    if !x.is_finite() {
        return x as f64;
    }
    x.to_string().parse().unwrap_or(x as f64)
}

fn float(x: f64) -> J {
    Number::from_f64(x).map(J::Number).unwrap_or(J::Null)
}

/// The type as a string: `UINT32`, or `ARRAY[STRING]`, `ARRAY[ARRAY]` for arrays.
pub fn type_string(v: &Value<'_>) -> String {
    match v {
        Value::Array(a) => format!("{}[{}]", ValueType::Array.name(), a.elem_type.name()),
        other => other.value_type().name().to_string(),
    }
}
