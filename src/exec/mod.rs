//! The reference executor: what it takes to run a model the way llama.cpp does. So far the
//! tokenizers.

pub mod chat;
pub mod tokenizer;

// The forward pass and what drives it (helper G, branch exec).
pub mod attn;
pub mod bench;
pub mod dot;
mod dot_iq_low;
mod dot_k_low;
pub mod error;
mod float_dot;
pub mod forward;
pub mod imatrix;
pub mod kld;
pub mod model;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod perplexity;
pub mod probe;
pub mod sample;
mod traits;
#[cfg(target_arch = "x86_64")]
pub mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_float;
#[cfg(target_arch = "x86_64")]
mod x86_gemm;
#[cfg(target_arch = "x86_64")]
mod x86_iq;
#[cfg(target_arch = "x86_64")]
mod x86_k_low;
#[cfg(target_arch = "x86_64")]
mod x86_legacy;

pub use error::ExecError;
pub use forward::Session;
pub use model::{Arch, HParams, Weights};
