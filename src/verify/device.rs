//! Device profiles and what a model costs on one: memory (weights + KV cache from
//! [`crate::memory::estimate`] + compute buffers) against what an app may use, decode speed from the
//! memory bandwidth, and energy per token.
//!
//! Approximations, stated so they can be judged:
//! - Compute and output buffers: [`crate::compute_buffer`], llama.cpp's graph allocator's peak for
//!   one micro-batch with flash attention (its default), checked against its log lines.
//! - Decode is memory-bound: every weight read once per token (the token embedding only one row,
//!   unless it is tied to the output) plus the whole KV cache at the given context, at 70% of the
//!   peak bandwidth (what llama.cpp reaches on phones in published measurements is 50–80%).
//! - Energy: anchored on an 8B model at ≈ 0.8 J/token (4.9 GB of Q4_K_M weights read per token) and
//!   scaled by bytes moved per token; a phone battery ≈ 50 kJ when a profile gives none.

use crate::gguf::Gguf;
use crate::memory::{MemoryError, MemoryEstimate};

/// A device the model may run on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProfile {
    /// Short id used on the command line (`iphone-16`).
    pub id: String,
    pub name: String,
    pub ram_bytes: u64,
    /// What one app may use before the OS kills it.
    pub app_bytes: u64,
    /// Peak memory bandwidth in bytes per second.
    pub bandwidth: f64,
    /// Battery energy in joules (`None` for mains-powered boards).
    pub battery_joules: Option<f64>,
    /// Where the numbers come from.
    pub source: String,
}

const GB: f64 = 1e9;
const GIB: u64 = 1 << 30;
const WH: f64 = 3600.0;

fn p(
    id: &str,
    name: &str,
    ram_gib: f64,
    app_gib: f64,
    bw_gbs: f64,
    battery_wh: Option<f64>,
    source: &str,
) -> DeviceProfile {
    DeviceProfile {
        id: id.into(),
        name: name.into(),
        ram_bytes: (ram_gib * GIB as f64) as u64,
        app_bytes: (app_gib * GIB as f64) as u64,
        bandwidth: bw_gbs * GB,
        battery_joules: battery_wh.map(|w| w * WH),
        source: source.into(),
    }
}

/// The built-in profiles.
///
/// App budgets: iOS kills an app at its jetsam limit; with the
/// `com.apple.developer.kernel.increased-memory-limit` entitlement (which an LLM app needs) apps on
/// 8 GB iPhones get about 6 GB, measured with `os_proc_available_memory()` (Apple developer docs,
/// "Increased Memory Limit" entitlement; developer-forum measurements). Android has no per-app cap on
/// native memory; the low-memory killer reclaims the foreground app when free memory runs out, and in
/// practice about half of RAM is free for it on 8–16 GB phones (the rest is the OS, GPU carve-outs and
/// cached apps); less on 4 GB phones. A Raspberry Pi runs one job: RAM minus ~1 GB for the OS.
pub fn builtin() -> Vec<DeviceProfile> {
    vec![
        // apple.com/iphone-15-pro/specs: A17 Pro, 8 GB (Apple does not publish RAM; teardowns agree),
        // LPDDR5-6400 on a 64-bit bus = 51.2 GB/s; battery 3274 mAh, 12.70 Wh (regulatory label).
        p(
            "iphone-15-pro",
            "iPhone 15 Pro",
            8.0,
            6.0,
            51.2,
            Some(12.70),
            "apple.com specs; A17 Pro LPDDR5-6400 ×64 bit; battery 12.70 Wh",
        ),
        // apple.com/iphone-16/specs: A18, 8 GB LPDDR5X-7500 on 64 bits = 60 GB/s; battery 3561 mAh, 13.83 Wh.
        p(
            "iphone-16",
            "iPhone 16",
            8.0,
            6.0,
            60.0,
            Some(13.83),
            "apple.com specs; A18 LPDDR5X-7500 ×64 bit; battery 13.83 Wh",
        ),
        // apple.com/iphone-16-pro/specs: A18 Pro, 8 GB LPDDR5X-7500 = 60 GB/s; battery 3582 mAh, 13.94 Wh.
        p(
            "iphone-16-pro",
            "iPhone 16 Pro",
            8.0,
            6.0,
            60.0,
            Some(13.94),
            "apple.com specs; A18 Pro LPDDR5X-7500 ×64 bit; battery 13.94 Wh",
        ),
        // store.google.com Pixel 8 tech specs: Tensor G3, 8 GB LPDDR5X (4266 MHz, 64-bit = 68.2 GB/s);
        // battery 4575 mAh typical at 3.87 V = 17.7 Wh.
        p(
            "pixel-8",
            "Pixel 8",
            8.0,
            4.0,
            68.2,
            Some(17.7),
            "Google Pixel 8 specs; Tensor G3 LPDDR5X ×64 bit; 4575 mAh",
        ),
        // Pixel 9 Pro tech specs: Tensor G4, 16 GB LPDDR5X (68.2 GB/s); 4700 mAh = 18.2 Wh.
        p(
            "pixel-9-pro",
            "Pixel 9 Pro",
            16.0,
            8.0,
            68.2,
            Some(18.2),
            "Google Pixel 9 Pro specs; Tensor G4 LPDDR5X ×64 bit; 4700 mAh",
        ),
        // samsung.com Galaxy S24 specs: 8 GB LPDDR5X (Exynos 2400 / Snapdragon 8 Gen 3: 8533 MT/s,
        // 64-bit = 68.3 GB/s); 4000 mAh = 15.4 Wh.
        p(
            "galaxy-s24",
            "Galaxy S24",
            8.0,
            4.0,
            68.3,
            Some(15.4),
            "Samsung Galaxy S24 specs; LPDDR5X-8533 ×64 bit; 4000 mAh",
        ),
        // Galaxy S24 Ultra: 12 GB LPDDR5X, Snapdragon 8 Gen 3 for Galaxy (qualcomm.com: LPDDR5X up to
        // 4800 MHz, 76.8 GB/s); 5000 mAh = 19.4 Wh.
        p(
            "galaxy-s24-ultra",
            "Galaxy S24 Ultra",
            12.0,
            6.0,
            76.8,
            Some(19.4),
            "Samsung Galaxy S24 Ultra specs; Snapdragon 8 Gen 3 LPDDR5X-9600; 5000 mAh",
        ),
        // A 4 GB budget phone (e.g. Galaxy A05, MediaTek Helio G85: LPDDR4X-3600 on 32 bits = 14.4 GB/s
        // per mediatek.com); Android with 4 GB leaves ~1.5 GB to the foreground app; 5000 mAh = 19.3 Wh.
        p(
            "budget-android-4gb",
            "Budget Android, 4 GB (Helio G85 class)",
            4.0,
            1.5,
            14.4,
            Some(19.3),
            "MediaTek Helio G85 LPDDR4X ×32 bit; typical 4 GB / 5000 mAh budget phone",
        ),
        // raspberrypi.com Raspberry Pi 5 product brief: 8 GB LPDDR4X-4267 on a 32-bit bus = 17.1 GB/s;
        // mains powered (no battery).
        p(
            "raspberry-pi-5-8gb",
            "Raspberry Pi 5, 8 GB",
            8.0,
            7.0,
            17.1,
            None,
            "Raspberry Pi 5 product brief; LPDDR4X-4267 ×32 bit",
        ),
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
    let mut d = p(
        &get("id").unwrap_or_else(|| fallback_id.to_string()),
        &name,
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
    pub total_bytes: u64,
    pub verdict: Verdict,
    pub bytes_per_token: u64,
    pub tokens_per_second: f64,
    pub joules_per_token: f64,
    /// Hours of generation at 10 tokens/s on a full battery (`None` without a battery).
    pub battery_hours: Option<f64>,
    pub notes: Vec<String>,
}

/// Estimates the model (first shard `g`, all shards' tensor bytes `weights_bytes`, the token
/// embedding's bytes `embd_bytes`, whether a separate `output.weight` exists) on `device` at `n_ctx`.
pub fn estimate(
    g: &Gguf<'_>,
    weights_bytes: u64,
    embd: Option<(u64, u64)>,
    tied_output: bool,
    device: &DeviceProfile,
    n_ctx: u64,
) -> Result<DeviceEstimate, MemoryError> {
    let mem = crate::memory::estimate(g, weights_bytes, n_ctx)?;
    // The compute and output buffers as llama.cpp sizes them (crate::compute_buffer).
    let cb = crate::compute_buffer::estimate(g, &mem, embd.map(|(rows, _)| rows));
    let ub = cb.n_tokens;
    let compute = cb.compute_bytes;
    let total = mem
        .total_bytes
        .saturating_add(compute)
        .saturating_add(cb.output_bytes);
    let verdict = if total as f64 <= TIGHT_SHARE * device.app_bytes as f64 {
        Verdict::Fits
    } else if total <= device.app_bytes {
        Verdict::Tight
    } else {
        Verdict::DoesNotFit
    };
    // Bytes read per token: all weights, but only one row of an untied token embedding.
    let embd_saving = match embd {
        Some((rows, bytes)) if !tied_output && rows > 0 => bytes - bytes / rows,
        _ => 0,
    };
    let bytes_per_token = weights_bytes
        .saturating_sub(embd_saving)
        .saturating_add(mem.kv_bytes);
    let tps = device.bandwidth * BANDWIDTH_EFFICIENCY / bytes_per_token.max(1) as f64;
    let jpt = ANCHOR_JOULES * bytes_per_token as f64 / ANCHOR_BYTES;
    let battery_hours = device
        .battery_joules
        .map(|b| b / (jpt * TOKENS_PER_SECOND) / 3600.0);
    let mut notes = mem.notes.clone();
    notes.extend(cb.notes.iter().cloned());
    notes.push(format!(
        "compute buffers as llama.cpp's graph allocator sizes them for a {ub}-token ubatch with flash attention (its default)"
    ));
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
        total_bytes: total,
        verdict,
        bytes_per_token,
        tokens_per_second: tps,
        joules_per_token: jpt,
        battery_hours,
        notes,
    })
}
