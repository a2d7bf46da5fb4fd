//! pocket: inspect, verify, requantize and run GGUF model files — the format llama.cpp runs — on the
//! way from a download folder to a phone. This crate is the library; the `pocket` binary is a thin
//! command-line layer over it. The public API is re-exported here; the logic lives in the modules.

pub mod arch;
pub mod compute_buffer;
pub mod edit;
pub mod exec;
pub mod fsio;
pub mod gguf;
pub mod isa;
pub mod memory;
pub mod quant;
#[cfg(feature = "http")]
pub mod remote;
pub mod requant;
pub mod summary;
pub mod verify;

pub use gguf::{
    Endian, GgmlType, Gguf, GgufError, GgufFile, GgufWriter, Model, TensorInfo, Value, ValueType,
};
