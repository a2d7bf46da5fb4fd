//! What this CPU can do, probed once, and the two policies built on it.
//!
//! Two questions used to be mixed: which *fast kernel* may run (every SIMD kernel gives the bits of
//! its scalar port, so this only changes speed) and which *llama.cpp numerics* to imitate (ggml-cpu
//! compiled for this CPU runs its softmax on 16 lanes with AVX-512, its f16 vector arithmetic in half
//! precision with AVX512-FP16, ...; those change values, and pocket follows them to stay bit for bit
//! with llama.cpp on the same machine). Both now come from one [`Cpu`] value:
//!
//! - [`Cpu::level`] is the kernel level: the best of [`Level`] the CPU has, capped by the environment.
//! - [`Cpu::numerics`] says which of ggml's CPU-dependent code paths to imitate, derived from the same
//!   capped features, so `POCKET_CPU=avx2` on an AVX-512 machine runs as llama.cpp built for an AVX2
//!   machine would (kernels and numerics alike).
//!
//! `POCKET_CPU=scalar|avx2|avx512|avx512vnni|avx512fp16` (x86-64) or `scalar|neon|dotprod|i8mm`
//! (aarch64) caps the level: features above it are treated as absent. `POCKET_FORCE_SCALAR=1` is the
//! older spelling of `POCKET_CPU=scalar`. A cap above what the CPU has changes nothing (features are
//! never invented). Read once per process.

use std::sync::OnceLock;

/// Kernel levels, lowest first. A level implies every level below it on the same architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The scalar ports only (the oracles).
    Scalar,
    /// x86-64 with AVX2, FMA and F16C (ggml's AVX2 build).
    Avx2,
    /// AVX-512 F, BW, DQ and VL, without VNNI.
    Avx512,
    /// AVX-512 with VNNI (`vpdpbusd`).
    Avx512Vnni,
    /// AVX-512 with VNNI and FP16 arithmetic (Sapphire Rapids and later).
    Avx512Fp16,
    /// aarch64 NEON (every aarch64 CPU).
    Neon,
    /// NEON with the dot-product extension (`sdot`).
    Dotprod,
    /// NEON with dotprod and the int8 matrix multiply extension (`smmla`).
    I8mm,
}

impl Level {
    /// The stable lower-case name, as `POCKET_CPU` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
            Level::Avx512Vnni => "avx512vnni",
            Level::Avx512Fp16 => "avx512fp16",
            Level::Neon => "neon",
            Level::Dotprod => "dotprod",
            Level::I8mm => "i8mm",
        }
    }

    /// The level a `POCKET_CPU` value names, on this target.
    pub fn parse(s: &str) -> Option<Level> {
        let l = match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "none" | "generic" => Level::Scalar,
            "avx2" => Level::Avx2,
            "avx512" => Level::Avx512,
            "avx512vnni" | "vnni" => Level::Avx512Vnni,
            "avx512fp16" | "fp16" => Level::Avx512Fp16,
            "neon" => Level::Neon,
            "dotprod" => Level::Dotprod,
            "i8mm" => Level::I8mm,
            _ => return None,
        };
        let ok = match l {
            Level::Scalar => true,
            Level::Avx2 | Level::Avx512 | Level::Avx512Vnni | Level::Avx512Fp16 => {
                cfg!(target_arch = "x86_64")
            }
            Level::Neon | Level::Dotprod | Level::I8mm => cfg!(target_arch = "aarch64"),
        };
        ok.then_some(l)
    }

    /// Every level of this target, lowest first (what the tests run through).
    pub fn all() -> &'static [Level] {
        #[cfg(target_arch = "x86_64")]
        {
            &[
                Level::Scalar,
                Level::Avx2,
                Level::Avx512,
                Level::Avx512Vnni,
                Level::Avx512Fp16,
            ]
        }
        #[cfg(target_arch = "aarch64")]
        {
            &[Level::Scalar, Level::Neon, Level::Dotprod, Level::I8mm]
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            &[Level::Scalar]
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of ggml-cpu's CPU-dependent code paths llama.cpp runs on this CPU (as capped), so pocket
/// computes the same values. Each field names the ggml code it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Numerics {
    /// `ggml_vec_soft_max_f32`'s AVX-512 branch (AVX512F + AVX512DQ): `ggml_v_expf` on 16 values at a
    /// time, each 16 summed as `_mm512_reduce_add_ps`.
    pub avx512_softmax: bool,
    /// Its AVX2 + FMA branch: `ggml_v_expf` (the AVX2 form, another polynomial) on 8 values at a
    /// time, each 8 summed as a 128-bit horizontal add. Only where the AVX-512 branch is not taken.
    pub avx2_softmax: bool,
    /// `ggml_vec_mad_f16` / `ggml_vec_scale_f16` on `__m512h` vectors (AVX512-FP16 builds): the
    /// flash-attention accumulator's f16 arithmetic in half precision.
    pub fp16_arith: bool,
    /// The vector shape of ggml's f16 row code (`GGML_F16_STEP`, `GGML_F16_EPR` and the reduction
    /// of `ggml_vec_dot_f16`): the order in which attention's scores are summed.
    pub f16_vec: F16Vec,
}

/// The shape of ggml-cpu's f16 vector code for a class of CPU (`simd-mappings.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum F16Vec {
    /// No `GGML_SIMD`: plain loops, the dot product summed in double.
    #[default]
    Scalar,
    /// `__AVX__` (with F16C and FMA): 4 accumulators of 8 lanes, steps of 32 values; the lanes
    /// reduced as `GGML_F32x8_REDUCE` (halves added, then two horizontal adds).
    Avx,
    /// `__AVX512F__`: 4 accumulators of 16 lanes, steps of 64 values; `_mm512_reduce_add_ps`.
    Avx512,
    /// `__AVX512FP16__`: the multiply-adds and scales of rows in half precision, 32 lanes, steps of
    /// 128 values; the dot product as [`F16Vec::Avx512`] (f32 accumulators).
    Avx512Fp16,
}

impl F16Vec {
    /// `GGML_F16_STEP` of `ggml_vec_mad_f16` / `ggml_vec_scale_f16`: the values the vector code
    /// covers are the whole steps; the rest runs as scalar code.
    pub fn step(self) -> usize {
        match self {
            F16Vec::Scalar => 1,
            F16Vec::Avx => 32,
            F16Vec::Avx512 => 64,
            F16Vec::Avx512Fp16 => 128,
        }
    }
}

/// The CPU as pocket uses it: features detected once, capped by `POCKET_CPU`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    level: Level,
    /// The level the hardware has, before any cap.
    detected: Level,
    /// FMA without the rest of AVX2 (used for `mul_add`, same values either way).
    fma: bool,
}

impl Cpu {
    /// The kernel level in force.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The best level the hardware has.
    pub fn detected(&self) -> Level {
        self.detected
    }

    /// Whether the level in force is at least `l` (on the same architecture).
    pub fn at_least(&self, l: Level) -> bool {
        self.level >= l && same_arch(self.level, l)
    }

    /// Whether any SIMD kernel may run.
    pub fn simd(&self) -> bool {
        self.level != Level::Scalar
    }

    /// Whether the FMA instruction may be used where it gives the same values as the library call.
    pub fn fma(&self) -> bool {
        self.fma && self.simd()
    }

    /// Which llama.cpp numerics to imitate.
    pub fn numerics(&self) -> Numerics {
        // The scalar level and ARM keep the AVX-512 shape pocket has always used there: the scalar
        // level is the oracle of pocket's own SIMD kernels rather than an imitation of a llama.cpp
        // built without SIMD, and ARM's NEON f16 shape is not imitated yet.
        let f16_vec = if self.at_least(Level::Avx512Fp16) {
            F16Vec::Avx512Fp16
        } else if self.level == Level::Avx2 {
            F16Vec::Avx
        } else {
            F16Vec::Avx512
        };
        Numerics {
            avx512_softmax: self.at_least(Level::Avx512),
            avx2_softmax: self.at_least(Level::Avx2) && !self.at_least(Level::Avx512),
            fp16_arith: self.at_least(Level::Avx512Fp16),
            f16_vec,
        }
    }
}

fn same_arch(a: Level, b: Level) -> bool {
    let x86 = |l: Level| {
        matches!(
            l,
            Level::Avx2 | Level::Avx512 | Level::Avx512Vnni | Level::Avx512Fp16
        )
    };
    let arm = |l: Level| matches!(l, Level::Neon | Level::Dotprod | Level::I8mm);
    b == Level::Scalar || (x86(a) && x86(b)) || (arm(a) && arm(b))
}

/// The hardware's best level.
fn detect() -> (Level, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let fma = has!("fma");
        if !(has!("avx2") && fma && has!("f16c") && has!("avx")) {
            return (Level::Scalar, fma);
        }
        if !(has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl")) {
            return (Level::Avx2, fma);
        }
        if !has!("avx512vnni") {
            return (Level::Avx512, fma);
        }
        if !has!("avx512fp16") {
            return (Level::Avx512Vnni, fma);
        }
        (Level::Avx512Fp16, fma)
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        if !has!("neon") {
            return (Level::Scalar, false);
        }
        if !has!("dotprod") {
            return (Level::Neon, false);
        }
        if !has!("i8mm") {
            return (Level::Dotprod, false);
        }
        (Level::I8mm, false)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    (Level::Scalar, false)
}

/// The cap the environment asks for: `POCKET_CPU`, else `POCKET_FORCE_SCALAR` (set, not empty, not
/// `0`: scalar). An unknown `POCKET_CPU` value is reported once on stderr and ignored.
fn cap_from_env() -> Option<Level> {
    if let Some(v) = std::env::var_os("POCKET_CPU") {
        let v = v.to_string_lossy();
        if !v.is_empty() {
            match Level::parse(&v) {
                Some(l) => return Some(l),
                None => eprintln!(
                    "pocket: POCKET_CPU={v:?} is not a level of this CPU architecture ({}); ignored",
                    Level::all()
                        .iter()
                        .map(|l| l.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
    force_scalar(std::env::var_os("POCKET_FORCE_SCALAR").as_deref()).then_some(Level::Scalar)
}

/// Whether a `POCKET_FORCE_SCALAR` value asks for the scalar paths: set, not empty, not `0`.
fn force_scalar(v: Option<&std::ffi::OsStr>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v != "0")
}

/// The CPU with a cap applied: the lower of the two levels (a cap never adds features).
fn capped(detected: Level, fma: bool, cap: Option<Level>) -> Cpu {
    let level = match cap {
        Some(c) if c < detected => c,
        _ => detected,
    };
    Cpu {
        level,
        detected,
        fma,
    }
}

/// This process's CPU, probed on first use.
pub fn cpu() -> Cpu {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    *CPU.get_or_init(|| {
        let (detected, fma) = detect();
        capped(detected, fma, cap_from_env())
    })
}

/// Shorthand for `cpu().level()`.
pub fn level() -> Level {
    cpu().level()
}

/// Shorthand for `cpu().numerics()`.
pub fn numerics() -> Numerics {
    cpu().numerics()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_scalar_values() {
        use std::ffi::OsStr;
        assert!(!force_scalar(None));
        assert!(!force_scalar(Some(OsStr::new(""))));
        assert!(!force_scalar(Some(OsStr::new("0"))));
        assert!(force_scalar(Some(OsStr::new("1"))));
        assert!(force_scalar(Some(OsStr::new("yes"))));
    }

    #[test]
    fn a_cap_lowers_but_never_raises() {
        let top = *Level::all().last().unwrap();
        assert_eq!(
            capped(Level::Scalar, false, Some(top)).level(),
            Level::Scalar
        );
        for &l in Level::all() {
            let c = capped(top, true, Some(l));
            assert_eq!(c.level(), l);
            assert_eq!(c.detected(), top);
            assert_eq!(c.simd(), l != Level::Scalar);
        }
    }

    #[test]
    fn numerics_follow_the_capped_level() {
        if cfg!(target_arch = "x86_64") {
            let n = |l| capped(Level::Avx512Fp16, true, Some(l)).numerics();
            assert!(!n(Level::Scalar).avx512_softmax && !n(Level::Scalar).fp16_arith);
            assert!(!n(Level::Avx2).avx512_softmax && !n(Level::Avx2).fp16_arith);
            assert!(n(Level::Avx2).avx2_softmax && !n(Level::Scalar).avx2_softmax);
            assert!(!n(Level::Avx512).avx2_softmax);
            assert!(n(Level::Avx512).avx512_softmax && !n(Level::Avx512).fp16_arith);
            assert!(n(Level::Avx512Vnni).avx512_softmax && !n(Level::Avx512Vnni).fp16_arith);
            assert!(n(Level::Avx512Fp16).avx512_softmax && n(Level::Avx512Fp16).fp16_arith);
            assert_eq!(n(Level::Avx2).f16_vec, F16Vec::Avx);
            assert_eq!(n(Level::Scalar).f16_vec, F16Vec::Avx512);
            assert_eq!(n(Level::Avx512Vnni).f16_vec, F16Vec::Avx512);
            assert_eq!(n(Level::Avx512Fp16).f16_vec, F16Vec::Avx512Fp16);
        }
    }

    #[test]
    fn names_round_trip_on_this_target() {
        for &l in Level::all() {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse("AVX2").is_some(), cfg!(target_arch = "x86_64"));
        assert_eq!(
            Level::parse("i8mm").is_some(),
            cfg!(target_arch = "aarch64")
        );
        assert_eq!(Level::parse("sse9"), None);
    }
}
