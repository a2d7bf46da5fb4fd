//! The reference executor: what it takes to run a model the way llama.cpp does. So far the
//! tokenizers.

pub mod tokenizer;

// The forward pass and what drives it (helper G, branch exec).
pub mod dot;
pub mod error;
pub mod forward;
pub mod model;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod perplexity;
pub mod sample;

pub use error::ExecError;
pub use forward::Session;
pub use model::{Arch, HParams, Weights};
