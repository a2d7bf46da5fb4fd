//! The executor's kernel table: one row per weight type it has dot products for, keyed by the
//! same [`TypeId`] as the format table (`quant::format`), as ggml's `type_traits_cpu` is keyed by
//! `ggml_type`. A row says how a matrix of that type is multiplied: the scalar port of its
//! `vec_dot` (the oracle every SIMD kernel is held to), whether llama.cpp repacks such matrices on
//! x86 (which fixes the order its products sum in), and which batch tile of `x86_gemm` it runs on.
//! The activation format comes from the format table's `vec_dot_type`.
//!
//! Types without a row are multiplied by dequantizing one weight row at a time and dotting it in
//! f32 (F16 and BF16 weights have their own dots, `float_dot`). Adding a kernel for a type: a row here, the scalar
//! port in `dot.rs`, and the SIMD forms beside their twins (`x86.rs`'s `pick!`, `neon.rs`'s
//! `dot_for`), each tested against the scalar port.

use super::dot::{self, ActKind};
use super::dot_iq_low as iql;
use super::dot_k_low;
use crate::gguf::{GgmlType, TypeId};
use crate::quant::format;

/// The batch kernels of `x86_gemm` (AVX-512 VNNI, two or more activation rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tile {
    /// 32-value blocks against Q8_0 activations packed in pairs (tinyBLAS's order).
    B32,
    /// Q6_K against Q8_K activations packed in pairs (the vec_dot's order).
    Q6K,
    /// Repacked Q4_K (llama.cpp's GEMM order, groups of 4 tokens).
    Q4K,
}

/// One row of the table.
pub(crate) struct CpuKernel {
    pub id: TypeId,
    /// `ggml_vec_dot_<type>_<vec_dot_type>_generic`: one weight row with one activation row.
    pub dot: fn(&[u8], &[u8]) -> f32,
    /// llama.cpp's CPU backend repacks matrices of this type into 8-row interleaved blocks on x86
    /// (`ggml_repack_get_optimal_repack_type` with AVX2) when their rows are a multiple of 8.
    pub repack_x86: bool,
    /// The batch tile, if any (`B32` only applies to matrices that are not repacked). The tiles
    /// are x86 code, so ARM builds never read it.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub tile: Option<Tile>,
}

const fn k(
    id: TypeId,
    dot: fn(&[u8], &[u8]) -> f32,
    repack_x86: bool,
    tile: Option<Tile>,
) -> CpuKernel {
    CpuKernel {
        id,
        dot,
        repack_x86,
        tile,
    }
}

static CPU_KERNELS: [CpuKernel; 19] = [
    k(TypeId::Q4_0, dot::dot_q4_0, true, Some(Tile::B32)),
    k(TypeId::Q4_1, dot::dot_q4_1, false, None),
    k(TypeId::Q5_1, dot::dot_q5_1, false, None),
    k(TypeId::Q5_0, dot::dot_q5_0, false, Some(Tile::B32)),
    k(TypeId::Q8_0, dot::dot_q8_0, false, Some(Tile::B32)),
    k(
        TypeId::Q4_K,
        |x, y| dot::dot_q45_k(x, y, false),
        true,
        Some(Tile::Q4K),
    ),
    k(TypeId::Q5_K, |x, y| dot::dot_q45_k(x, y, true), false, None),
    k(TypeId::Q6_K, dot::dot_q6_k, false, Some(Tile::Q6K)),
    k(TypeId::IQ4_NL, dot::dot_iq4_nl, true, Some(Tile::B32)),
    k(TypeId::IQ4_XS, dot::dot_iq4_xs, false, None),
    // Q2_K is repacked (`q2_K_8x8_q8_K`) only on AVX-512 CPUs, whose order is not followed yet.
    k(TypeId::Q2_K, dot_k_low::dot_q2_k, false, None),
    k(TypeId::Q3_K, dot_k_low::dot_q3_k, false, None),
    k(TypeId::TQ2_0, dot_k_low::dot_tq2_0, false, None),
    // Q1_0 is repacked on ARM only.
    k(TypeId::Q1_0, dot_k_low::dot_q1_0, false, None),
    // No repack and no tile of llama.cpp's on x86 (its tiled K-quant matmul is followed inside the
    // AVX2 kernels, as for IQ4_XS).
    k(TypeId::IQ2_XXS, iql::dot_iq2_xxs, false, None),
    k(TypeId::IQ2_XS, iql::dot_iq2_xs, false, None),
    k(TypeId::IQ2_S, iql::dot_iq2_s, false, None),
    k(TypeId::IQ3_XXS, iql::dot_iq3_xxs, false, None),
    k(TypeId::IQ3_S, iql::dot_iq3_s, false, None),
];

/// The row of type `id`, if the executor has dot products for it.
pub(crate) fn cpu_kernel(id: TypeId) -> Option<&'static CpuKernel> {
    CPU_KERNELS.iter().find(|k| k.id == id)
}

/// The types with rows, for the kernel tests.
#[cfg(test)]
pub(crate) fn kernel_types() -> impl Iterator<Item = TypeId> {
    CPU_KERNELS.iter().map(|k| k.id)
}

/// `type_traits_cpu[ty].vec_dot_type` as the executor prepares it: the format table's for types
/// with a row, F16 for F16 weights, plain f32 for everything else (dequantized row by row).
pub fn act_kind(ty: GgmlType) -> ActKind {
    if cpu_kernel(ty.id).is_some() {
        match format(ty.id).vec_dot_type {
            TypeId::Q8_0 => ActKind::Q8_0,
            TypeId::Q8_K => ActKind::Q8K,
            TypeId::Q8_1 => ActKind::Q8_1,
            other => unreachable!("no activation format {other} for a kernel row (tested)"),
        }
    } else if ty.id == TypeId::F16 {
        ActKind::F16
    } else if ty.id == TypeId::BF16 {
        ActKind::Bf16
    } else {
        ActKind::F32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_rows_take_quantized_activations() {
        for k in &CPU_KERNELS {
            let vd = format(k.id).vec_dot_type;
            assert!(
                matches!(vd, TypeId::Q8_0 | TypeId::Q8_K | TypeId::Q8_1),
                "{}",
                k.id
            );
        }
    }
}
