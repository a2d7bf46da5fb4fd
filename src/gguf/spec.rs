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

/// A ggml tensor type id (`enum ggml_type`) that names a known type: only the constants below and
/// [`ggml_type`] (which checks a raw id from a file) make one, so a `TypeId` always has a row in the
/// type table. Distinct from [`FtypeId`] (`llama_ftype`), a different id space with clashing
/// numbers (type 8 is Q8_0, file type 8 is Q5_0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(u32);

impl TypeId {
    pub const F32: TypeId = TypeId(0);
    pub const F16: TypeId = TypeId(1);
    pub const Q4_0: TypeId = TypeId(2);
    pub const Q4_1: TypeId = TypeId(3);
    pub const Q5_0: TypeId = TypeId(6);
    pub const Q5_1: TypeId = TypeId(7);
    pub const Q8_0: TypeId = TypeId(8);
    pub const Q8_1: TypeId = TypeId(9);
    pub const Q2_K: TypeId = TypeId(10);
    pub const Q3_K: TypeId = TypeId(11);
    pub const Q4_K: TypeId = TypeId(12);
    pub const Q5_K: TypeId = TypeId(13);
    pub const Q6_K: TypeId = TypeId(14);
    pub const Q8_K: TypeId = TypeId(15);
    pub const IQ2_XXS: TypeId = TypeId(16);
    pub const IQ2_XS: TypeId = TypeId(17);
    pub const IQ3_XXS: TypeId = TypeId(18);
    pub const IQ1_S: TypeId = TypeId(19);
    pub const IQ4_NL: TypeId = TypeId(20);
    pub const IQ3_S: TypeId = TypeId(21);
    pub const IQ2_S: TypeId = TypeId(22);
    pub const IQ4_XS: TypeId = TypeId(23);
    pub const I8: TypeId = TypeId(24);
    pub const I16: TypeId = TypeId(25);
    pub const I32: TypeId = TypeId(26);
    pub const I64: TypeId = TypeId(27);
    pub const F64: TypeId = TypeId(28);
    pub const IQ1_M: TypeId = TypeId(29);
    pub const BF16: TypeId = TypeId(30);
    pub const TQ1_0: TypeId = TypeId(34);
    pub const TQ2_0: TypeId = TypeId(35);
    pub const MXFP4: TypeId = TypeId(39);
    pub const NVFP4: TypeId = TypeId(40);
    pub const Q1_0: TypeId = TypeId(41);
    pub const Q2_0: TypeId = TypeId(42);

    /// The id `raw` if it names a known type.
    pub const fn new(raw: u32) -> Option<TypeId> {
        if (raw as usize) < TYPE_ROWS.len() && TYPE_ROWS[raw as usize].is_some() {
            Some(TypeId(raw))
        } else {
            None
        }
    }

    /// The number on disk.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// This type's row of the table.
    pub const fn ty(self) -> GgmlType {
        match TYPE_ROWS[self.0 as usize] {
            Some(t) => t,
            None => panic!("a TypeId always names a known type"),
        }
    }
}

impl fmt::Display for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ty().name)
    }
}

/// One entry of ggml's type table: `ggml_type_name`, `ggml_blck_size`, `ggml_type_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType {
    pub id: TypeId,
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
        id: TypeId(id),
        name,
        block_size,
        type_size,
        quantized: block_size > 1,
    }
}

/// Number of type ids (`GGML_TYPE_COUNT`).
pub const GGML_TYPE_COUNT: u32 = 43;

/// The table, indexed by id. Removed ids hold `None` and are named in [`REMOVED_TYPES`].
const TYPE_ROWS: [Option<GgmlType>; GGML_TYPE_COUNT as usize] = [
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

static TYPES: [Option<GgmlType>; GGML_TYPE_COUNT as usize] = TYPE_ROWS;

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

/// A `llama_ftype` (`general.file_type`): what a file says its tensors mostly are. Any number may
/// appear in a file, so any `u32` makes one; the constants are llama.h's (`LLAMA_FTYPE_MOSTLY_*`
/// without the prefix). Distinct from [`TypeId`]: the two id spaces share names, not numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FtypeId(pub u32);

impl FtypeId {
    pub const ALL_F32: FtypeId = FtypeId(0);
    pub const F16: FtypeId = FtypeId(1);
    pub const Q4_0: FtypeId = FtypeId(2);
    pub const Q4_1: FtypeId = FtypeId(3);
    pub const Q8_0: FtypeId = FtypeId(7);
    pub const Q5_0: FtypeId = FtypeId(8);
    pub const Q5_1: FtypeId = FtypeId(9);
    pub const Q2_K: FtypeId = FtypeId(10);
    pub const Q3_K_S: FtypeId = FtypeId(11);
    pub const Q3_K_M: FtypeId = FtypeId(12);
    pub const Q3_K_L: FtypeId = FtypeId(13);
    pub const Q4_K_S: FtypeId = FtypeId(14);
    pub const Q4_K_M: FtypeId = FtypeId(15);
    pub const Q5_K_S: FtypeId = FtypeId(16);
    pub const Q5_K_M: FtypeId = FtypeId(17);
    pub const Q6_K: FtypeId = FtypeId(18);
    pub const IQ2_XXS: FtypeId = FtypeId(19);
    pub const IQ2_XS: FtypeId = FtypeId(20);
    pub const Q2_K_S: FtypeId = FtypeId(21);
    pub const IQ3_XS: FtypeId = FtypeId(22);
    pub const IQ3_XXS: FtypeId = FtypeId(23);
    pub const IQ1_S: FtypeId = FtypeId(24);
    pub const IQ4_NL: FtypeId = FtypeId(25);
    pub const IQ3_S: FtypeId = FtypeId(26);
    pub const IQ3_M: FtypeId = FtypeId(27);
    pub const IQ2_S: FtypeId = FtypeId(28);
    pub const IQ2_M: FtypeId = FtypeId(29);
    pub const IQ4_XS: FtypeId = FtypeId(30);
    pub const IQ1_M: FtypeId = FtypeId(31);
    pub const BF16: FtypeId = FtypeId(32);
    pub const TQ1_0: FtypeId = FtypeId(36);
    pub const TQ2_0: FtypeId = FtypeId(37);
    pub const MXFP4_MOE: FtypeId = FtypeId(38);
    pub const NVFP4: FtypeId = FtypeId(39);
    pub const Q1_0: FtypeId = FtypeId(40);
    pub const Q2_0: FtypeId = FtypeId(41);
    /// Flag llama.cpp adds to a file type it guessed from the tensor types (`LLAMA_FTYPE_GUESSED`).
    pub const GUESSED: u32 = 1024;

    /// The number in `general.file_type`.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// llama.cpp's name for it (`llama_ftype_name`), `None` for numbers llama.cpp does not name.
    pub fn name(self) -> Option<&'static str> {
        FTYPE_NAMES
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
    }
}

/// `llama_ftype_name`'s table.
static FTYPE_NAMES: [(FtypeId, &str); 36] = [
    (FtypeId::ALL_F32, "all F32"),
    (FtypeId::F16, "F16"),
    (FtypeId::Q4_0, "Q4_0"),
    (FtypeId::Q4_1, "Q4_1"),
    (FtypeId::Q8_0, "Q8_0"),
    (FtypeId::Q5_0, "Q5_0"),
    (FtypeId::Q5_1, "Q5_1"),
    (FtypeId::Q2_K, "Q2_K - Medium"),
    (FtypeId::Q3_K_S, "Q3_K - Small"),
    (FtypeId::Q3_K_M, "Q3_K - Medium"),
    (FtypeId::Q3_K_L, "Q3_K - Large"),
    (FtypeId::Q4_K_S, "Q4_K - Small"),
    (FtypeId::Q4_K_M, "Q4_K - Medium"),
    (FtypeId::Q5_K_S, "Q5_K - Small"),
    (FtypeId::Q5_K_M, "Q5_K - Medium"),
    (FtypeId::Q6_K, "Q6_K"),
    (FtypeId::IQ2_XXS, "IQ2_XXS - 2.0625 bpw"),
    (FtypeId::IQ2_XS, "IQ2_XS - 2.3125 bpw"),
    (FtypeId::Q2_K_S, "Q2_K - Small"),
    (FtypeId::IQ3_XS, "IQ3_XS - 3.3 bpw"),
    (FtypeId::IQ3_XXS, "IQ3_XXS - 3.0625 bpw"),
    (FtypeId::IQ1_S, "IQ1_S - 1.5625 bpw"),
    (FtypeId::IQ4_NL, "IQ4_NL - 4.5 bpw"),
    (FtypeId::IQ3_S, "IQ3_S - 3.4375 bpw"),
    (FtypeId::IQ3_M, "IQ3_S mix - 3.66 bpw"),
    (FtypeId::IQ2_S, "IQ2_S - 2.5 bpw"),
    (FtypeId::IQ2_M, "IQ2_M - 2.7 bpw"),
    (FtypeId::IQ4_XS, "IQ4_XS - 4.25 bpw"),
    (FtypeId::IQ1_M, "IQ1_M - 1.75 bpw"),
    (FtypeId::BF16, "BF16"),
    (FtypeId::TQ1_0, "TQ1_0 - 1.69 bpw ternary"),
    (FtypeId::TQ2_0, "TQ2_0 - 2.06 bpw ternary"),
    (FtypeId::MXFP4_MOE, "MXFP4 MoE"),
    (FtypeId::NVFP4, "NVFP4"),
    (FtypeId::Q1_0, "Q1_0"),
    (FtypeId::Q2_0, "Q2_0"),
];

/// llama.cpp's name for a `general.file_type` value (`llama_ftype_name`).
pub fn ftype_name(ftype: u32) -> Option<&'static str> {
    FtypeId(ftype).name()
}

/// The file type llama.cpp guesses when `general.file_type` is absent: the type of the most common
/// tensor type (ties go to the type first reaching the maximum in name order, as `weights_map` is
/// a `std::map`), mapped as in `llama_model_loader`'s constructor.
pub fn guess_ftype(most_common: TypeId) -> FtypeId {
    match most_common {
        TypeId::F32 => FtypeId::ALL_F32,
        TypeId::F16 => FtypeId::F16,
        TypeId::BF16 => FtypeId::BF16,
        TypeId::Q4_0 => FtypeId::Q4_0,
        TypeId::Q4_1 => FtypeId::Q4_1,
        TypeId::Q5_0 => FtypeId::Q5_0,
        TypeId::Q5_1 => FtypeId::Q5_1,
        TypeId::Q8_0 => FtypeId::Q8_0,
        TypeId::Q2_K => FtypeId::Q2_K,
        TypeId::Q3_K => FtypeId::Q3_K_M,
        TypeId::Q4_K => FtypeId::Q4_K_M,
        TypeId::Q5_K => FtypeId::Q5_K_M,
        TypeId::Q6_K => FtypeId::Q6_K,
        TypeId::TQ1_0 => FtypeId::TQ1_0,
        TypeId::TQ2_0 => FtypeId::TQ2_0,
        TypeId::IQ2_XXS => FtypeId::IQ2_XXS,
        TypeId::IQ2_XS => FtypeId::IQ2_XS,
        TypeId::IQ2_S => FtypeId::IQ2_S,
        TypeId::IQ3_XXS => FtypeId::IQ3_XXS,
        TypeId::IQ1_S => FtypeId::IQ1_S,
        TypeId::IQ1_M => FtypeId::IQ1_M,
        TypeId::IQ4_NL => FtypeId::IQ4_NL,
        TypeId::IQ4_XS => FtypeId::IQ4_XS,
        TypeId::IQ3_S => FtypeId::IQ3_S,
        TypeId::NVFP4 => FtypeId::NVFP4,
        TypeId::Q1_0 => FtypeId::Q1_0,
        TypeId::Q2_0 => FtypeId::Q2_0,
        _ => FtypeId::ALL_F32,
    }
}
