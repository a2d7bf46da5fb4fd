//! The fixed vocabulary of the GGUF format: magic, versions, metadata value types, the ggml tensor type
//! table and llama.cpp's file-type names. Everything here is a constant copied from llama.cpp at the
//! peer's commit (`ggml/include/ggml.h`, `ggml/src/ggml.c`, `ggml/include/gguf.h`, `include/llama.h`,
//! `src/llama-model-loader.cpp`); `testdata/ggml-types.txt`, printed by the peer's own library, checks
//! the type table in a test.

use std::fmt;

/// "GGUF" as it appears at the start of every file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Newest version this reader knows (`GGUF_VERSION`).
pub const MAX_VERSION: u32 = 3;
/// `GGUF_DEFAULT_ALIGNMENT`: used when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;
/// `GGML_MAX_NAME`: a tensor name must be strictly shorter (it is stored NUL-terminated in ggml).
pub const MAX_NAME: usize = 64;
/// `GGUF_MAX_STRING_LENGTH` and `GGUF_MAX_ARRAY_ELEMENTS` in gguf.cpp.
pub const MAX_STRING_LENGTH: u64 = 1 << 30;
pub const MAX_ARRAY_ELEMENTS: u64 = 1 << 30;
/// Arrays of arrays are a gguf-py feature (llama.cpp rejects them); we read them to this depth.
pub const MAX_ARRAY_DEPTH: usize = 16;

pub const KEY_ALIGNMENT: &str = "general.alignment";
pub const KEY_ARCHITECTURE: &str = "general.architecture";
pub const KEY_NAME: &str = "general.name";
pub const KEY_FILE_TYPE: &str = "general.file_type";
pub const KEY_SPLIT_NO: &str = "split.no";
pub const KEY_SPLIT_COUNT: &str = "split.count";
pub const KEY_SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// Byte order of a file's numbers. Detected from the version field the way gguf-py does it: a version
/// whose low 16 bits are zero when read little-endian is a big-endian file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    pub fn name(self) -> &'static str {
        match self {
            Endian::Little => "little",
            Endian::Big => "big",
        }
    }
}

/// The 13 metadata value types (`enum gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl TryFrom<u32> for ValueType {
    type Error = u32;
    fn try_from(v: u32) -> Result<Self, u32> {
        use ValueType::*;
        Ok(match v {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return Err(v),
        })
    }
}

impl ValueType {
    /// Size of one element on disk; `None` for strings and arrays, whose size depends on their content.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// gguf-py's name (`GGUFValueType`), used in JSON.
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        }
    }

    /// llama.cpp's short name (`gguf_type_name`), used in tables.
    pub fn short_name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "str",
            Array => "arr",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }

    pub fn from_name(s: &str) -> Option<ValueType> {
        (0..13u32)
            .filter_map(|i| ValueType::try_from(i).ok())
            .find(|t| t.name().eq_ignore_ascii_case(s) || t.short_name().eq_ignore_ascii_case(s))
    }
}

/// One entry of ggml's type table: `ggml_type_name`, `ggml_blck_size`, `ggml_type_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType {
    pub id: u32,
    pub name: &'static str,
    /// Elements per block (1 for plain types).
    pub block_size: u64,
    /// Bytes per block.
    pub type_size: u64,
    pub quantized: bool,
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl GgmlType {
    /// Bytes for `n` elements, `None` when `n` is not a whole number of blocks or the size overflows.
    pub fn bytes_for(&self, n: u64) -> Option<u64> {
        if !n.is_multiple_of(self.block_size) {
            return None;
        }
        (n / self.block_size).checked_mul(self.type_size)
    }

    /// Upper-case name as gguf-py and llama-quantize spell it (`Q4_K`, `F16`, `IQ4_XS`).
    pub fn upper_name(&self) -> String {
        self.name.to_ascii_uppercase()
    }

    pub fn bits_per_weight(&self) -> f64 {
        self.type_size as f64 * 8.0 / self.block_size as f64
    }
}

/// What a tensor type id can be, besides a known type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeIdError {
    /// Once a ggml type, support since removed; the name says what to use instead.
    Removed { id: u32, name: &'static str },
    /// Never a ggml type at the peer's commit.
    Unknown { id: u32 },
}

const fn t(id: u32, name: &'static str, block_size: u64, type_size: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_size,
        type_size,
        quantized: block_size > 1,
    }
}

/// Number of type ids (`GGML_TYPE_COUNT`).
pub const GGML_TYPE_COUNT: u32 = 43;

/// The table, indexed by id. Removed ids hold `None` and are named in [`REMOVED_TYPES`].
static TYPES: [Option<GgmlType>; GGML_TYPE_COUNT as usize] = [
    Some(t(0, "f32", 1, 4)),
    Some(t(1, "f16", 1, 2)),
    Some(t(2, "q4_0", 32, 18)),
    Some(t(3, "q4_1", 32, 20)),
    None, // 4: Q4_2
    None, // 5: Q4_3
    Some(t(6, "q5_0", 32, 22)),
    Some(t(7, "q5_1", 32, 24)),
    Some(t(8, "q8_0", 32, 34)),
    Some(t(9, "q8_1", 32, 36)),
    Some(t(10, "q2_K", 256, 84)),
    Some(t(11, "q3_K", 256, 110)),
    Some(t(12, "q4_K", 256, 144)),
    Some(t(13, "q5_K", 256, 176)),
    Some(t(14, "q6_K", 256, 210)),
    Some(t(15, "q8_K", 256, 292)),
    Some(t(16, "iq2_xxs", 256, 66)),
    Some(t(17, "iq2_xs", 256, 74)),
    Some(t(18, "iq3_xxs", 256, 98)),
    Some(t(19, "iq1_s", 256, 50)),
    Some(t(20, "iq4_nl", 32, 18)),
    Some(t(21, "iq3_s", 256, 110)),
    Some(t(22, "iq2_s", 256, 82)),
    Some(t(23, "iq4_xs", 256, 136)),
    Some(t(24, "i8", 1, 1)),
    Some(t(25, "i16", 1, 2)),
    Some(t(26, "i32", 1, 4)),
    Some(t(27, "i64", 1, 8)),
    Some(t(28, "f64", 1, 8)),
    Some(t(29, "iq1_m", 256, 56)),
    Some(t(30, "bf16", 1, 2)),
    None, // 31: Q4_0_4_4
    None, // 32: Q4_0_4_8
    None, // 33: Q4_0_8_8
    Some(t(34, "tq1_0", 256, 54)),
    Some(t(35, "tq2_0", 256, 66)),
    None, // 36: IQ4_NL_4_4
    None, // 37: IQ4_NL_4_8
    None, // 38: IQ4_NL_8_8
    Some(t(39, "mxfp4", 32, 17)),
    Some(t(40, "nvfp4", 64, 36)),
    Some(t(41, "q1_0", 128, 18)),
    Some(t(42, "q2_0", 64, 18)),
];

/// Ids that were ggml types once; the text is ggml's own `type_name` for them.
pub static REMOVED_TYPES: [(u32, &str); 8] = [
    (4, "Q4_2 (removed)"),
    (5, "Q4_3 (removed)"),
    (31, "Q4_0_4_4 (removed, use Q4_0 with runtime repacking)"),
    (32, "Q4_0_4_8 (removed, use Q4_0 with runtime repacking)"),
    (33, "Q4_0_8_8 (removed, use Q4_0 with runtime repacking)"),
    (
        36,
        "IQ4_NL_4_4 (removed, use IQ4_NL with runtime repacking)",
    ),
    (
        37,
        "IQ4_NL_4_8 (removed, use IQ4_NL with runtime repacking)",
    ),
    (
        38,
        "IQ4_NL_8_8 (removed, use IQ4_NL with runtime repacking)",
    ),
];

/// Looks up a type id.
pub fn ggml_type(id: u32) -> Result<GgmlType, TypeIdError> {
    match TYPES.get(id as usize) {
        Some(Some(t)) => Ok(*t),
        Some(None) => {
            let name = REMOVED_TYPES
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, n)| *n)
                .unwrap_or("removed");
            Err(TypeIdError::Removed { id, name })
        }
        None => Err(TypeIdError::Unknown { id }),
    }
}

/// Every known type, in id order.
pub fn ggml_types() -> impl Iterator<Item = GgmlType> {
    TYPES.iter().flatten().copied()
}

/// Looks a type up by name, case-insensitively (`q4_K`, `Q4_K`, `f16`).
pub fn ggml_type_by_name(name: &str) -> Option<GgmlType> {
    ggml_types().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// llama.cpp's name for a `general.file_type` value (`llama_ftype_name`).
pub fn ftype_name(ftype: u32) -> Option<&'static str> {
    Some(match ftype {
        0 => "all F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K - Medium",
        11 => "Q3_K - Small",
        12 => "Q3_K - Medium",
        13 => "Q3_K - Large",
        14 => "Q4_K - Small",
        15 => "Q4_K - Medium",
        16 => "Q5_K - Small",
        17 => "Q5_K - Medium",
        18 => "Q6_K",
        19 => "IQ2_XXS - 2.0625 bpw",
        20 => "IQ2_XS - 2.3125 bpw",
        21 => "Q2_K - Small",
        22 => "IQ3_XS - 3.3 bpw",
        23 => "IQ3_XXS - 3.0625 bpw",
        24 => "IQ1_S - 1.5625 bpw",
        25 => "IQ4_NL - 4.5 bpw",
        26 => "IQ3_S - 3.4375 bpw",
        27 => "IQ3_S mix - 3.66 bpw",
        28 => "IQ2_S - 2.5 bpw",
        29 => "IQ2_M - 2.7 bpw",
        30 => "IQ4_XS - 4.25 bpw",
        31 => "IQ1_M - 1.75 bpw",
        32 => "BF16",
        36 => "TQ1_0 - 1.69 bpw ternary",
        37 => "TQ2_0 - 2.06 bpw ternary",
        38 => "MXFP4 MoE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        _ => return None,
    })
}

/// The file type llama.cpp guesses when `general.file_type` is absent: the type of the most common
/// tensor type (ties go to the type first reaching the maximum in name order, as `weights_map` is
/// a `std::map`), mapped as in `llama_model_loader`'s constructor.
pub fn guess_ftype(type_id_of_most_common: u32) -> u32 {
    match type_id_of_most_common {
        0 => 0,
        1 => 1,
        30 => 32,
        2 => 2,
        3 => 3,
        6 => 8,
        7 => 9,
        8 => 7,
        10 => 10,
        11 => 12,
        12 => 15,
        13 => 17,
        14 => 18,
        34 => 36,
        35 => 37,
        16 => 19,
        17 => 20,
        22 => 28,
        18 => 23,
        19 => 24,
        29 => 31,
        20 => 25,
        23 => 30,
        21 => 26,
        40 => 39,
        41 => 40,
        42 => 41,
        _ => 0,
    }
}
