//! What is inside one block of each ggml tensor type, field by field: where the scales are (to scan
//! them for NaN and Inf without decoding the quants) and which fields are multi-byte words (to swap
//! byte order). Copied from the `block_*` structs of `ggml/src/ggml-common.h` at the peer's commit;
//! a test checks that every layout adds up to the type's block size.
//!
//! Word fields follow the C declaration (`ggml_half`, `uint16_t`, `float`, ...). Some kernels read
//! declared bytes as wider words (IQ3_XXS's scale-and-sign words, IQ1_M's scales): those fields are
//! listed with the width the kernels read them at, noted on the entry.

/// How the bytes of a field are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// IEEE half: a scale (`d`, `dmin`, `m`, `s`) or a plain F16 value.
    F16,
    /// bfloat16 (a plain BF16 value).
    Bf16,
    /// IEEE single: a scale (Q8_K's `d`) or a plain F32 value.
    F32,
    /// IEEE double (a plain F64 value).
    F64,
    /// Integers of 2, 4 or 8 bytes: swapped with the byte order, never NaN.
    U16,
    U32,
    U64,
    /// Single bytes: quants, packed scales, E8M0 or UE4M3 exponents. Not affected by byte order.
    Bytes,
    /// One-byte E8M0 exponent (MXFP4's shared scale): 0xFF is NaN.
    E8m0,
    /// One-byte unsigned E4M3 (NVFP4's sub-block scales): 0x7F and 0xFF are NaN.
    Ue4m3,
}

impl Kind {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Kind::F16 | Kind::Bf16 | Kind::U16 => 2,
            Kind::F32 | Kind::U32 => 4,
            Kind::F64 | Kind::U64 => 8,
            Kind::Bytes | Kind::E8m0 | Kind::Ue4m3 => 1,
        }
    }

    /// A floating-point field (a scale in a block format, or the value of a plain float type).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Kind::F16 | Kind::Bf16 | Kind::F32 | Kind::F64 | Kind::E8m0 | Kind::Ue4m3
        )
    }
}

/// A run of `count` elements of `kind` at byte `offset` in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub count: usize,
    pub kind: Kind,
}

impl Field {
    pub fn len(&self) -> usize {
        self.count * self.kind.size()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

const fn f(name: &'static str, offset: usize, count: usize, kind: Kind) -> Field {
    Field {
        name,
        offset,
        count,
        kind,
    }
}

use Kind::*;

use super::spec::TypeId;

// QK_K = 256.
static F32_: [Field; 1] = [f("value", 0, 1, F32)];
static F16_: [Field; 1] = [f("value", 0, 1, F16)];
static BF16_: [Field; 1] = [f("value", 0, 1, Bf16)];
static F64_: [Field; 1] = [f("value", 0, 1, F64)];
static I8_: [Field; 1] = [f("value", 0, 1, Bytes)];
static I16_: [Field; 1] = [f("value", 0, 1, U16)];
static I32_: [Field; 1] = [f("value", 0, 1, U32)];
static I64_: [Field; 1] = [f("value", 0, 1, U64)];
static Q4_0: [Field; 2] = [f("d", 0, 1, F16), f("qs", 2, 16, Bytes)];
static Q4_1: [Field; 3] = [f("d", 0, 1, F16), f("m", 2, 1, F16), f("qs", 4, 16, Bytes)];
static Q5_0: [Field; 3] = [
    f("d", 0, 1, F16),
    f("qh", 2, 4, Bytes),
    f("qs", 6, 16, Bytes),
];
static Q5_1: [Field; 4] = [
    f("d", 0, 1, F16),
    f("m", 2, 1, F16),
    f("qh", 4, 4, Bytes),
    f("qs", 8, 16, Bytes),
];
static Q8_0: [Field; 2] = [f("d", 0, 1, F16), f("qs", 2, 32, Bytes)];
static Q8_1: [Field; 3] = [f("d", 0, 1, F16), f("s", 2, 1, F16), f("qs", 4, 32, Bytes)];
static Q2_K: [Field; 4] = [
    f("scales", 0, 16, Bytes),
    f("qs", 16, 64, Bytes),
    f("d", 80, 1, F16),
    f("dmin", 82, 1, F16),
];
static Q3_K: [Field; 4] = [
    f("hmask", 0, 32, Bytes),
    f("qs", 32, 64, Bytes),
    f("scales", 96, 12, Bytes),
    f("d", 108, 1, F16),
];
static Q4_K: [Field; 4] = [
    f("d", 0, 1, F16),
    f("dmin", 2, 1, F16),
    f("scales", 4, 12, Bytes),
    f("qs", 16, 128, Bytes),
];
static Q5_K: [Field; 5] = [
    f("d", 0, 1, F16),
    f("dmin", 2, 1, F16),
    f("scales", 4, 12, Bytes),
    f("qh", 16, 32, Bytes),
    f("qs", 48, 128, Bytes),
];
static Q6_K: [Field; 4] = [
    f("ql", 0, 128, Bytes),
    f("qh", 128, 64, Bytes),
    f("scales", 192, 16, Bytes),
    f("d", 208, 1, F16),
];
static Q8_K: [Field; 3] = [
    f("d", 0, 1, F32),
    f("qs", 4, 256, Bytes),
    f("bsums", 260, 16, U16),
];
static IQ2_XXS: [Field; 2] = [f("d", 0, 1, F16), f("qs", 2, 32, U16)];
static IQ2_XS: [Field; 3] = [
    f("d", 0, 1, F16),
    f("qs", 2, 32, U16),
    f("scales", 66, 8, Bytes),
];
static IQ2_S: [Field; 4] = [
    f("d", 0, 1, F16),
    f("qs", 2, 64, Bytes),
    f("qh", 66, 8, Bytes),
    f("scales", 74, 8, Bytes),
];
// qs[3*QK_K/8]: 64 grid indices, then 8 scale-and-sign words read as uint32.
static IQ3_XXS: [Field; 3] = [
    f("d", 0, 1, F16),
    f("qs", 2, 64, Bytes),
    f("scales_signs", 66, 8, U32),
];
static IQ3_S: [Field; 5] = [
    f("d", 0, 1, F16),
    f("qs", 2, 64, Bytes),
    f("qh", 66, 8, Bytes),
    f("signs", 74, 32, Bytes),
    f("scales", 106, 4, Bytes),
];
static IQ1_S: [Field; 3] = [
    f("d", 0, 1, F16),
    f("qs", 2, 32, Bytes),
    f("qh", 34, 8, U16),
];
// scales[QK_K/32] is read as four uint16 words whose top nibbles hold the f16 super-block scale.
static IQ1_M: [Field; 3] = [
    f("qs", 0, 32, Bytes),
    f("qh", 32, 16, Bytes),
    f("scales", 48, 4, U16),
];
static IQ4_NL: [Field; 2] = [f("d", 0, 1, F16), f("qs", 2, 16, Bytes)];
static IQ4_XS: [Field; 4] = [
    f("d", 0, 1, F16),
    f("scales_h", 2, 1, U16),
    f("scales_l", 4, 4, Bytes),
    f("qs", 8, 128, Bytes),
];
static TQ1_0: [Field; 3] = [
    f("qs", 0, 48, Bytes),
    f("qh", 48, 4, Bytes),
    f("d", 52, 1, F16),
];
static TQ2_0: [Field; 2] = [f("qs", 0, 64, Bytes), f("d", 64, 1, F16)];
static MXFP4: [Field; 2] = [f("e", 0, 1, E8m0), f("qs", 1, 16, Bytes)];
static NVFP4: [Field; 2] = [f("d", 0, 4, Ue4m3), f("qs", 4, 32, Bytes)];
static Q1_0: [Field; 2] = [f("d", 0, 1, F16), f("qs", 2, 16, Bytes)];
static Q2_0: [Field; 2] = [f("d", 0, 1, F16), f("qs", 2, 16, Bytes)];

/// The fields of one block of type `id` (one element for plain types).
pub fn layout(id: TypeId) -> &'static [Field] {
    match id {
        TypeId::F32 => &F32_,
        TypeId::F16 => &F16_,
        TypeId::Q4_0 => &Q4_0,
        TypeId::Q4_1 => &Q4_1,
        TypeId::Q5_0 => &Q5_0,
        TypeId::Q5_1 => &Q5_1,
        TypeId::Q8_0 => &Q8_0,
        TypeId::Q8_1 => &Q8_1,
        TypeId::Q2_K => &Q2_K,
        TypeId::Q3_K => &Q3_K,
        TypeId::Q4_K => &Q4_K,
        TypeId::Q5_K => &Q5_K,
        TypeId::Q6_K => &Q6_K,
        TypeId::Q8_K => &Q8_K,
        TypeId::IQ2_XXS => &IQ2_XXS,
        TypeId::IQ2_XS => &IQ2_XS,
        TypeId::IQ3_XXS => &IQ3_XXS,
        TypeId::IQ1_S => &IQ1_S,
        TypeId::IQ4_NL => &IQ4_NL,
        TypeId::IQ3_S => &IQ3_S,
        TypeId::IQ2_S => &IQ2_S,
        TypeId::IQ4_XS => &IQ4_XS,
        TypeId::I8 => &I8_,
        TypeId::I16 => &I16_,
        TypeId::I32 => &I32_,
        TypeId::I64 => &I64_,
        TypeId::F64 => &F64_,
        TypeId::IQ1_M => &IQ1_M,
        TypeId::BF16 => &BF16_,
        TypeId::TQ1_0 => &TQ1_0,
        TypeId::TQ2_0 => &TQ2_0,
        TypeId::MXFP4 => &MXFP4,
        TypeId::NVFP4 => &NVFP4,
        TypeId::Q1_0 => &Q1_0,
        TypeId::Q2_0 => &Q2_0,
        _ => unreachable!("every TypeId names a type with a layout"),
    }
}

/// The floating-point fields of a block: the scales of a block format, or the value of a plain
/// float type. Empty for integer types and IQ1_M (whose scale is packed into its `scales` words).
pub fn float_fields(id: TypeId) -> impl Iterator<Item = &'static Field> {
    layout(id).iter().filter(|f| f.kind.is_float())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::spec::ggml_types;

    #[test]
    fn every_type_has_a_layout_that_tiles_its_block() {
        for t in ggml_types() {
            let fields = layout(t.id);
            let mut at = 0;
            for fl in fields {
                assert_eq!(
                    fl.offset, at,
                    "{}: field {} starts at {}, expected {at}",
                    t.name, fl.name, fl.offset
                );
                at += fl.len();
            }
            assert_eq!(
                at as u64, t.type_size,
                "{}: fields cover {at} bytes of {}",
                t.name, t.type_size
            );
        }
    }
}
