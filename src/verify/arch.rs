//! The completeness check's view of architectures: their tensor lists live in `crate::arch`.

pub use crate::arch::tensors::{expected, tolerated, Dims, Expected, Need, KNOWN};
use crate::arch::HParams;
use crate::gguf::Gguf;

/// The sizes of the model in `g` (architecture `arch`); `n_vocab` comes from the vocabulary (or
/// `{arch}.vocab_size`).
pub fn hparams(g: &Gguf<'_>, arch: &str, n_vocab: Option<u64>) -> Result<Dims, String> {
    let h = HParams::read(g).map_err(|e| e.to_string())?;
    debug_assert_eq!(h.arch, arch);
    Dims::new(&h, n_vocab)
}
