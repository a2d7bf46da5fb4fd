//! Output fitted to the terminal: each command run in a pseudo-terminal of 80 columns (through
//! util-linux's `script`, which gives the program a real tty) prints no line wider than 80 columns
//! on the real model; `--wide` and pipes keep whole lines; progress bars say "eta ?" until they can
//! estimate.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn pocket() -> String {
    let bin = env!("CARGO_BIN_EXE_pocket").to_string();
    match common::runner() {
        Some(r) => format!("{} {bin}", r.join(" ")),
        None => bin,
    }
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// Runs `pocket ARGS` with stdout on a pty `cols` wide; stderr to a file unless `stderr_too`.
fn in_terminal(cols: u32, args: &str, stderr_too: bool, env: &str) -> String {
    let redirect = if stderr_too { "" } else { " 2>/dev/null" };
    let cmd = format!(
        "stty cols {cols} rows 50; {env} {} {args}{redirect}",
        pocket()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("util-linux `script` runs the command in a pseudo-terminal");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The widest line in terminal columns (escape sequences and carriage returns not counted).
fn widest(text: &str) -> (usize, String) {
    let esc = regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").unwrap();
    text.lines()
        .map(|l| {
            let l = esc.replace_all(l, "");
            let l = l.rsplit('\r').find(|p| !p.is_empty()).unwrap_or("");
            (l.chars().count(), l.to_string())
        })
        .max()
        .unwrap_or((0, String::new()))
}

fn gemma_q4_0(dir: &Path) -> PathBuf {
    let out = dir.join("gemma-q4_0.gguf");
    let r = common::pocket()
        .arg("requantize")
        .arg(common::gemma())
        .arg(&out)
        .args(["Q4_0", "--allow-requantize", "--pure", "-q"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    out
}

#[test]
fn gemma_output_fits_80_columns() {
    let g = common::gemma();
    let dir = tempfile::tempdir().unwrap();
    let other = gemma_q4_0(dir.path());
    let text = common::testdata("exec/ppl-text.txt");
    let cases: Vec<(String, &str)> = vec![
        (format!("inspect {}", q(&g)), "training context"),
        (
            format!("inspect --tensors {}", q(&g)),
            "blk.0.attn_q.weight",
        ),
        (format!("inspect --ctx 4096 {}", q(&g)), "KV cache"),
        (format!("verify {}", q(&g)), "tokenizer"),
        (format!("verify --device iphone-15-pro {}", q(&g)), "decode"),
        ("verify --list-devices".to_string(), "iphone-15-pro"),
        (
            format!("bench {} -p 8 -n 2 -r 1 --no-bandwidth", q(&g)),
            "tg2",
        ),
        (
            format!(
                "kld {} {} -f {} -c 128 --chunks 2",
                q(&g),
                q(&other),
                q(&text)
            ),
            "KL divergence statistics",
        ),
        (format!("diff {} {}", q(&g), q(&other)), "Q4_0"),
        (
            format!("requantize --dry-run {} Q4_0 --allow-requantize", q(&g)),
            "Q4_0",
        ),
    ];
    let mut wide = Vec::new();
    for (args, expect) in &cases {
        let out = in_terminal(80, args, false, "");
        assert!(
            out.contains(expect),
            "pocket {args}: no {expect:?} in\n{out}"
        );
        let (w, line) = widest(&out);
        if w > 80 {
            wide.push(format!("pocket {args}: {w} columns: {line}"));
        }
    }
    assert!(wide.is_empty(), "lines wider than 80:\n{}", wide.join("\n"));
}

#[test]
fn help_wraps_to_the_terminal() {
    for args in [
        "--help",
        "inspect --help",
        "requantize --help",
        "run --help",
        "verify --help",
    ] {
        let out = in_terminal(80, args, false, "");
        assert!(out.contains("Usage"), "pocket {args}:\n{out}");
        let (w, line) = widest(&out);
        assert!(w <= 80, "pocket {args}: {w} columns: {line}");
        let out_wide = in_terminal(200, args, false, "");
        assert!(
            widest(&out_wide).0 > 80,
            "pocket {args} at 200 columns stays narrow"
        );
    }
}

#[test]
fn wide_and_pipes_keep_whole_lines() {
    let g = common::testdata("tiny-llama-q8_0.gguf");
    let narrow = in_terminal(80, &format!("inspect {}", q(&g)), false, "");
    assert!(widest(&narrow).0 <= 80);
    let wide = in_terminal(80, &format!("inspect --wide {}", q(&g)), false, "");
    assert!(widest(&wide).0 > 80, "--wide kept to 80 columns:\n{wide}");
    // Into a pipe nothing is cut: the whole value of a long key is there.
    let piped = common::pocket().arg("inspect").arg(&g).output().unwrap();
    let piped = String::from_utf8(piped.stdout).unwrap();
    assert!(!piped.contains('…') || widest(&piped).0 > 80);
    assert!(!piped.contains("\x1b["), "colour into a pipe");
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    // tiny-llama has no chat template recognised: verify warns.
    let g = common::testdata("values-le-v3.gguf");
    let tty = in_terminal(120, &format!("verify {}", q(&g)), false, "");
    assert!(tty.contains("\x1b["), "no colour on a terminal:\n{tty}");
    // The table's status cells and the summary line both colour; none of pocket's own colour codes
    // is escaped by the terminal sanitizer.
    assert!(
        tty.contains("\x1b[38;5;11mwarn\x1b[39m: "),
        "summary line not coloured:\n{tty}"
    );
    assert!(
        !tty.contains("\\x1b"),
        "pocket's colour shown escaped:\n{tty}"
    );
    let no = in_terminal(120, &format!("verify {}", q(&g)), false, "NO_COLOR=1");
    assert!(!no.contains("\x1b[3"), "colour with NO_COLOR:\n{no}");
    assert!(no.contains("WARN"));
}

#[test]
fn progress_eta_is_unknown_until_measured() {
    let g = common::gemma();
    let out = in_terminal(120, &format!("verify {}", q(&g)), true, "");
    assert!(out.contains("eta ?"), "no 'eta ?' in the bar:\n{out}");
    // The first estimate is only given once something was done.
    let first_eta = out.find("eta ").unwrap();
    assert!(out[first_eta..].starts_with("eta ?"), "{out}");
}
