//! Which llama.cpp backends can multiply by a weight of each ggml type on the device (the
//! `GGML_OP_MUL_MAT` case of each backend's `supports_op`, at the peer's commit). A type a backend
//! lacks is not an error: llama.cpp falls back to the CPU for those matrix products, which on a phone
//! usually means much slower decoding. Sources, under `ggml/src/`:
//!
//! - CPU (x86 and ARM): `ggml-cpu/ggml-cpu.c`, `type_traits_cpu` — every storage type has a
//!   `vec_dot` (SIMD per architecture under `ggml-cpu/arch/{x86,arm}/quants.c`, generic C otherwise).
//! - Metal: `ggml-metal/ggml-metal-device.m`, `ggml_metal_supports_mul_mat_op`: everything but NVFP4
//!   and TQ1_0; BF16 only on GPUs with bfloat (Apple6 / Metal3 families, `has_bfloat`).
//! - Vulkan: `ggml-vulkan/ggml-vulkan.cpp`, `ggml_backend_vk_device_supports_op`, `case GGML_OP_MUL_MAT`:
//!   the explicit `switch (src0_type)` list (F32, F16, BF16, Q1_0, Q2_0, Q4_0..Q8_0, K-quants but
//!   Q8_K, every IQ type, MXFP4, NVFP4, TQ1_0, TQ2_0).
//! - OpenCL (Adreno): `ggml-opencl/ggml-opencl.cpp`, `ggml_opencl_supports_op`, `case GGML_OP_MUL_MAT`:
//!   F16, BF16, F32, Q1_0, Q4_0, Q4_1, Q5_0, Q5_1, MXFP4, IQ4_NL, Q4_K, Q5_K, Q6_K, Q8_0 (large-batch
//!   prefill of K-quants only with the Adreno GEMM kernels).
//! - CUDA: `ggml-cuda/ggml-cuda.cu`, `ggml_backend_cuda_device_supports_op`, `case GGML_OP_MUL_MAT`:
//!   F32, F16, BF16, Q1_0, Q2_0, Q4_0..Q8_0, MXFP4, NVFP4, Q2_K..Q8_K, every IQ type (not TQ1_0/TQ2_0).

/// The backends in the table, in column order.
pub const BACKENDS: &[&str] = &[
    "CPU x86",
    "CPU ARM",
    "Metal",
    "Vulkan",
    "OpenCL/Adreno",
    "CUDA",
];

const ALL_WEIGHT_TYPES: &[&str] = &[
    "f32", "f16", "bf16", "f64", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_K", "q3_K",
    "q4_K", "q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s",
    "iq2_s", "iq4_xs", "iq1_m", "tq1_0", "tq2_0", "mxfp4", "nvfp4", "q1_0", "q2_0",
];

const METAL_NOT: &[&str] = &["nvfp4", "tq1_0", "f64", "q8_1", "q8_K"];

const VULKAN: &[&str] = &[
    "f32", "f16", "bf16", "q1_0", "q2_0", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K",
    "q4_K", "q5_K", "q6_K", "iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s",
    "iq4_xs", "iq4_nl", "mxfp4", "nvfp4", "tq1_0", "tq2_0",
];

const OPENCL: &[&str] = &[
    "f16", "bf16", "f32", "q1_0", "q4_0", "q4_1", "q5_0", "q5_1", "mxfp4", "iq4_nl", "q4_K",
    "q5_K", "q6_K", "q8_0",
];

const CUDA: &[&str] = &[
    "f32", "f16", "q1_0", "q2_0", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "mxfp4", "nvfp4", "q2_K",
    "q3_K", "q4_K", "q5_K", "q6_K", "q8_K", "iq1_m", "iq1_s", "iq2_s", "iq2_xs", "iq2_xxs",
    "iq3_s", "iq3_xxs", "iq4_nl", "iq4_xs", "bf16",
];

/// For the type named `ty` (ggml's lower-case name), whether each of [`BACKENDS`] has a matrix
/// product kernel for it.
pub fn support(ty: &str) -> [bool; 6] {
    let cpu = ALL_WEIGHT_TYPES.contains(&ty) && ty != "f64" && ty != "q8_1" && ty != "q8_K";
    let metal = ALL_WEIGHT_TYPES.contains(&ty) && !METAL_NOT.contains(&ty);
    [
        cpu,
        cpu,
        metal,
        VULKAN.contains(&ty),
        OPENCL.contains(&ty),
        CUDA.contains(&ty),
    ]
}
