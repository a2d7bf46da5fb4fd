//! The output file's metadata as llama-quantize writes it (`llama_model_quantize_impl`): the input's
//! key/value pairs in their order (`gguf_set_kv`), then `general.quantization_version` and
//! `general.file_type` set — which, as every `gguf_set_val_*` removes the key and appends it, moves
//! them to the end — the split keys removed, then each `--override-kv` (and the `quantize.imatrix.*`
//! keys llama-quantize adds as overrides) set the same way, in order. With `--keep-split`, every
//! shard gets `split.no`, `split.count` and `split.tensors.count` appended; shards after the first
//! hold no other key.

use super::RequantError;
use crate::gguf::parse::KeyValue;
use crate::gguf::spec::{KEY_FILE_TYPE, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use crate::gguf::Value;

/// `GGML_QNT_VERSION`.
pub const QNT_VERSION: u32 = 2;
pub const KEY_QUANTIZATION_VERSION: &str = "general.quantization_version";
pub const KEY_IMATRIX_FILE: &str = "quantize.imatrix.file";
pub const KEY_IMATRIX_DATASET: &str = "quantize.imatrix.dataset";
pub const KEY_IMATRIX_N_ENTRIES: &str = "quantize.imatrix.entries_count";
pub const KEY_IMATRIX_N_CHUNKS: &str = "quantize.imatrix.chunks_count";

/// The value of a `--override-kv KEY=TYPE:VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub enum KvOverrideValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

/// `llama_model_kv_override`.
#[derive(Debug, Clone, PartialEq)]
pub struct KvOverride {
    pub key: String,
    pub value: KvOverrideValue,
}

/// `atol`: leading blanks, a sign, digits; whatever follows is ignored; nothing numeric is 0.
fn atol(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let v = rest[..end].parse::<i64>().unwrap_or(0);
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// `atof`: the longest prefix that is a number; nothing numeric is 0.
fn atof(s: &str) -> f64 {
    let t = s.trim_start();
    let mut best = 0.0;
    for (i, _) in t
        .char_indices()
        .skip(1)
        .chain(std::iter::once((t.len(), ' ')))
    {
        if let Ok(v) = t[..i].parse::<f64>() {
            best = v;
        }
    }
    best
}

impl KvOverride {
    /// `string_parse_kv_override`: `KEY=int:N`, `KEY=float:X`, `KEY=bool:true|false`, `KEY=str:S`.
    pub fn parse(arg: &str) -> Result<KvOverride, RequantError> {
        let bad = |m: &str| RequantError::Override {
            arg: arg.to_string(),
            message: m.to_string(),
        };
        let (key, rest) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=TYPE:VALUE"))?;
        if key.len() >= 128 {
            return Err(bad("the key is longer than 127 bytes"));
        }
        let value = if let Some(v) = rest.strip_prefix("int:") {
            KvOverrideValue::Int(atol(v))
        } else if let Some(v) = rest.strip_prefix("float:") {
            KvOverrideValue::Float(atof(v))
        } else if let Some(v) = rest.strip_prefix("bool:") {
            match v {
                "true" => KvOverrideValue::Bool(true),
                "false" => KvOverrideValue::Bool(false),
                _ => return Err(bad("a bool is true or false")),
            }
        } else if let Some(v) = rest.strip_prefix("str:") {
            if v.len() > 127 {
                return Err(bad("the value is longer than 127 bytes"));
            }
            KvOverrideValue::Str(v.to_string())
        } else {
            return Err(bad("the type is one of int, float, bool, str"));
        };
        Ok(KvOverride {
            key: key.to_string(),
            value,
        })
    }

    /// The value as llama-quantize stores it: ints as u32 of their absolute value, floats as f32.
    pub fn stored(&self) -> Value<'_> {
        match &self.value {
            KvOverrideValue::Int(i) => Value::U32(i.unsigned_abs() as u32),
            KvOverrideValue::Float(x) => Value::F32(*x as f32),
            KvOverrideValue::Bool(b) => Value::Bool(*b),
            KvOverrideValue::Str(s) => Value::String(s),
        }
    }
}

/// `gguf_set_val_*`: removes the key wherever it is and appends it.
pub fn set_kv<'a>(kvs: &mut Vec<KeyValue<'a>>, key: &'a str, value: Value<'a>) {
    kvs.retain(|kv| kv.key != key);
    kvs.push(KeyValue {
        key,
        value,
        offset: 0,
    });
}

/// The first (or only) output file's key/value pairs, before any split keys.
pub fn output_kvs<'a>(
    src: &[KeyValue<'a>],
    file_type: u32,
    overrides: &'a [KvOverride],
) -> Vec<KeyValue<'a>> {
    let mut kvs: Vec<KeyValue<'a>> = Vec::with_capacity(src.len() + 2 + overrides.len());
    for kv in src {
        set_kv(&mut kvs, kv.key, kv.value);
    }
    set_kv(&mut kvs, KEY_QUANTIZATION_VERSION, Value::U32(QNT_VERSION));
    set_kv(&mut kvs, KEY_FILE_TYPE, Value::U32(file_type));
    kvs.retain(|kv| {
        kv.key != KEY_SPLIT_NO && kv.key != KEY_SPLIT_COUNT && kv.key != KEY_SPLIT_TENSORS_COUNT
    });
    for o in overrides {
        set_kv(&mut kvs, &o.key, o.stored());
    }
    kvs
}

/// Appends the split keys of shard `no` (from 0) of `count`.
pub fn add_split_keys(kvs: &mut Vec<KeyValue<'_>>, no: u16, count: u16, n_tensors: usize) {
    set_kv(kvs, KEY_SPLIT_NO, Value::U16(no));
    set_kv(kvs, KEY_SPLIT_COUNT, Value::U16(count));
    set_kv(kvs, KEY_SPLIT_TENSORS_COUNT, Value::I32(n_tensors as i32));
}

/// The overrides llama-quantize adds for an importance matrix: the file as given on the command
/// line, its first dataset, the number of entries used and the chunk count (when positive); strings
/// cut to 127 bytes as `strncpy` into `val_str[128]` does.
pub fn imatrix_overrides(
    file_arg: &str,
    datasets: &[String],
    n_entries: usize,
    chunk_count: u32,
) -> Vec<KvOverride> {
    fn cut(s: &str) -> String {
        let mut end = s.len().min(127);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    }
    let mut v = vec![KvOverride {
        key: KEY_IMATRIX_FILE.into(),
        value: KvOverrideValue::Str(cut(file_arg)),
    }];
    if let Some(d) = datasets.first() {
        v.push(KvOverride {
            key: KEY_IMATRIX_DATASET.into(),
            value: KvOverrideValue::Str(cut(d)),
        });
    }
    v.push(KvOverride {
        key: KEY_IMATRIX_N_ENTRIES.into(),
        value: KvOverrideValue::Int(n_entries as i64),
    });
    if chunk_count > 0 {
        v.push(KvOverride {
            key: KEY_IMATRIX_N_CHUNKS.into(),
            value: KvOverrideValue::Int(chunk_count as i64),
        });
    }
    v
}

/// `llama_split_path` over llama-quantize's `--keep-split` output prefix: OUT with a `.gguf` taken
/// off (llama-quantize takes the last five bytes off whenever `.gguf` occurs anywhere in it).
pub fn keep_split_path(out: &str, no: u16, count: u16) -> String {
    let prefix = if out.contains(".gguf") && out.len() >= 5 && out.is_char_boundary(out.len() - 5) {
        &out[..out.len() - 5]
    } else {
        out
    };
    crate::gguf::file::split_path(prefix, no as u32 + 1, count as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_like_llama() {
        let o = KvOverride::parse("a.b=int:-512").unwrap();
        assert_eq!(o.stored(), Value::U32(512));
        let o = KvOverride::parse("x=float:0.25junk").unwrap();
        assert_eq!(o.value, KvOverrideValue::Float(0.25));
        assert!(KvOverride::parse("x=bool:yes").is_err());
        assert!(KvOverride::parse("x=blob:1").is_err());
        assert!(KvOverride::parse("novalue").is_err());
        assert_eq!(
            KvOverride::parse("k=str:").unwrap().value,
            KvOverrideValue::Str(String::new())
        );
    }

    #[test]
    fn set_moves_keys_to_the_end() {
        let src = [
            KeyValue {
                key: "general.file_type",
                value: Value::U32(1),
                offset: 0,
            },
            KeyValue {
                key: "a",
                value: Value::U32(1),
                offset: 0,
            },
            KeyValue {
                key: "split.no",
                value: Value::U16(0),
                offset: 0,
            },
        ];
        let kvs = output_kvs(&src, 15, &[]);
        let keys: Vec<_> = kvs.iter().map(|k| k.key).collect();
        assert_eq!(
            keys,
            ["a", "general.quantization_version", "general.file_type"]
        );
        assert_eq!(kvs[2].value, Value::U32(15));
    }

    #[test]
    fn keep_split_names() {
        assert_eq!(keep_split_path("m.gguf", 0, 2), "m-00001-of-00002.gguf");
        assert_eq!(keep_split_path("m", 1, 2), "m-00002-of-00002.gguf");
    }
}
