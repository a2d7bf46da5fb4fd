//! llama-quantize's file types: the names it accepts (`QUANT_OPTIONS` in `tools/quantize/quantize.cpp`),
//! their `llama_ftype` ids (`general.file_type`) and default tensor type
//! (`llama_ftype_get_default_type` in `src/llama-quant.cpp`).

use crate::gguf::spec::{ggml_type_by_name, GgmlType};

/// One of llama-quantize's type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ftype {
    /// The name as llama-quantize lists it (`Q4_K_M`, `COPY`).
    pub name: &'static str,
    /// `llama_ftype`, written as `general.file_type`.
    pub id: u32,
    /// ggml's name of the default tensor type (`q4_K`).
    default: &'static str,
}

pub const Q1_0: u32 = 40;
pub const Q2_0: u32 = 41;
pub const Q4_0: u32 = 2;
pub const Q4_1: u32 = 3;
pub const MXFP4_MOE: u32 = 38;
pub const Q5_0: u32 = 8;
pub const Q5_1: u32 = 9;
pub const IQ2_XXS: u32 = 19;
pub const IQ2_XS: u32 = 20;
pub const IQ2_S: u32 = 28;
pub const IQ2_M: u32 = 29;
pub const IQ1_S: u32 = 24;
pub const IQ1_M: u32 = 31;
pub const TQ1_0: u32 = 36;
pub const TQ2_0: u32 = 37;
pub const Q2_K: u32 = 10;
pub const Q2_K_S: u32 = 21;
pub const IQ3_XXS: u32 = 23;
pub const IQ3_S: u32 = 26;
pub const IQ3_M: u32 = 27;
pub const IQ3_XS: u32 = 22;
pub const Q3_K_S: u32 = 11;
pub const Q3_K_M: u32 = 12;
pub const Q3_K_L: u32 = 13;
pub const IQ4_NL: u32 = 25;
pub const IQ4_XS: u32 = 30;
pub const Q4_K_S: u32 = 14;
pub const Q4_K_M: u32 = 15;
pub const Q5_K_S: u32 = 16;
pub const Q5_K_M: u32 = 17;
pub const Q6_K: u32 = 18;
pub const Q8_0: u32 = 7;
pub const F16: u32 = 1;
pub const BF16: u32 = 32;
pub const ALL_F32: u32 = 0;
/// Flag llama.cpp adds to a file type it guessed from the tensor types.
pub const GUESSED: u32 = 1024;

const fn f(name: &'static str, id: u32, default: &'static str) -> Ftype {
    Ftype { name, id, default }
}

/// `QUANT_OPTIONS`, in llama-quantize's order (which decides what a number names: the first match).
pub static FTYPES: [Ftype; 39] = [
    f("Q1_0", Q1_0, "q1_0"),
    f("Q2_0", Q2_0, "q2_0"),
    f("Q4_0", Q4_0, "q4_0"),
    f("Q4_1", Q4_1, "q4_1"),
    f("MXFP4_MOE", MXFP4_MOE, "mxfp4"),
    f("Q5_0", Q5_0, "q5_0"),
    f("Q5_1", Q5_1, "q5_1"),
    f("IQ2_XXS", IQ2_XXS, "iq2_xxs"),
    f("IQ2_XS", IQ2_XS, "iq2_xs"),
    f("IQ2_S", IQ2_S, "iq2_xs"),
    f("IQ2_M", IQ2_M, "iq2_s"),
    f("IQ1_S", IQ1_S, "iq1_s"),
    f("IQ1_M", IQ1_M, "iq1_m"),
    f("TQ1_0", TQ1_0, "tq1_0"),
    f("TQ2_0", TQ2_0, "tq2_0"),
    f("Q2_K", Q2_K, "q2_K"),
    f("Q2_K_S", Q2_K_S, "q2_K"),
    f("IQ3_XXS", IQ3_XXS, "iq3_xxs"),
    f("IQ3_S", IQ3_S, "iq3_s"),
    f("IQ3_M", IQ3_M, "iq3_s"),
    f("Q3_K", Q3_K_M, "q3_K"),
    f("IQ3_XS", IQ3_XS, "iq3_s"),
    f("Q3_K_S", Q3_K_S, "q3_K"),
    f("Q3_K_M", Q3_K_M, "q3_K"),
    f("Q3_K_L", Q3_K_L, "q3_K"),
    f("IQ4_NL", IQ4_NL, "iq4_nl"),
    f("IQ4_XS", IQ4_XS, "iq4_xs"),
    f("Q4_K", Q4_K_M, "q4_K"),
    f("Q4_K_S", Q4_K_S, "q4_K"),
    f("Q4_K_M", Q4_K_M, "q4_K"),
    f("Q5_K", Q5_K_M, "q5_K"),
    f("Q5_K_S", Q5_K_S, "q5_K"),
    f("Q5_K_M", Q5_K_M, "q5_K"),
    f("Q6_K", Q6_K, "q6_K"),
    f("Q8_0", Q8_0, "q8_0"),
    f("F16", F16, "f16"),
    f("BF16", BF16, "bf16"),
    f("F32", ALL_F32, "f32"),
    // After F32, so that the number 0 names F32.
    f("COPY", ALL_F32, "f32"),
];

impl Ftype {
    /// `llama_ftype_get_default_type`.
    pub fn default_type(&self) -> GgmlType {
        ggml_type_by_name(self.default).expect("every default type is in the type table")
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
        FTYPES.iter().find(|f| f.id == n).copied()
    }
}
