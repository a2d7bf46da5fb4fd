//! How output looks: the terminal's width, colour, quiet/verbose, tables in the house style that fit
//! the terminal, prose wrapped to it, and numbers in a short form (shared by the commands).

use std::io::IsTerminal;
use std::sync::OnceLock;

use comfy_table::{presets, Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement};

use crate::sanitize::{clean, FG_RESET, RED, YELLOW};

/// Settings that every command's output follows, set once from the global flags.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    /// Width to fit tables and prose to: the terminal's when stdout is one (and not `--wide`).
    pub width: Option<usize>,
    /// FAIL/WARN in colour: stdout is a terminal and NO_COLOR is not set.
    pub color: bool,
    /// `-q`: no progress bars, no notes or warnings on stderr.
    pub quiet: bool,
    /// `-v`: timings and error chains on stderr.
    pub verbose: bool,
}

static LOOK: OnceLock<Look> = OnceLock::new();

/// Reads the terminal (stdout) and the environment once, with the global flags.
pub fn init(wide: bool, quiet: bool, verbose: bool) {
    let tty = std::io::stdout().is_terminal();
    let width = if wide || !tty {
        None
    } else {
        terminal_size::terminal_size_of(std::io::stdout())
            .map(|(w, _)| w.0 as usize)
            .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
            .filter(|&w| w >= 20)
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let _ = LOOK.set(Look {
        width,
        color: tty && !no_color,
        quiet,
        verbose,
    });
}

pub fn look() -> Look {
    *LOOK.get().unwrap_or(&Look {
        width: None,
        color: false,
        quiet: false,
        verbose: false,
    })
}

/// A table in the house style (light borders). On a terminal it fits the width: columns wrap,
/// cells longer than `max_lines` lines are cut with "…"; columns with no content are dropped.
/// An empty `header` means a table without a header row.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
    status: Option<usize>,
    max_lines: usize,
    min: Vec<(usize, usize)>,
}

pub fn table(header: &[&str]) -> Table {
    Table {
        header: header.iter().map(|s| s.to_string()).collect(),
        rows: Vec::new(),
        right: Vec::new(),
        status: None,
        max_lines: 1,
        min: Vec::new(),
    }
}

impl Table {
    pub fn add_row(&mut self, row: Vec<String>) -> &mut Self {
        self.rows.push(row);
        self
    }

    /// Numbers: aligned right.
    pub fn align_right(&mut self, col: usize) -> &mut Self {
        self.right.push(col);
        self
    }

    /// The column holding pass/WARN/FAIL, coloured on a colour terminal.
    pub fn status_column(&mut self, col: usize) -> &mut Self {
        self.status = Some(col);
        self
    }

    /// Column `col` keeps at least `width` characters (or its content's width if less) when the
    /// table is narrowed to the terminal.
    pub fn min_width(&mut self, col: usize, width: usize) -> &mut Self {
        self.min.push((col, width));
        self
    }

    /// Cells may wrap over up to `n` lines before being cut (on a terminal).
    pub fn max_lines(&mut self, n: usize) -> &mut Self {
        self.max_lines = n.max(1);
        self
    }

    fn build(&self, look: Look) -> comfy_table::Table {
        let hidden = self.hidden(&self.rows);
        let content = (0..hidden.len())
            .map(|i| {
                self.rows
                    .iter()
                    .chain([&self.header])
                    .filter_map(|r| r.get(i))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect::<Vec<_>>();
        self.build_rows(&self.rows, look, &hidden, &content, None, true)
    }

    /// Which of the columns of `rows` (and the header) hold nothing: dropped from the table.
    fn hidden(&self, rows: &[Vec<String>]) -> Vec<bool> {
        let n_cols = rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let empty = |s: &str| s.is_empty() || s == "—";
        (0..n_cols)
            .map(|c| !rows.is_empty() && rows.iter().all(|r| r.get(c).is_none_or(|s| empty(s))))
            .collect()
    }

    /// The comfy table of `rows`: columns `hidden` dropped, `content` the longest cell of each
    /// column in characters (for the minimum widths); with `fixed`, each column that wide (padding
    /// included), as [`Table::write_streamed`] renders a long table chunk by chunk.
    fn build_rows(
        &self,
        rows: &[Vec<String>],
        look: Look,
        hidden: &[bool],
        content: &[usize],
        fixed: Option<&[u16]>,
        header: bool,
    ) -> comfy_table::Table {
        let mut t = comfy_table::Table::new();
        t.load_style(presets::UTF8_BORDERS_ONLY);
        if look.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        match look.width {
            Some(w) => {
                t.set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(w.min(u16::MAX as usize) as u16)
                    .set_truncation_indicator("…");
            }
            None => {
                t.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        if header && !self.header.is_empty() {
            t.set_header(self.header.clone());
        }
        for r in rows {
            let cells: Vec<Cell> = r
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let c = Cell::new(s);
                    match (self.status == Some(i), s.as_str()) {
                        (true, "FAIL") | (true, "fail") => c.fg(Color::Red),
                        (true, "WARN") | (true, "warn") => c.fg(Color::Yellow),
                        _ => c,
                    }
                })
                .collect();
            t.add_row(cells);
        }
        if look.width.is_some() {
            for r in t.row_iter_mut() {
                r.max_height(self.max_lines);
            }
        }
        for (i, h) in hidden.iter().enumerate() {
            let content = content.get(i).copied().unwrap_or(0);
            if let Some(c) = t.column_mut(i) {
                if *h {
                    c.set_constraint(ColumnConstraint::Hidden);
                } else if let Some(w) = fixed.and_then(|f| f.get(i)) {
                    c.set_constraint(ColumnConstraint::Absolute(comfy_table::Width::Fixed(*w)));
                } else if let (Some(&(_, w)), Some(_)) =
                    (self.min.iter().find(|m| m.0 == i), look.width)
                {
                    let w = w.min(content) + 2;
                    c.set_constraint(ColumnConstraint::LowerBoundary(comfy_table::Width::Fixed(
                        w.min(u16::MAX as usize) as u16,
                    )));
                }
                if self.right.contains(&i) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
        }
        t
    }
}

/// Rows per chunk of a table written by [`Table::write_streamed`].
const CHUNK: usize = 2048;

impl Table {
    /// Writes the table of the header and the rows `rows()` gives (called twice: once to measure,
    /// once to write), holding at most [`CHUNK`] rows at a time when not on a terminal: the columns
    /// are measured over all rows first, then the rows are rendered chunk by chunk at those widths,
    /// the same text as the whole table at once. A 200,000-key header took 270 MB as one comfy
    /// table (issue #27). On a terminal, where fitting the width depends on the whole table, the
    /// rows are collected and rendered at once.
    pub fn write_streamed<I: Iterator<Item = Vec<String>>>(
        mut self,
        rows: impl Fn() -> I,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        let look = look();
        if look.width.is_some() {
            self.rows.extend(rows());
            return writeln!(out, "{self}");
        }
        // Measure: the widest cell of each column (as comfy measures it) and which are empty.
        let mut widths: Vec<u16> = Vec::new();
        let mut full: Vec<bool> = Vec::new();
        let mut n_rows = 0usize;
        let mut it = rows().peekable();
        while it.peek().is_some() {
            let chunk: Vec<Vec<String>> = it.by_ref().take(CHUNK).collect();
            n_rows += chunk.len();
            let hidden = self.hidden(&chunk);
            full.resize(full.len().max(hidden.len()), false);
            for (f, h) in full.iter_mut().zip(&hidden) {
                *f |= !h;
            }
            let t = self.build_rows(&chunk, look, &vec![false; hidden.len()], &[], None, true);
            let w = t.column_max_content_widths();
            widths.resize(widths.len().max(w.len()), 0);
            for (a, b) in widths.iter_mut().zip(w) {
                *a = (*a).max(b);
            }
        }
        if n_rows <= CHUNK {
            self.rows.extend(rows());
            return writeln!(out, "{self}");
        }
        let hidden: Vec<bool> = full.iter().map(|f| !f).collect();
        // comfy's padding: one space each side.
        let fixed: Vec<u16> = widths.iter().map(|w| w.saturating_add(2)).collect();
        let mut it = rows().peekable();
        let mut first = true;
        while it.peek().is_some() {
            let chunk: Vec<Vec<String>> = it.by_ref().take(CHUNK).collect();
            let last = it.peek().is_none();
            let text = self
                .build_rows(&chunk, look, &hidden, &[], Some(&fixed), first)
                .to_string();
            let lines: Vec<&str> = text.lines().collect();
            // The top border only on the first chunk, the bottom one only on the last.
            let from = usize::from(!first);
            let to = lines.len() - usize::from(!last);
            for l in &lines[from..to] {
                writeln!(out, "{l}")?;
            }
            first = false;
        }
        Ok(())
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.build(look()))
    }
}

/// `text` wrapped at spaces to the terminal's width (unchanged when not on a terminal); lines after
/// the first of each paragraph are indented by `indent` spaces.
pub fn wrap(text: &str, indent: usize) -> String {
    let Some(width) = look().width else {
        return text.to_string();
    };
    let mut out = String::new();
    for (n, para) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut col = 0;
        let mut first = true;
        for word in para.split(' ') {
            let w = word.chars().count();
            if !first && col + 1 + w > width {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = indent;
            } else if !first {
                out.push(' ');
                col += 1;
            }
            // A word longer than a line is cut where the line ends.
            let mut rest: Vec<char> = word.chars().collect();
            while col + rest.len() > width && width > col + 1 {
                let take = width - col;
                out.extend(&rest[..take]);
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = indent;
                rest.drain(..take);
            }
            out.extend(&rest);
            col += rest.len();
            first = false;
        }
    }
    out
}

/// "FAIL"/"WARN"/others, coloured on a colour terminal.
pub fn paint_status(word: &str) -> String {
    if !look().color {
        return word.to_string();
    }
    match word.to_ascii_lowercase().as_str() {
        "fail" => format!("{RED}{word}{FG_RESET}"),
        "warn" => format!("{YELLOW}{word}{FG_RESET}"),
        _ => word.to_string(),
    }
}

/// A warning or note on stderr (not with `-q`), "warning" coloured on a colour terminal.
pub fn warn(msg: &str) {
    if look().quiet {
        return;
    }
    let tty = std::io::stderr().is_terminal();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if tty && !no_color {
        eprintln!("pocket: {YELLOW}warning{FG_RESET}: {}", clean(msg));
    } else {
        eprintln!("pocket: warning: {}", clean(msg));
    }
}

/// "1 byte", "2 bytes".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// An f32 as JSON in its shortest round-trip form (0.95, not 0.949999988079071); null when not finite.
pub fn f32_json(x: f32) -> serde_json::Value {
    if !x.is_finite() {
        return serde_json::Value::Null;
    }
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// An enum's Debug form as a stable lower-case name: `X86(Avx512Vnni)` -> `x86-avx512vnni`.
pub fn enum_name(debug: &str) -> String {
    debug
        .to_ascii_lowercase()
        .replace('(', "-")
        .replace([')', ' '], "")
}

/// The CPU kernels pocket's executor uses here, as a stable lower-case name.
pub fn kernels() -> String {
    enum_name(&format!("{:?}", pocket::exec::dot::kernels()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_shortest() {
        assert_eq!(f32_json(0.95).to_string(), "0.95");
        assert_eq!(f32_json(1e-6).to_string(), "1e-6");
        assert_eq!(f32_json(f32::NAN), serde_json::Value::Null);
    }

    #[test]
    fn enum_names() {
        assert_eq!(enum_name("X86(Avx512Vnni)"), "x86-avx512vnni");
        assert_eq!(enum_name("Scalar"), "scalar");
    }

    fn at(width: Option<usize>) -> Look {
        Look {
            width,
            color: false,
            quiet: false,
            verbose: false,
        }
    }

    #[test]
    fn tables_fit_the_width_cut_long_cells_and_drop_empty_columns() {
        let mut t = table(&["name", "empty", "value"]);
        t.add_row(vec!["a".into(), "".into(), "x ".repeat(200)]);
        t.add_row(vec!["b".into(), "—".into(), "short".into()]);
        let narrow = t.build(at(Some(40))).to_string();
        let widths: Vec<usize> = narrow.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w <= 40), "{narrow}");
        // One line per row (max_lines 1): the long cell is cut, and says so.
        assert!(narrow.contains('…'), "{narrow}");
        assert_eq!(narrow.lines().count(), 6, "{narrow}");
        assert!(!narrow.contains("empty"), "{narrow}");
        // Not on a terminal: whole lines, nothing cut.
        let whole = t.build(at(None)).to_string();
        assert!(
            !whole.contains('…') && whole.contains(&"x ".repeat(199)),
            "{whole}"
        );
        t.max_lines(3);
        let three = t.build(at(Some(40))).to_string();
        assert_eq!(three.lines().count(), 8, "{three}");
    }

    #[test]
    fn a_table_written_in_chunks_is_the_table_written_whole() {
        let mk = |n: usize| {
            (0..n)
                .map(|i| {
                    vec![
                        format!("key.{i}"),
                        match i {
                            5000 => "z".into(),
                            _ if i % 7 == 0 => "—".into(),
                            _ => String::new(),
                        },
                        "é".repeat(i % 13) + "x",
                    ]
                })
                .collect::<Vec<_>>()
        };
        for n in [0, 3, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let rows = mk(n);
            let mut whole = table(&["key", "empty", "value"]);
            for r in &rows {
                whole.add_row(r.clone());
            }
            let whole = format!("{whole}\n");
            let mut out = Vec::new();
            table(&["key", "empty", "value"])
                .write_streamed(|| rows.iter().cloned(), &mut out)
                .unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), whole, "{n} rows");
        }
    }

    #[test]
    fn numbers_in_a_short_form() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(253_115_040), "241.39 MiB");
        assert_eq!(count(268_098_176), "268.10 M");
        assert_eq!(count(8_030_261_248), "8.03 B");
        assert_eq!(clip("abcdef", 3), "abc… (6 bytes)");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "header byte", "header bytes"), "1 header byte");
        assert_eq!(plural(3, "header byte", "header bytes"), "3 header bytes");
    }
}
