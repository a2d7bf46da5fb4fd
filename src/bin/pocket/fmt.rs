//! Number formatting and table style shared by the commands.

use comfy_table::{presets, ContentArrangement, Table};

/// A table in the house style: light borders, no wrapping (pipes and wide terminals read it whole).
/// An empty `header` means a table without a header row.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled);
    if !header.is_empty() {
        t.set_header(header.to_vec());
    }
    t
}

/// Bytes as llama.cpp prints them (MiB / GiB, binary units).
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let x = n as f64;
    if x >= K * K * K {
        format!("{:.2} GiB", x / (K * K * K))
    } else if x >= K * K {
        format!("{:.2} MiB", x / (K * K))
    } else if x >= K {
        format!("{:.2} KiB", x / K)
    } else {
        format!("{n} B")
    }
}

/// A count with an SI suffix: 268.10 M, 8.03 B.
pub fn count(n: u64) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.2} B", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.2} K", x / 1e3)
    } else {
        n.to_string()
    }
}

/// A string cut to at most `max` characters, with what was cut said.
pub fn clip(s: &str, max: usize) -> String {
    let one_line: String = s.chars().map(|c| if c == '\n' { '⏎' } else { c }).collect();
    match one_line.char_indices().nth(max) {
        None => one_line,
        Some((i, _)) => format!("{}… ({} bytes)", &one_line[..i], s.len()),
    }
}
