//! The GGUF file format: constants and type tables ([`spec`]), record parsing ([`parse`]), the
//! validation pass that yields a trusted [`Gguf`] view ([`validate`]), metadata values ([`value`]),
//! mapped files and split models ([`file`]), JSON rendering ([`json`]) and writing ([`write`]).

pub mod blocks;
pub mod error;
pub mod file;
pub mod json;
pub mod parse;
pub mod spec;
pub mod validate;
pub mod value;
pub mod write;

pub use error::GgufError;
pub use file::{GgufFile, Model};
pub use parse::KeyValue;
pub use spec::{Endian, FtypeId, GgmlType, TypeId, ValueType};
pub use validate::{Gguf, TensorInfo};
pub use value::{Array, Value};
pub use write::{GgufWriter, TensorSpec};
