//! Comparing two models: header fields, metadata keys added, removed or changed (compared by type and
//! value, floats by their bits, arrays element by element), tensors added or removed, type and shape
//! changes, and for tensors in both with the same shape whether the bytes are equal and, if not, how
//! far apart the values are after dequantization (RMSE and largest absolute difference). Big-endian
//! data is swapped to little-endian (field by field) before it is decoded.

use serde_json::Value as J;

use super::convert::{swap_blocks, swap_words};
use crate::gguf::json::{type_string, value_to_json};
use crate::gguf::spec::Endian;
use crate::gguf::{GgmlType, Gguf, TensorInfo, Value};
use crate::quant::dequantize_row;

/// A key present in one model or both.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyChange {
    pub key: String,
    /// `added` (only in B), `removed` (only in A) or `changed`.
    pub change: &'static str,
    pub a_type: Option<String>,
    pub a: Option<J>,
    pub b_type: Option<String>,
    pub b: Option<J>,
}

/// A tensor present in one model or both, when anything about it differs.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorChange {
    pub name: String,
    /// `added`, `removed`, `shape`, `type` (same shape, other type) or `data` (same type and shape).
    pub change: &'static str,
    pub a_type: Option<String>,
    pub b_type: Option<String>,
    pub a_shape: Option<Vec<u64>>,
    pub b_shape: Option<Vec<u64>>,
    /// Root-mean-square and largest absolute difference of the dequantized values, when both types
    /// can be decoded and the shapes agree.
    pub rmse: Option<f64>,
    pub max_abs: Option<f64>,
    /// Why no numbers were computed, when they were not.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diff {
    /// Header fields that differ: (`version` | `endianness` | `alignment`, A, B).
    pub header: Vec<(&'static str, String, String)>,
    pub keys: Vec<KeyChange>,
    pub tensors: Vec<TensorChange>,
    pub keys_same: usize,
    pub tensors_same: usize,
}

impl Diff {
    pub fn identical(&self) -> bool {
        self.header.is_empty() && self.keys.is_empty() && self.tensors.is_empty()
    }
}

/// Whether two values are the same: same type, floats bit for bit, arrays element by element.
pub fn values_equal(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.elem_type == y.elem_type
                && x.len == y.len
                && x.iter().zip(y.iter()).all(|(p, q)| values_equal(&p, &q))
        }
        _ => a == b,
    }
}

/// A header's keys in name order, for lookups by name; of a key given twice, the first (as
/// [`Gguf::get`] finds it).
struct KeyIndex<'g, 'a> {
    g: &'g Gguf<'a>,
    sorted: Vec<u32>,
}

impl<'g, 'a> KeyIndex<'g, 'a> {
    fn new(g: &'g Gguf<'a>) -> Self {
        // A header's key count is bounded by its bytes (at least 13 bytes a key), far below 2^32.
        let mut sorted: Vec<u32> = (0..g.kvs.len() as u32).collect();
        sorted.sort_by(|&x, &y| g.kvs[x as usize].key.cmp(g.kvs[y as usize].key));
        KeyIndex { g, sorted }
    }

    fn get(&self, key: &str) -> Option<&'g Value<'a>> {
        let kvs = &self.g.kvs;
        let i = self.sorted.partition_point(|&j| kvs[j as usize].key < key);
        let kv = &kvs[*self.sorted.get(i)? as usize];
        (kv.key == key).then_some(&kv.value)
    }
}

/// Compares model A (its shards) with model B. Keys come from the first shard, tensors from all.
pub fn diff(a: &[Gguf<'_>], b: &[Gguf<'_>]) -> Diff {
    let mut d = Diff::default();
    let (ha, hb) = (&a[0], &b[0]);
    if ha.version != hb.version {
        d.header
            .push(("version", ha.version.to_string(), hb.version.to_string()));
    }
    if ha.endian != hb.endian {
        d.header.push((
            "endianness",
            ha.endian.name().into(),
            hb.endian.name().into(),
        ));
    }
    if ha.alignment != hb.alignment {
        d.header.push((
            "alignment",
            ha.alignment.to_string(),
            hb.alignment.to_string(),
        ));
    }
    // Keys are looked up in the other model by binary search over its keys sorted by name (4 bytes
    // a key), not by a scan per key: a header of 200,000 keys took many minutes (issue #27).
    let (ia, ib) = (KeyIndex::new(ha), KeyIndex::new(hb));
    for kv in &ha.kvs {
        match ib.get(kv.key) {
            None => d.keys.push(KeyChange {
                key: kv.key.into(),
                change: "removed",
                a_type: Some(type_string(&kv.value)),
                a: Some(value_to_json(&kv.value)),
                b_type: None,
                b: None,
            }),
            Some(v) if !values_equal(&kv.value, v) => d.keys.push(KeyChange {
                key: kv.key.into(),
                change: "changed",
                a_type: Some(type_string(&kv.value)),
                a: Some(value_to_json(&kv.value)),
                b_type: Some(type_string(v)),
                b: Some(value_to_json(v)),
            }),
            Some(_) => d.keys_same += 1,
        }
    }
    for kv in &hb.kvs {
        if ia.get(kv.key).is_none() {
            d.keys.push(KeyChange {
                key: kv.key.into(),
                change: "added",
                a_type: None,
                a: None,
                b_type: Some(type_string(&kv.value)),
                b: Some(value_to_json(&kv.value)),
            });
        }
    }
    let find = |m: &[Gguf<'_>], name: &str| -> Option<usize> {
        m.iter().position(|g| g.tensor(name).is_some())
    };
    for (sa, ga) in a.iter().enumerate() {
        for ta in &ga.tensors {
            let Some(sb) = find(b, ta.name) else {
                d.tensors.push(one_sided(ta, "removed", true));
                continue;
            };
            let gb = &b[sb];
            let tb = gb.tensor(ta.name).expect("found");
            match compare(&a[sa], ta, gb, tb) {
                None => d.tensors_same += 1,
                Some(c) => d.tensors.push(c),
            }
        }
    }
    for gb in b {
        for tb in &gb.tensors {
            if find(a, tb.name).is_none() {
                d.tensors.push(one_sided(tb, "added", false));
            }
        }
    }
    d
}

fn one_sided(t: &TensorInfo<'_>, change: &'static str, in_a: bool) -> TensorChange {
    let (ty, shape) = (Some(t.ty.upper_name()), Some(t.dims.clone()));
    TensorChange {
        name: t.name.into(),
        change,
        a_type: if in_a { ty.clone() } else { None },
        b_type: if in_a { None } else { ty },
        a_shape: if in_a { shape.clone() } else { None },
        b_shape: if in_a { None } else { shape },
        rmse: None,
        max_abs: None,
        note: None,
    }
}

fn compare(
    ga: &Gguf<'_>,
    ta: &TensorInfo<'_>,
    gb: &Gguf<'_>,
    tb: &TensorInfo<'_>,
) -> Option<TensorChange> {
    let (da, db) = (ga.tensor_data(ta)?, gb.tensor_data(tb)?);
    if ta.ty == tb.ty && ta.dims == tb.dims && ga.endian == gb.endian && da == db {
        return None;
    }
    let mut c = TensorChange {
        name: ta.name.into(),
        change: if ta.dims != tb.dims {
            "shape"
        } else if ta.ty != tb.ty {
            "type"
        } else {
            "data"
        },
        a_type: Some(ta.ty.upper_name()),
        b_type: Some(tb.ty.upper_name()),
        a_shape: Some(ta.dims.clone()),
        b_shape: Some(tb.dims.clone()),
        rmse: None,
        max_abs: None,
        note: None,
    };
    if ta.dims != tb.dims {
        c.note = Some("shapes differ; values not compared".into());
        return Some(c);
    }
    match numeric(ta.ty, ga.endian, da, tb.ty, gb.endian, db, ta.dims[0]) {
        Ok((rmse, max_abs)) => {
            c.rmse = Some(rmse);
            c.max_abs = Some(max_abs);
            if rmse.is_nan() {
                c.note = Some("NaN in one where the other has a number".into());
            }
            // Same numbers in another byte order (or another encoding of them) are no change.
            if ta.ty == tb.ty && max_abs == 0.0 && ga.endian != gb.endian {
                return None;
            }
        }
        Err(ty) => {
            c.note = Some(format!(
                "bytes differ; numeric comparison not available for {ty}"
            ))
        }
    }
    Some(c)
}

/// RMSE and max |a - b| over all values, decoding row by row. `Err(type name)` when a type cannot be
/// decoded.
fn numeric(
    ta: GgmlType,
    ea: Endian,
    da: &[u8],
    tb: GgmlType,
    eb: Endian,
    db: &[u8],
    row: u64,
) -> Result<(f64, f64), String> {
    let row = row as usize;
    let (ra, rb) = (
        ta.bytes_for(row as u64).unwrap_or(0) as usize,
        tb.bytes_for(row as u64).unwrap_or(0) as usize,
    );
    if ra == 0 || rb == 0 {
        return Err(ta.upper_name());
    }
    let (mut xa, mut xb) = (vec![0f32; row], vec![0f32; row]);
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    let (mut sum, mut max, mut n, mut nan) = (0f64, 0f64, 0u64, false);
    for (pa, pb) in da.chunks(ra).zip(db.chunks(rb)) {
        decode(ta, ea, pa, &mut sa, &mut xa)?;
        decode(tb, eb, pb, &mut sb, &mut xb)?;
        for (x, y) in xa.iter().zip(&xb) {
            let e = (*x as f64 - *y as f64).abs();
            if x.is_nan() != y.is_nan() || (e.is_nan() && x.to_bits() != y.to_bits()) {
                max = f64::NAN;
                nan = true;
            } else if !e.is_nan() {
                sum += e * e;
                if e > max {
                    max = e;
                }
            }
            n += 1;
        }
    }
    // A value that became NaN (or stopped being one) is a difference no finite RMSE describes.
    let rmse = if nan {
        f64::NAN
    } else {
        (sum / n.max(1) as f64).sqrt()
    };
    Ok((rmse, max))
}

/// One row of values; big-endian data is swapped to little-endian in `scratch` first.
fn decode(
    ty: GgmlType,
    e: Endian,
    src: &[u8],
    scratch: &mut Vec<u8>,
    dst: &mut [f32],
) -> Result<(), String> {
    let src = if e == Endian::Big {
        scratch.clear();
        scratch.extend_from_slice(src);
        let words = swap_words(ty).map_err(|_| ty.upper_name())?;
        swap_blocks(ty, &words, scratch);
        &scratch[..]
    } else {
        src
    };
    dequantize_row(ty, src, dst).map_err(|_| ty.upper_name())
}
