//! Device profiles and what a model costs on one: memory (weights + KV cache from
//! [`crate::memory::estimate`] + compute buffers) against what an app may use, decode speed from the
//! memory bandwidth, and energy per token.
//!
//! Approximations, stated so they can be judged:
//! - Compute and output buffers: [`crate::compute_buffer`], llama.cpp's graph allocator's peak for
//!   one micro-batch with flash attention (its default), checked against its log lines.
//! - Decode is memory-bound: every weight read once per token (the token embedding only one row,
//!   unless it is tied to the output) plus the whole KV cache at the given context, at the share of
//!   the peak bandwidth fitted to published phone measurements for the phone (or, without any, its
//!   backend across phones), the runtime and the file's main weight type ([`super::calibration`];
//!   70% when the table has nothing). That is the burst figure: the table's runs are short.
//! - Weights as the runtime holds them: on Android llama.cpp's CPU backend builds interleaved
//!   copies of Q4_0, IQ4_NL, MXFP4, Q4_K, Q5_K, Q6_K and Q8_0 matrices (`ggml-cpu/repack.cpp`, ARM
//!   with dot-product instructions, rows a multiple of 4 or 8) in its own buffer; with the file
//!   mapped (llama.cpp's default) the mapped pages of those tensors stay resident beside the copy
//!   until the OS reclaims them, so the verdict counts both ([`repacked_bytes`]).
//! - Energy: anchored on an 8B model at ≈ 0.8 J/token (4.9 GB of Q4_K_M weights read per token) —
//!   MobileLLM's published prior of ≈ 0.1 J per token per billion parameters at 4 bits — and scaled
//!   by bytes moved per token.

use super::calibration::{self, Basis, Class, SpeedModel};
use crate::gguf::spec::GgmlType;
use crate::gguf::Gguf;
use crate::memory::{MemoryError, MemoryEstimate};

/// What runs the phone: decides how the runtime holds weights and what the OS lets an app keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// llama.cpp's ARM CPU backend repacks Q4_0 / IQ4_NL / Q4_K / Q2_K / Q8_0 weights into
    /// interleaved copies ([`repacked`]); with the file mapped, both stay resident.
    Android,
    /// Metal runs the mapped file itself (no repacked copy); jetsam kills an app at its limit.
    Ios,
    /// A single-board computer: one job, the OS takes ~1 GB.
    Linux,
}

impl Platform {
    pub fn name(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Linux => "linux",
        }
    }
}

/// A device the model may run on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProfile {
    /// Short id used on the command line (`iphone-16`).
    pub id: String,
    pub name: String,
    pub soc: String,
    pub platform: Platform,
    pub ram_bytes: u64,
    /// What one app may use before the OS kills it.
    pub app_bytes: u64,
    /// Peak memory bandwidth in bytes per second.
    pub bandwidth: f64,
    /// Battery energy in joules (`None` for mains-powered boards and phones whose battery the
    /// sources do not give).
    pub battery_joules: Option<f64>,
    /// Where the numbers come from.
    pub source: String,
}

const GB: f64 = 1e9;
const GIB: u64 = 1 << 30;
const WH: f64 = 3600.0;

#[allow(clippy::too_many_arguments)]
fn p(
    id: &str,
    name: &str,
    soc: &str,
    platform: Platform,
    ram_gib: f64,
    app_gib: f64,
    bw_gbs: f64,
    battery_wh: Option<f64>,
    source: &str,
) -> DeviceProfile {
    DeviceProfile {
        id: id.into(),
        name: name.into(),
        soc: soc.into(),
        platform,
        ram_bytes: (ram_gib * GIB as f64) as u64,
        app_bytes: (app_gib * GIB as f64) as u64,
        bandwidth: bw_gbs * GB,
        battery_joules: battery_wh.map(|w| w * WH),
        source: source.into(),
    }
}

/// Battery energy from a capacity at the 3.87 V typical of Li-ion phone cells.
fn mah(m: f64) -> Option<f64> {
    Some(m * 3.87 / 1000.0)
}

/// The built-in profiles.
///
/// App budgets: iOS kills an app at its jetsam limit; with the
/// `com.apple.developer.kernel.increased-memory-limit` entitlement (which an LLM app needs) apps on
/// 8 GB iPhones get about 6 GB, measured with `os_proc_available_memory()` (Apple developer docs,
/// "Increased Memory Limit" entitlement; developer-forum measurements); 12 GB iPhones are taken at
/// the same 75%. Android has no per-app cap on native memory; the low-memory killer reclaims the
/// foreground app when free memory runs out, and in practice about half of RAM is free for it on
/// 8–16 GB phones (the rest is the OS, GPU carve-outs and cached apps); less on 4 GB phones. Two
/// phones have published load failures (PocketPal's benchmark, see `calibration.tsv`), and their
/// budgets are set between the largest load that succeeded and the smallest that failed, in
/// llama.cpp buffers as pocket sizes them (`mmap` off, as the benchmark ran): Galaxy S23 (8 GB)
/// 3.43 GiB loaded, 3.73 GiB failed → 3.6 GiB; POCO X7 Pro (8 GB, 7.5 GiB visible) 4.04 GiB
/// loaded, 4.60 GiB failed → 4.25 GiB. Both are near half of RAM, as the rule of thumb says.
/// A Raspberry Pi runs one job: RAM minus ~1 GB for the OS.
///
/// Bandwidth: the memory standard's transfer rate times the bus (64 bits on every phone here) as
/// the SoC's specification gives it.
pub fn builtin() -> Vec<DeviceProfile> {
    use Platform::*;
    vec![
        // apple.com/iphone-15-pro/specs: A17 Pro, 8 GB (Apple does not publish RAM; teardowns agree),
        // LPDDR5-6400 on a 64-bit bus = 51.2 GB/s; battery 3274 mAh, 12.70 Wh (regulatory label).
        p("iphone-15-pro", "iPhone 15 Pro", "A17 Pro", Ios, 8.0, 6.0, 51.2, Some(12.70),
            "apple.com specs; A17 Pro LPDDR5-6400 ×64 bit; battery 12.70 Wh"),
        // apple.com/iphone-16/specs: A18, 8 GB LPDDR5X-7500 on 64 bits = 60 GB/s; battery 3561 mAh, 13.83 Wh.
        p("iphone-16", "iPhone 16", "A18", Ios, 8.0, 6.0, 60.0, Some(13.83),
            "apple.com specs; A18 LPDDR5X-7500 ×64 bit; battery 13.83 Wh"),
        // apple.com/iphone-16-pro/specs: A18 Pro, 8 GB LPDDR5X-7500 = 60 GB/s; battery 3582 mAh, 13.94 Wh.
        p("iphone-16-pro", "iPhone 16 Pro", "A18 Pro", Ios, 8.0, 6.0, 60.0, Some(13.94),
            "apple.com specs; A18 Pro LPDDR5X-7500 ×64 bit; battery 13.94 Wh"),
        // 12 GB: analyst Jeff Pu's report (en.5iter.com/keji/47236.html); A19 Pro LPDDR5X at
        // 9600 MT/s (inews.zoombangla.com/a19-pro-vs-a19-specs) ×64 bit = 76.8 GB/s. Battery not given.
        p("iphone-17-pro", "iPhone 17 Pro", "A19 Pro", Ios, 12.0, 9.0, 76.8, None,
            "12 GB (Jeff Pu, en.5iter.com/keji/47236.html); A19 Pro LPDDR5X-9600 ×64 bit (inews.zoombangla.com/a19-pro-vs-a19-specs)"),
        // store.google.com Pixel 8 tech specs: Tensor G3, 8 GB LPDDR5X (4266 MHz, 64-bit = 68.2 GB/s);
        // battery 4575 mAh typical at 3.87 V = 17.7 Wh.
        p("pixel-8", "Pixel 8", "Tensor G3", Android, 8.0, 4.0, 68.2, Some(17.7),
            "Google Pixel 8 specs; Tensor G3 LPDDR5X ×64 bit; 4575 mAh"),
        // Pixel 9: Tensor G4, 12 GB (ertas.ai/blog/llm-android-benchmarks-snapdragon-tensor chipset
        // table: "Tensor G4 | Pixel 9, 9 Pro | 12-16GB"); LPDDR5X as the Pixel 9 Pro; 4700 mAh.
        p("pixel-9", "Pixel 9", "Tensor G4", Android, 12.0, 6.0, 68.2, mah(4700.0),
            "Tensor G4 12 GB (ertas.ai chipset table); LPDDR5X-8533 ×64 bit; 4700 mAh"),
        // Pixel 9 Pro tech specs: Tensor G4, 16 GB LPDDR5X (68.2 GB/s); 4700 mAh = 18.2 Wh.
        p("pixel-9-pro", "Pixel 9 Pro", "Tensor G4", Android, 16.0, 8.0, 68.2, Some(18.2),
            "Google Pixel 9 Pro specs; Tensor G4 LPDDR5X ×64 bit; 4700 mAh"),
        // Pixel 10 Pro: Tensor G5 (TSMC 3 nm), 16 GB, 4870 mAh (repka.club 2025-07-01 leak of the
        // official specs; humenglish.com prototype: 16 GB). Google gives no memory speed: taken as
        // the Tensor G4's LPDDR5X-8533 (an assumption).
        p("pixel-10-pro", "Pixel 10 Pro", "Tensor G5", Android, 16.0, 8.0, 68.2, mah(4870.0),
            "16 GB, 4870 mAh (repka.club Pixel 10 Pro spec leak); bandwidth assumed as Tensor G4 LPDDR5X-8533"),
        // Galaxy S22 (US): Snapdragon 8 Gen 1, 8 GB LPDDR5-6400 ×64 bit = 51.2 GB/s; 3700 mAh.
        p("galaxy-s22", "Galaxy S22", "Snapdragon 8 Gen 1", Android, 8.0, 4.0, 51.2, mah(3700.0),
            "Samsung Galaxy S22 specs (8 GB, 3700 mAh); Snapdragon 8 Gen 1 LPDDR5-6400 ×64 bit"),
        // Galaxy S23: Snapdragon 8 Gen 2 for Galaxy, 8 GB; "LPDDR5X memory support up to 4,200MHz"
        // (wccftech.com/qualcomm-snapdragon-8-gen-2-goes-official) = 8400 MT/s ×64 bit = 67.2 GB/s;
        // 3900 mAh. App budget from PocketPal's load failures (see above).
        p("galaxy-s23", "Galaxy S23", "Snapdragon 8 Gen 2", Android, 8.0, 3.6, 67.2, mah(3900.0),
            "Samsung Galaxy S23 specs (8 GB, 3900 mAh); SD 8 Gen 2 LPDDR5X 4200 MHz (wccftech); app budget: PocketPal load failures"),
        // samsung.com Galaxy S24 specs: 8 GB LPDDR5X (Exynos 2400 / Snapdragon 8 Gen 3: 8533 MT/s,
        // 64-bit = 68.3 GB/s); 4000 mAh = 15.4 Wh.
        p("galaxy-s24", "Galaxy S24", "Snapdragon 8 Gen 3 / Exynos 2400", Android, 8.0, 4.0, 68.3, Some(15.4),
            "Samsung Galaxy S24 specs; LPDDR5X-8533 ×64 bit; 4000 mAh"),
        // Galaxy S24 Ultra: 12 GB LPDDR5X, Snapdragon 8 Gen 3 for Galaxy (qualcomm.com: LPDDR5X up to
        // 4800 MHz, 76.8 GB/s); 5000 mAh = 19.4 Wh.
        p("galaxy-s24-ultra", "Galaxy S24 Ultra", "Snapdragon 8 Gen 3", Android, 12.0, 6.0, 76.8, Some(19.4),
            "Samsung Galaxy S24 Ultra specs; Snapdragon 8 Gen 3 LPDDR5X-9600; 5000 mAh"),
        // Galaxy S25: Snapdragon 8 Elite for Galaxy, 12 GB; "dual-channel LPDDR5X-5300"
        // (hi-tech.ua, Snapdragon 8 Elite announcement) = 10600 MT/s ×64 bit = 84.8 GB/s; 4000 mAh.
        p("galaxy-s25", "Galaxy S25", "Snapdragon 8 Elite", Android, 12.0, 6.0, 84.8, mah(4000.0),
            "Samsung Galaxy S25 specs (12 GB, 4000 mAh); SD 8 Elite LPDDR5X-5300 MHz (hi-tech.ua)"),
        // OnePlus 12 (16 GB, as ExecuTorch's Llama README measured it): Snapdragon 8 Gen 3, "LPDDR5X
        // RAM with up to 4800MHz" (droidholic.com/snapdragon-8-gen-3-launched) = 76.8 GB/s; 5400 mAh.
        p("oneplus-12", "OnePlus 12 (16 GB)", "Snapdragon 8 Gen 3", Android, 16.0, 8.0, 76.8, mah(5400.0),
            "OnePlus 12 16 GB (ExecuTorch llama README); SD 8 Gen 3 LPDDR5X 4800 MHz (droidholic.com); 5400 mAh"),
        // POCO X9 Pro ("Myron" in PocketPal's benchmark): Snapdragon 8 Elite Gen 5, "LPDDR5x memory,
        // running at a maximum speed of 5,300MHz" (lowyat.net) = 84.8 GB/s. RAM not in the source:
        // 12 GB assumed. Battery not given.
        p("poco-x9-pro", "POCO X9 Pro", "Snapdragon 8 Elite Gen 5", Android, 12.0, 6.0, 84.8, None,
            "SoC: PocketPal bench (poco-myron.json); SD 8 Elite Gen 5 LPDDR5X 5300 MHz (lowyat.net); 12 GB assumed"),
        // POCO X7 Pro ("Klee"): Dimensity 8400-Ultra (MT6899), 8 GB (PocketPal: "7.5 GiB device"),
        // "LPDDR5x-8533 4x 16-bit @ 4266 MHz (68.2 GB/s)" (nextpit.com Dimensity 8400 table).
        // App budget from PocketPal's load failures (see above). Battery not given.
        p("poco-x7-pro", "POCO X7 Pro", "Dimensity 8400 (MT6899)", Android, 8.0, 4.25, 68.2, None,
            "PocketPal bench (poco-x7-klee.json, 7.5 GiB); Dimensity 8400 LPDDR5X-8533 ×64 bit (nextpit.com)"),
        // A Snapdragon 7+ Gen 3 phone (e.g. OnePlus Nord 4), 8 GB: "LPDDR5x-8400 4x 16-bit @ 4200 MHz
        // (67.2 GB/s)" (nextpit.com Dimensity 8400 comparison table); 5000 mAh typical of the class.
        p("snapdragon-7-plus-gen-3", "Snapdragon 7+ Gen 3 phone, 8 GB", "Snapdragon 7+ Gen 3", Android, 8.0, 4.0, 67.2, mah(5000.0),
            "SD 7+ Gen 3 LPDDR5X-8400 ×64 bit (nextpit.com table); 8 GB / 5000 mAh class"),
        // A Dimensity 8300 phone (e.g. POCO X6 Pro), 8 GB: "LPDDR5x-8533 4x 16-bit @ 4266 MHz
        // (68.2 GB/s)" (nextpit.com table); 5000 mAh typical of the class.
        p("dimensity-8300", "Dimensity 8300 phone, 8 GB", "Dimensity 8300", Android, 8.0, 4.0, 68.2, mah(5000.0),
            "Dimensity 8300 LPDDR5X-8533 ×64 bit (nextpit.com table); 8 GB / 5000 mAh class"),
        // A 4 GB budget phone (e.g. Galaxy A05, MediaTek Helio G85: LPDDR4X-3600 on 32 bits = 14.4 GB/s
        // per mediatek.com); Android with 4 GB leaves ~1.5 GB to the foreground app; 5000 mAh = 19.3 Wh.
        p("budget-android-4gb", "Budget Android, 4 GB (Helio G85 class)", "Helio G85", Android, 4.0, 1.5, 14.4, Some(19.3),
            "MediaTek Helio G85 LPDDR4X ×32 bit; typical 4 GB / 5000 mAh budget phone"),
        // raspberrypi.com Raspberry Pi 5 product brief: 8 GB LPDDR4X-4267 on a 32-bit bus = 17.1 GB/s;
        // mains powered (no battery).
        p("raspberry-pi-5-8gb", "Raspberry Pi 5, 8 GB", "BCM2712", Linux, 8.0, 7.0, 17.1, None,
            "Raspberry Pi 5 product brief; LPDDR4X-4267 ×32 bit"),
    ]
}

pub fn find(id: &str) -> Option<DeviceProfile> {
    let want = id.to_ascii_lowercase().replace([' ', '_'], "-");
    builtin()
        .into_iter()
        .find(|d| d.id == want || d.name.to_ascii_lowercase().replace(' ', "-") == want)
}

/// A profile from a file: JSON (`{"name": ..., "ram_gb": 8, "app_gb": 5, "bandwidth_gbs": 60,
/// "battery_wh": 15}`) or flat TOML with the same keys (`ram_gb = 8`). GB here are GiB for RAM (as
/// phones are sold) and 10^9 bytes/s for bandwidth. `battery_wh` may be left out.
pub fn from_text(text: &str, fallback_id: &str) -> Result<DeviceProfile, String> {
    let trimmed = text.trim_start();
    let mut map = std::collections::HashMap::new();
    if trimmed.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let obj = v.as_object().ok_or("the JSON is not an object")?;
        for (k, x) in obj {
            let s = match x {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            map.insert(k.clone(), s);
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with('[') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected `key = value`", n + 1))?;
            map.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
    }
    let get = |k: &str| map.get(k).cloned();
    let num = |k: &str, required: bool| -> Result<Option<f64>, String> {
        match get(k) {
            None if required => Err(format!("'{k}' is missing")),
            None => Ok(None),
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .map(Some)
                .ok_or_else(|| format!("'{k}' = {s} is not a positive number")),
        }
    };
    let ram = num("ram_gb", true)?.unwrap_or(0.0);
    let app = num("app_gb", false)?.unwrap_or(ram * 0.5);
    if app > ram {
        return Err(format!("app_gb {app} is more than ram_gb {ram}"));
    }
    let bw = num("bandwidth_gbs", true)?.unwrap_or(0.0);
    let battery = num("battery_wh", false)?;
    let name = get("name").unwrap_or_else(|| fallback_id.to_string());
    let platform = match get("platform").as_deref() {
        None | Some("android") => Platform::Android,
        Some("ios") => Platform::Ios,
        Some("linux") => Platform::Linux,
        Some(o) => return Err(format!("'platform' = {o} is not android, ios or linux")),
    };
    let mut d = p(
        &get("id").unwrap_or_else(|| fallback_id.to_string()),
        &name,
        &get("soc").unwrap_or_default(),
        platform,
        ram,
        app,
        bw,
        battery,
        &get("source").unwrap_or_else(|| "custom profile".into()),
    );
    d.id = d.id.to_ascii_lowercase();
    Ok(d)
}

/// How well a model fits a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fits,
    Tight,
    DoesNotFit,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Fits => "fits",
            Verdict::Tight => "tight",
            Verdict::DoesNotFit => "does not fit",
        }
    }
}

/// Above this share of the app budget the verdict is "tight": the app's own UI, the OS's reclaim
/// and fragmentation take the rest.
pub const TIGHT_SHARE: f64 = 0.8;
/// Share of peak bandwidth decoding reaches.
pub const BANDWIDTH_EFFICIENCY: f64 = 0.7;
/// Anchor: an 8B model (Q4_K_M, ≈ 4.9 GB read per token) costs ≈ 0.8 J per token.
pub const ANCHOR_JOULES: f64 = 0.8;
pub const ANCHOR_BYTES: f64 = 4.9e9;
/// A phone battery when the profile has none (≈ 50 kJ, ~14 Wh).
pub const DEFAULT_BATTERY_J: f64 = 50e3;
/// Tokens per second the battery estimate assumes.
pub const TOKENS_PER_SECOND: f64 = 10.0;

/// The cost of running a model on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEstimate {
    pub device: DeviceProfile,
    pub memory: MemoryEstimate,
    /// llama.cpp's `CPU compute buffer size`.
    pub compute_bytes: u64,
    /// llama.cpp's `CPU output buffer size` (the logits of one token).
    pub output_bytes: u64,
    /// The repacked copies llama.cpp's CPU backend builds on this platform (0 off Android).
    pub repacked_bytes: u64,
    pub total_bytes: u64,
    pub verdict: Verdict,
    pub bytes_per_token: u64,
    /// The runtime the speed is for (`llama.cpp-cpu` on Android and boards, `llama.cpp-metal` on iOS).
    pub backend: String,
    /// The weight class most bytes read per token are in.
    pub class: Class,
    /// The share of peak bandwidth used, and which part of the calibration table it comes from.
    pub efficiency: f64,
    pub basis: Basis,
    pub tokens_per_second: f64,
    pub joules_per_token: f64,
    /// Hours of generation at 10 tokens/s on a full battery (`None` without a battery).
    pub battery_hours: Option<f64>,
    pub notes: Vec<String>,
}

/// Fits under [`TIGHT_SHARE`] of what the app may use, tight up to all of it, else does not fit.
pub fn verdict(total: u64, app_bytes: u64) -> Verdict {
    if total as f64 <= TIGHT_SHARE * app_bytes as f64 {
        Verdict::Fits
    } else if total <= app_bytes {
        Verdict::Tight
    } else {
        Verdict::DoesNotFit
    }
}

/// The runtime pocket predicts for on a platform.
pub fn default_backend(p: Platform) -> &'static str {
    match p {
        Platform::Android | Platform::Linux => "llama.cpp-cpu",
        Platform::Ios => "llama.cpp-metal",
    }
}

/// Whether llama.cpp's ARM CPU backend (with dot-product instructions, every phone SoC since
/// 2019) keeps an interleaved copy of a weight of type `ty` with `ne1` rows
/// (`ggml_repack_get_optimal_repack_type` in `ggml-cpu/repack.cpp`). The token embedding is read
/// by row lookups, not matrix products, and stays in the plain buffer.
pub fn is_repacked_on_arm(name: &str, ty: GgmlType, ne1: u64) -> bool {
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return false;
    }
    match ty.name {
        "q4_0" | "iq4_nl" | "mxfp4" | "q8_0" | "q1_0" => ne1.is_multiple_of(4),
        "q4_K" | "q5_K" | "q6_K" => ne1.is_multiple_of(8),
        _ => false,
    }
}

/// Whether the tensor `name` (of a model whose output matrix is the token embedding when
/// `tied_output`) gets a repacked copy on ARM: a tied token embedding is loaded again as the output
/// matrix, which the CPU backend repacks like any other matrix.
pub fn repacked_as(name: &str, tied_output: bool, ty: GgmlType, rows: u64) -> bool {
    let as_output = if name == "token_embd.weight" && tied_output {
        "output.weight"
    } else {
        name
    };
    is_repacked_on_arm(as_output, ty, rows)
}

/// Bytes of the repacked copies of `tensors` (name, type, shape in ggml order, bytes).
pub fn repacked_bytes<'t>(
    tensors: impl IntoIterator<Item = (&'t str, GgmlType, &'t [u64], u64)>,
) -> u64 {
    tensors
        .into_iter()
        .filter(|(n, ty, dims, _)| {
            dims.len() >= 2 && is_repacked_on_arm(n, *ty, dims.get(1).copied().unwrap_or(1))
        })
        .map(|(_, _, _, b)| b)
        .sum()
}

/// The speed model fitted to the built-in calibration table, fitted once.
pub fn speed_model() -> &'static SpeedModel {
    static M: std::sync::OnceLock<SpeedModel> = std::sync::OnceLock::new();
    // The committed table is checked by tests/calibration.rs; were it unreadable, every
    // prediction falls back to the 70% prior.
    M.get_or_init(|| calibration::fitted().unwrap_or_default())
}

/// The class of the largest share of `tensors` (type, bytes read per token), F32 left out.
pub fn main_class(read: &[(GgmlType, u64)]) -> Class {
    let mut by: Vec<(Class, u64)> = Vec::new();
    for (t, b) in read {
        if t.name == "f32" {
            continue;
        }
        let c = Class::of(*t);
        match by.iter_mut().find(|e| e.0 == c) {
            Some(e) => e.1 += b,
            None => by.push((c, *b)),
        }
    }
    by.into_iter()
        .max_by_key(|e| e.1)
        .map(|e| e.0)
        .unwrap_or(Class::Float)
}

/// What the estimate needs of the model's weights.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    /// All shards' tensor bytes.
    pub bytes: u64,
    /// The token embedding's rows and bytes.
    pub embd: Option<(u64, u64)>,
    /// No separate `output.weight`: the embedding is read whole as the output matrix.
    pub tied_output: bool,
    /// Bytes read per decoded token by type (the token embedding one row when untied).
    pub read_by_type: Vec<(GgmlType, u64)>,
    /// Bytes llama.cpp's ARM CPU backend repacks ([`repacked_bytes`]).
    pub repackable: u64,
}

impl Weights {
    /// From tensor infos (all shards).
    pub fn of<'a, 'b: 'a, I>(tensors: I) -> Weights
    where
        I: IntoIterator<Item = &'a crate::gguf::TensorInfo<'b>> + Clone,
    {
        let parts: Vec<(&str, GgmlType, &[u64], u64)> = tensors
            .into_iter()
            .map(|t| (t.name, t.ty, &t.dims[..], t.n_bytes))
            .collect();
        Weights::from_parts(parts)
    }

    /// From each tensor's name, type, shape (ggml order) and bytes: a file's, or a plan's before
    /// it is written (`pocket requantize --fit`).
    pub fn from_parts<'t, I>(tensors: I) -> Weights
    where
        I: IntoIterator<Item = (&'t str, GgmlType, &'t [u64], u64)> + Clone,
    {
        let tied_output = !tensors
            .clone()
            .into_iter()
            .any(|(name, ..)| name == "output.weight");
        let mut w = Weights {
            tied_output,
            ..Weights::default()
        };
        for (name, ty, dims, n_bytes) in tensors {
            w.bytes = w.bytes.saturating_add(n_bytes);
            let rows = dims.get(1).copied().unwrap_or(1).max(1);
            let read = if name == "token_embd.weight" {
                w.embd = Some((rows, n_bytes));
                if tied_output {
                    n_bytes
                } else {
                    n_bytes / rows
                }
            } else {
                n_bytes
            };
            match w.read_by_type.iter_mut().find(|e| e.0.id == ty.id) {
                Some(e) => e.1 = e.1.saturating_add(read),
                None => w.read_by_type.push((ty, read)),
            }
            if dims.len() >= 2 && repacked_as(name, tied_output, ty, rows) {
                w.repackable = w.repackable.saturating_add(n_bytes);
            }
        }
        w
    }

    fn read_bytes(&self) -> u64 {
        self.read_by_type.iter().map(|e| e.1).sum()
    }
}

/// Estimates the model (first shard `g`, the weights of all shards `w`) on `device` at `n_ctx`.
pub fn estimate(
    g: &Gguf<'_>,
    w: &Weights,
    device: &DeviceProfile,
    n_ctx: u64,
) -> Result<DeviceEstimate, MemoryError> {
    let mem = crate::memory::estimate(g, w.bytes, n_ctx)?;
    // The compute and output buffers as llama.cpp sizes them (crate::compute_buffer).
    let cb = crate::compute_buffer::estimate(g, &mem, w.embd.map(|(rows, _)| rows));
    let ub = cb.n_tokens;
    let compute = cb.compute_bytes;
    let repacked = if device.platform == Platform::Android {
        w.repackable
    } else {
        0
    };
    let total = mem
        .total_bytes
        .saturating_add(compute)
        .saturating_add(cb.output_bytes)
        .saturating_add(repacked);
    let verdict = verdict(total, device.app_bytes);
    let bytes_per_token = w
        .read_bytes()
        .saturating_add(mem.kv_bytes)
        .saturating_add(mem.recurrent_state_bytes);
    let backend = default_backend(device.platform);
    let class = main_class(&w.read_by_type);
    let (eff, basis) = speed_model().efficiency(&device.id, backend, class);
    let tps = device.bandwidth * eff / bytes_per_token.max(1) as f64;
    let jpt = ANCHOR_JOULES * bytes_per_token as f64 / ANCHOR_BYTES;
    let battery_hours = device
        .battery_joules
        .map(|b| b / (jpt * TOKENS_PER_SECOND) / 3600.0);
    let mut notes = mem.notes.clone();
    notes.extend(cb.notes.iter().cloned());
    notes.push(format!(
        "compute buffers as llama.cpp's graph allocator sizes them for a {ub}-token ubatch with flash attention (its default)"
    ));
    if repacked > 0 {
        notes.push(format!(
            "llama.cpp's CPU backend on Android keeps repacked copies of {:.2} GiB of these weights beside the mapped file (without mmap, the copies replace those pages)",
            repacked as f64 / GIB as f64
        ));
    }
    notes.push(match basis {
        Basis::PhoneBackendClass(n) => format!(
            "decode speed at {:.0}% of peak bandwidth: fitted to {n} published {backend} measurement(s) of {} weights on this phone",
            eff * 100.0,
            class.name()
        ),
        Basis::PhoneBackend(n) => format!(
            "decode speed at {:.0}% of peak bandwidth: fitted to {n} published {backend} measurement(s) on this phone (none of {} weights)",
            eff * 100.0,
            class.name()
        ),
        Basis::Backend(n) => format!(
            "decode speed at {:.0}% of peak bandwidth: the median of {n} published {backend} measurements on other phones (none on this one)",
            eff * 100.0
        ),
        Basis::Prior => format!(
            "decode speed at {:.0}% of peak bandwidth: no published {backend} measurement to fit, the prior",
            eff * 100.0
        ),
    });
    if tps < TOKENS_PER_SECOND {
        notes.push(format!(
            "decoding at ~{tps:.1} tokens/s cannot sustain the {TOKENS_PER_SECOND} tokens/s the battery estimate assumes"
        ));
    }
    Ok(DeviceEstimate {
        device: device.clone(),
        memory: mem,
        compute_bytes: compute,
        output_bytes: cb.output_bytes,
        repacked_bytes: repacked,
        total_bytes: total,
        verdict,
        bytes_per_token,
        backend: backend.to_string(),
        class,
        efficiency: eff,
        basis,
        tokens_per_second: tps,
        joules_per_token: jpt,
        battery_hours,
        notes,
    })
}
