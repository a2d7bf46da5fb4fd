//! llama-quantize's file types: the names it accepts (`QUANT_OPTIONS` in `tools/quantize/quantize.cpp`),
//! their `llama_ftype` ids (`general.file_type`) and default tensor type
//! (`llama_ftype_get_default_type` in `src/llama-quant.cpp`).

use crate::gguf::spec::{FtypeId, GgmlType, TypeId};

/// One of llama-quantize's type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ftype {
    /// The name as llama-quantize lists it (`Q4_K_M`, `COPY`).
    pub name: &'static str,
    /// `llama_ftype`, written as `general.file_type`.
    pub id: FtypeId,
    /// The default tensor type.
    default: TypeId,
}

const fn f(name: &'static str, id: FtypeId, default: TypeId) -> Ftype {
    Ftype { name, id, default }
}

use FtypeId as F;
use TypeId as T;

/// `QUANT_OPTIONS`, in llama-quantize's order (which decides what a number names: the first match).
pub static FTYPES: [Ftype; 39] = [
    f("Q1_0", F::Q1_0, T::Q1_0),
    f("Q2_0", F::Q2_0, T::Q2_0),
    f("Q4_0", F::Q4_0, T::Q4_0),
    f("Q4_1", F::Q4_1, T::Q4_1),
    f("MXFP4_MOE", F::MXFP4_MOE, T::MXFP4),
    f("Q5_0", F::Q5_0, T::Q5_0),
    f("Q5_1", F::Q5_1, T::Q5_1),
    f("IQ2_XXS", F::IQ2_XXS, T::IQ2_XXS),
    f("IQ2_XS", F::IQ2_XS, T::IQ2_XS),
    f("IQ2_S", F::IQ2_S, T::IQ2_XS),
    f("IQ2_M", F::IQ2_M, T::IQ2_S),
    f("IQ1_S", F::IQ1_S, T::IQ1_S),
    f("IQ1_M", F::IQ1_M, T::IQ1_M),
    f("TQ1_0", F::TQ1_0, T::TQ1_0),
    f("TQ2_0", F::TQ2_0, T::TQ2_0),
    f("Q2_K", F::Q2_K, T::Q2_K),
    f("Q2_K_S", F::Q2_K_S, T::Q2_K),
    f("IQ3_XXS", F::IQ3_XXS, T::IQ3_XXS),
    f("IQ3_S", F::IQ3_S, T::IQ3_S),
    f("IQ3_M", F::IQ3_M, T::IQ3_S),
    f("Q3_K", F::Q3_K_M, T::Q3_K),
    f("IQ3_XS", F::IQ3_XS, T::IQ3_S),
    f("Q3_K_S", F::Q3_K_S, T::Q3_K),
    f("Q3_K_M", F::Q3_K_M, T::Q3_K),
    f("Q3_K_L", F::Q3_K_L, T::Q3_K),
    f("IQ4_NL", F::IQ4_NL, T::IQ4_NL),
    f("IQ4_XS", F::IQ4_XS, T::IQ4_XS),
    f("Q4_K", F::Q4_K_M, T::Q4_K),
    f("Q4_K_S", F::Q4_K_S, T::Q4_K),
    f("Q4_K_M", F::Q4_K_M, T::Q4_K),
    f("Q5_K", F::Q5_K_M, T::Q5_K),
    f("Q5_K_S", F::Q5_K_S, T::Q5_K),
    f("Q5_K_M", F::Q5_K_M, T::Q5_K),
    f("Q6_K", F::Q6_K, T::Q6_K),
    f("Q8_0", F::Q8_0, T::Q8_0),
    f("F16", F::F16, T::F16),
    f("BF16", F::BF16, T::BF16),
    f("F32", F::ALL_F32, T::F32),
    // After F32, so that the number 0 names F32.
    f("COPY", F::ALL_F32, T::F32),
];

impl Ftype {
    /// `llama_ftype_get_default_type`.
    pub fn default_type(&self) -> GgmlType {
        self.default.ty()
    }

    /// `COPY`: every tensor copied as it is.
    pub fn is_copy(&self) -> bool {
        self.name == "COPY"
    }

    /// `try_parse_ftype`: a name (any case) or a number (`15`, as `std::stoi` reads it: leading
    /// blanks, a sign, digits, anything after ignored) naming the first option with that id.
    pub fn parse(s: &str) -> Option<Ftype> {
        if let Some(f) = FTYPES.iter().find(|f| f.name.eq_ignore_ascii_case(s)) {
            return Some(*f);
        }
        let t = s.trim_start();
        let (neg, rest) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() || neg {
            return None;
        }
        let n: u32 = digits.parse().ok()?;
        FTYPES.iter().find(|f| f.id == FtypeId(n)).copied()
    }
}
