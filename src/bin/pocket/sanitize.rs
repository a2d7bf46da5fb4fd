//! Terminal safety: text from a file (metadata values, key and tensor names) reaches human output, and
//! a file must not be able to drive the terminal with it (an ESC sequence could rewrite verify's FAIL
//! rows as PASS, or a CR overwrite a line). Every byte pocket writes to stdout for people — and every
//! error message on stderr — passes through here: C0 control characters other than tab and newline,
//! DEL and the C1 controls (U+0080–U+009F) are shown as `\xNN` instead of being sent. `--json` output is
//! not filtered (serde_json escapes control characters itself, and programs want the exact values).

use std::borrow::Cow;
use std::io::{self, Write};

/// pocket's own colours, the codes comfy-table (crossterm) writes for `Color::Red` / `Color::Yellow`
/// and the reset to the default foreground. Everything pocket colours uses these, and they are the
/// only escape sequences [`clean`] lets through.
pub const RED: &str = "\x1b[38;5;9m";
pub const YELLOW: &str = "\x1b[38;5;11m";
pub const FG_RESET: &str = "\x1b[39m";

/// Whether the SGR parameters (between `ESC [` and `m`) are one of pocket's colours: a 256-colour
/// foreground or the reset to the default foreground. Neither can move the cursor or rewrite a row.
fn is_our_colour(params: &[u8]) -> bool {
    params.starts_with(b"38;5;") || params == b"39"
}

fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

/// `s` with every control character (but tab and newline) shown as `\xNN`.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    let mut sgr = 0usize;
    for (i, c) in s.char_indices() {
        // Colour (SGR: ESC [ digits ; m) passes: it cannot move the cursor or rewrite a row.
        if sgr > 0 {
            sgr -= 1;
            o.push(c);
            continue;
        }
        if c == '\x1b' {
            let rest = &s.as_bytes()[i + 1..];
            if rest.first() == Some(&b'[') {
                if let Some(end) = rest[1..]
                    .iter()
                    .position(|b| !(b.is_ascii_digit() || *b == b';'))
                {
                    if rest[1 + end] == b'm' && is_our_colour(&rest[1..1 + end]) {
                        sgr = end + 2;
                        o.push(c);
                        continue;
                    }
                }
            }
        }
        if is_control(c) {
            o.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            o.push(c);
        }
    }
    Cow::Owned(o)
}

/// A writer that passes text through [`clean`]. Bytes are held back only while a UTF-8 sequence is
/// incomplete; invalid UTF-8 is passed through unchanged (it is no control character).
pub struct Clean<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> Clean<W> {
    pub fn new(inner: W) -> Self {
        Clean {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: Write> Write for Clean<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let mut done = 0;
        let data = std::mem::take(&mut self.pending);
        while done < data.len() {
            match std::str::from_utf8(&data[done..]) {
                Ok(s) => {
                    self.inner.write_all(clean(s).as_bytes())?;
                    done = data.len();
                }
                Err(e) => {
                    let ok = e.valid_up_to();
                    // SAFETY-free: the prefix is valid UTF-8 by from_utf8's word.
                    let s = std::str::from_utf8(&data[done..done + ok]).expect("valid prefix");
                    self.inner.write_all(clean(s).as_bytes())?;
                    done += ok;
                    match e.error_len() {
                        // Invalid bytes: not text, not a control character; pass them on.
                        Some(n) => {
                            self.inner.write_all(&data[done..done + n])?;
                            done += n;
                        }
                        // An incomplete sequence at the end: wait for the rest.
                        None => {
                            self.pending = data[done..].to_vec();
                            break;
                        }
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let p = std::mem::take(&mut self.pending);
            self.inner.write_all(&p)?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_c1_controls_are_shown_not_sent() {
        assert_eq!(
            clean("a\x1b[2Kb\rc\u{9b}d\te\n"),
            "a\\x1b[2Kb\\x0dc\\x9bd\te\n"
        );
        assert!(matches!(clean("plain ünïcode"), Cow::Borrowed(_)));
        // pocket's own colours pass; other SGR codes (bold, 16-colour) are shown.
        let ours = format!("{RED}FAIL{FG_RESET} {YELLOW}warn{FG_RESET}");
        assert_eq!(clean(&ours), ours);
        assert_eq!(clean("\x1b[1mb\x1b[31mr"), "\\x1b[1mb\\x1b[31mr");
        // Split across writes, in the middle of a two-byte sequence.
        let mut w = Clean::new(Vec::new());
        let s = "x\u{9b}y\u{e9}".as_bytes();
        for b in s.chunks(1) {
            w.write_all(b).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(String::from_utf8(w.inner).unwrap(), "x\\x9by\u{e9}");
    }
}
