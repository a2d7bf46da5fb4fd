//! Every way a GGUF file can be wrong, each naming what was wrong and where (a byte offset from the
//! start of the file, and the key or tensor involved). Parse errors come from reading records; the
//! rest come from the validation pass that runs after parsing.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GgufError {
    // ---- reading records -------------------------------------------------------------------
    #[error("file too short: {what} at byte {offset} needs {needed} bytes, {available} left")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error("bad magic {found:?} at byte 0, expected \"GGUF\"")]
    BadMagic { found: String },
    #[error("unsupported GGUF version {version} at byte 4 (this reader knows 1 to 3)")]
    UnsupportedVersion { version: u32 },
    #[error("{what} count {count} at byte {offset} cannot fit in the {available} bytes left (each needs at least {min_each})")]
    CountTooLarge {
        what: String,
        count: u64,
        offset: u64,
        available: u64,
        min_each: u64,
    },
    #[error("{what} length {len} at byte {offset} exceeds the {available} bytes left")]
    LengthPastEnd {
        what: String,
        len: u64,
        offset: u64,
        available: u64,
    },
    #[error("{what} length {len} at byte {offset} exceeds the limit {max}")]
    LengthOverLimit {
        what: String,
        len: u64,
        offset: u64,
        max: u64,
    },
    #[error("key '{key}' at byte {offset} has invalid value type {type_id}")]
    BadValueType {
        key: String,
        type_id: u32,
        offset: u64,
    },
    #[error("key '{key}': arrays nested deeper than {max} at byte {offset}")]
    NestingTooDeep {
        key: String,
        offset: u64,
        max: usize,
    },
    #[error("invalid UTF-8 in {what} at byte {offset}")]
    InvalidUtf8 { what: String, offset: u64 },

    // ---- validation: metadata ---------------------------------------------------------------
    #[error("key #{index} at byte {offset} is empty")]
    EmptyKey { index: u64, offset: u64 },
    #[error("duplicate key '{key}' at byte {offset} (first at byte {first})")]
    DuplicateKey {
        key: String,
        offset: u64,
        first: u64,
    },
    #[error("key '{key}' at byte {offset} must be of type {expected} but is {found}")]
    WrongKeyType {
        key: String,
        offset: u64,
        expected: &'static str,
        found: &'static str,
    },
    #[error("general.alignment {value} at byte {offset} is not a power of two")]
    BadAlignment { value: u64, offset: u64 },

    // ---- validation: tensor infos -----------------------------------------------------------
    #[error("tensor #{index} at byte {offset}: name '{name}' is {len} bytes, must be under {max}")]
    TensorNameTooLong {
        index: u64,
        name: String,
        len: usize,
        offset: u64,
        max: usize,
    },
    #[error("duplicate tensor name '{name}' at byte {offset} (first at byte {first})")]
    DuplicateTensor {
        name: String,
        offset: u64,
        first: u64,
    },
    #[error("tensor '{name}' at byte {offset} has {n_dims} dimensions, must be 1 to 4")]
    BadDimCount {
        name: String,
        n_dims: u32,
        offset: u64,
    },
    #[error("tensor '{name}' at byte {offset}: dimension {dim} is {value}, must be positive and below 2^63")]
    BadDim {
        name: String,
        dim: usize,
        value: u64,
        offset: u64,
    },
    #[error("tensor '{name}' at byte {offset}: element count of shape {shape:?} overflows")]
    ElementOverflow {
        name: String,
        shape: Vec<u64>,
        offset: u64,
    },
    #[error("tensor '{name}' at byte {offset} has unknown ggml type id {type_id}")]
    UnknownType {
        name: String,
        type_id: u32,
        offset: u64,
    },
    #[error("tensor '{name}' at byte {offset} has ggml type id {type_id}, {what}")]
    RemovedType {
        name: String,
        type_id: u32,
        what: &'static str,
        offset: u64,
    },
    #[error("tensor '{name}' at byte {offset}: {ne0} elements per row is not a multiple of {type_name}'s block size {block_size}")]
    PartialBlock {
        name: String,
        ne0: u64,
        type_name: &'static str,
        block_size: u64,
        offset: u64,
    },

    // ---- validation: layout -----------------------------------------------------------------
    #[error(
        "data section starts at byte {data_offset}, past the end of the {file_size}-byte file"
    )]
    DataSectionPastEnd { data_offset: u64, file_size: u64 },
    #[error("tensor '{name}': offset {offset} (info at byte {info_offset}) is not a multiple of the alignment {alignment}")]
    Misaligned {
        name: String,
        offset: u64,
        info_offset: u64,
        alignment: u64,
    },
    #[error("tensor '{name}': data [{start}, {end}) runs past the end of the file ({file_size} bytes, {missing} missing)")]
    TensorPastEnd {
        name: String,
        start: u64,
        end: u64,
        file_size: u64,
        missing: u64,
    },
    #[error("tensor '{name}': data [{start}, {end}) overlaps tensor '{other}'")]
    Overlap {
        name: String,
        other: String,
        start: u64,
        end: u64,
    },
    #[error("tensor '{name}' has offset {offset}, expected {expected}: tensors must follow one another in order, each padded to the alignment")]
    UnexpectedOffset {
        name: String,
        offset: u64,
        expected: u64,
    },

    // ---- files and splits -------------------------------------------------------------------
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("split model: {message}")]
    Split { message: String },
}

impl GgufError {
    /// A short stable name for the kind of error, used in JSON output and tests.
    pub fn kind(&self) -> &'static str {
        use GgufError::*;
        match self {
            Truncated { .. } => "truncated",
            BadMagic { .. } => "bad_magic",
            UnsupportedVersion { .. } => "unsupported_version",
            CountTooLarge { .. } => "count_too_large",
            LengthPastEnd { .. } => "length_past_end",
            LengthOverLimit { .. } => "length_over_limit",
            BadValueType { .. } => "bad_value_type",
            NestingTooDeep { .. } => "nesting_too_deep",
            InvalidUtf8 { .. } => "invalid_utf8",
            EmptyKey { .. } => "empty_key",
            DuplicateKey { .. } => "duplicate_key",
            WrongKeyType { .. } => "wrong_key_type",
            BadAlignment { .. } => "bad_alignment",
            TensorNameTooLong { .. } => "tensor_name_too_long",
            DuplicateTensor { .. } => "duplicate_tensor",
            BadDimCount { .. } => "bad_dim_count",
            BadDim { .. } => "bad_dim",
            ElementOverflow { .. } => "element_overflow",
            UnknownType { .. } => "unknown_type",
            RemovedType { .. } => "removed_type",
            PartialBlock { .. } => "partial_block",
            DataSectionPastEnd { .. } => "data_section_past_end",
            Misaligned { .. } => "misaligned",
            TensorPastEnd { .. } => "tensor_past_end",
            Overlap { .. } => "overlap",
            UnexpectedOffset { .. } => "unexpected_offset",
            Io { .. } => "io",
            Split { .. } => "split",
        }
    }

    /// The byte offset the error points at, where it has one.
    pub fn offset(&self) -> Option<u64> {
        use GgufError::*;
        match self {
            Truncated { offset, .. }
            | CountTooLarge { offset, .. }
            | LengthPastEnd { offset, .. }
            | LengthOverLimit { offset, .. }
            | BadValueType { offset, .. }
            | NestingTooDeep { offset, .. }
            | InvalidUtf8 { offset, .. }
            | EmptyKey { offset, .. }
            | DuplicateKey { offset, .. }
            | WrongKeyType { offset, .. }
            | BadAlignment { offset, .. }
            | TensorNameTooLong { offset, .. }
            | DuplicateTensor { offset, .. }
            | BadDimCount { offset, .. }
            | BadDim { offset, .. }
            | ElementOverflow { offset, .. }
            | UnknownType { offset, .. }
            | RemovedType { offset, .. }
            | PartialBlock { offset, .. } => Some(*offset),
            BadMagic { .. } => Some(0),
            UnsupportedVersion { .. } => Some(4),
            DataSectionPastEnd { data_offset, .. } => Some(*data_offset),
            Misaligned { info_offset, .. } => Some(*info_offset),
            TensorPastEnd { start, .. } | Overlap { start, .. } => Some(*start),
            UnexpectedOffset { .. } | Io { .. } | Split { .. } => None,
        }
    }
}

pub type Result<T, E = GgufError> = std::result::Result<T, E>;
