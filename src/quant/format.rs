//! The table of block formats: one row per ggml type, as ggml's `type_traits` (`ggml.c`) and the
//! `vec_dot_type` column of `type_traits_cpu` (`ggml-cpu.c`). Every other module asks this table
//! what a type's codecs are; none matches on type ids to find them. A type's name, block size and
//! bytes per block are the file format's and live in the type table of `gguf::spec` (the file layer
//! checks sizes without knowing codecs); [`Format::ty`] reads them from there.
//!
//! Adding a type: its id and sizes in `gguf::spec`, its block layout in `gguf::blocks`, a row here,
//! and its codec in the family file the row names (and, to run it, a row in the executor's kernel
//! table).

use super::{fp4, iquants, kquants, legacy, lowbit, ternary, Chunk};
use crate::gguf::spec::{GgmlType, TypeId};

/// Decodes whole blocks (`src` exactly the bytes of `dst`); false if the family has no decoder for
/// the type (never for a row that names one).
pub type ToFloat = fn(&[u8], &mut [f32]) -> bool;
/// Encodes whole rows, with or without an importance matrix (see [`Format::imatrix`]); false as for
/// [`ToFloat`].
pub type FromFloat = fn(&mut Chunk<'_>) -> bool;

/// What a format does with an importance matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imatrix {
    /// Not used: the bytes are the same with or without one.
    Ignored,
    /// Used when given (`quantize_*` with `quant_weights`), the reference path otherwise.
    Optional,
    /// Needed (`ggml_quantize_requires_imatrix`).
    Required,
}

/// One row of the table.
#[derive(Clone, Copy)]
pub struct Format {
    pub id: TypeId,
    /// `to_float`: `dequantize_row_*`.
    pub to_float: Option<ToFloat>,
    /// `from_float`: `quantize_row_*_ref`, or `quantize_*` with an importance matrix.
    pub from_float: Option<FromFloat>,
    pub imatrix: Imatrix,
    /// The format the CPU backend quantizes activations to for a dot product with this type.
    pub vec_dot_type: TypeId,
}

impl Format {
    /// Name, block size, bytes per block.
    pub const fn ty(&self) -> GgmlType {
        self.id.ty()
    }
}

/// A row whose codecs are `$fam::dequantize` / `$fam::quantize` for the type.
macro_rules! row {
    ($id:ident, $fam:ident, $im:ident, $vd:ident) => {
        Format {
            id: TypeId::$id,
            to_float: Some(|s: &[u8], d: &mut [f32]| $fam::dequantize(TypeId::$id, s, d)),
            from_float: Some(|c: &mut Chunk<'_>| $fam::quantize(TypeId::$id, c)),
            imatrix: Imatrix::$im,
            vec_dot_type: TypeId::$vd,
        }
    };
    // Plain types that are read but never written as a quantization target (integers, f64).
    ($id:ident) => {
        Format {
            id: TypeId::$id,
            to_float: Some(|s: &[u8], d: &mut [f32]| float::dequantize(TypeId::$id, s, d)),
            from_float: None,
            imatrix: Imatrix::Ignored,
            vec_dot_type: TypeId::$id,
        }
    };
}

use super::float;

/// The table, in type-id order; [`format`] finds a row.
static FORMATS: [Format; 35] = [
    row!(F32, float, Ignored, F32),
    row!(F16, float, Ignored, F16),
    row!(Q4_0, legacy, Optional, Q8_0),
    row!(Q4_1, legacy, Optional, Q8_1),
    row!(Q5_0, legacy, Optional, Q8_0),
    row!(Q5_1, legacy, Optional, Q8_1),
    row!(Q8_0, legacy, Ignored, Q8_0),
    row!(Q8_1, legacy, Ignored, Q8_1),
    row!(Q2_K, kquants, Optional, Q8_K),
    row!(Q3_K, kquants, Optional, Q8_K),
    row!(Q4_K, kquants, Optional, Q8_K),
    row!(Q5_K, kquants, Optional, Q8_K),
    row!(Q6_K, kquants, Optional, Q8_K),
    // Q8_K has no vec_dot of its own in ggml; it is only ever the activation side.
    row!(Q8_K, kquants, Ignored, Q8_K),
    row!(IQ2_XXS, iquants, Required, Q8_K),
    row!(IQ2_XS, iquants, Required, Q8_K),
    row!(IQ3_XXS, iquants, Optional, Q8_K),
    row!(IQ1_S, iquants, Required, Q8_K),
    row!(IQ4_NL, iquants, Optional, Q8_0),
    row!(IQ3_S, iquants, Optional, Q8_K),
    row!(IQ2_S, iquants, Optional, Q8_K),
    row!(IQ4_XS, iquants, Optional, Q8_K),
    row!(I8),
    row!(I16),
    row!(I32),
    row!(I64),
    row!(F64),
    row!(IQ1_M, iquants, Optional, Q8_K),
    row!(BF16, float, Ignored, BF16),
    row!(TQ1_0, ternary, Ignored, Q8_K),
    row!(TQ2_0, ternary, Ignored, Q8_K),
    row!(MXFP4, fp4, Ignored, Q8_0),
    row!(NVFP4, fp4, Ignored, Q8_0),
    row!(Q1_0, lowbit, Ignored, Q8_0),
    row!(Q2_0, lowbit, Ignored, Q8_0),
];

/// The row of type `id` (every type has one; a test holds the table to the type table).
pub fn format(id: TypeId) -> &'static Format {
    FORMATS
        .iter()
        .find(|f| f.id == id)
        .expect("every type has a row (tested)")
}

/// Every row, in type-id order.
pub fn formats() -> impl Iterator<Item = &'static Format> {
    FORMATS.iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::spec::ggml_types;

    #[test]
    fn one_row_per_type_in_id_order() {
        let ids: Vec<TypeId> = ggml_types().map(|t| t.id).collect();
        let rows: Vec<TypeId> = FORMATS.iter().map(|f| f.id).collect();
        assert_eq!(ids, rows);
    }

    /// Each row's codecs handle its type: quantize a row of values and decode it again.
    #[test]
    fn every_codec_handles_its_type() {
        for f in formats() {
            let ty = f.ty();
            let to = f.to_float.expect("every type decodes");
            let Some(from) = f.from_float else {
                assert!(!ty.quantized, "{}: no encoder", ty.name);
                continue;
            };
            let n = 256usize.max(ty.block_size as usize);
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
                .collect();
            let im = vec![1.0f32; n];
            let mut q = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
            let mut c = Chunk {
                src: &x,
                dst: &mut q,
                n_per_row: n,
                imatrix: (f.imatrix == Imatrix::Required).then_some(&im[..]),
            };
            assert!(from(&mut c), "{}: quantize", ty.name);
            let mut y = vec![0f32; n];
            assert!(to(&q, &mut y), "{}: dequantize", ty.name);
            let err: f32 = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).sum::<f32>() / n as f32;
            assert!(err < 1.0, "{}: mean error {err}", ty.name);
        }
    }

    /// The activation types are types whose codecs exist (the executor quantizes to them).
    #[test]
    fn vec_dot_types_have_codecs() {
        for f in formats().filter(|f| f.from_float.is_some()) {
            assert!(
                format(f.vec_dot_type).from_float.is_some(),
                "{}",
                f.ty().name
            );
        }
    }
}
