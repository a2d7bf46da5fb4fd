//! Character classes and pre-tokenization as llama.cpp's `unicode.cpp` does them: code point
//! categories from llama.cpp's own tables, GPT-2's byte-to-character map, and the regex split that
//! runs a list of patterns one after another over a text, each refining the pieces of the last.

use std::sync::OnceLock;

use super::unicode_data::{RANGES_FLAGS, WHITESPACE};
use super::TokenizerError;

pub(super) const NUMBER: u16 = 0x0002;
pub(super) const LETTER: u16 = 0x0004;
pub(super) const ACCENT_MARK: u16 = 0x0010;
pub(super) const PUNCTUATION: u16 = 0x0020;
pub(super) const SYMBOL: u16 = 0x0040;
const UNDEFINED: u16 = 0x0001;
const MASK_CATEGORIES: u16 = 0x00FF;

/// The category flags of a code point (one of the `\p{..}` classes), `UNDEFINED` past U+10FFFF.
pub(super) fn category(cpt: u32) -> u16 {
    if cpt >= 0x110000 {
        return UNDEFINED;
    }
    // The last range starting at or before `cpt`.
    let i = RANGES_FLAGS.partition_point(|&(start, _)| start <= cpt);
    RANGES_FLAGS[i.saturating_sub(1)].1 & MASK_CATEGORIES
}

pub(super) fn is_whitespace(cpt: u32) -> bool {
    WHITESPACE.binary_search(&cpt).is_ok()
}

/// GPT-2's map from bytes to printable characters (`unicode_byte_to_utf8_map`).
pub(super) fn byte_to_char() -> &'static [char; 256] {
    static MAP: OnceLock<[char; 256]> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = ['\0'; 256];
        let mut taken = [false; 256];
        for b in (0x21..=0x7Eu32).chain(0xA1..=0xAC).chain(0xAE..=0xFF) {
            map[b as usize] = char::from_u32(b).unwrap_or('\0');
            taken[b as usize] = true;
        }
        let mut n = 0u32;
        for b in 0..256usize {
            if !taken[b] {
                map[b] = char::from_u32(256 + n).unwrap_or('\0');
                n += 1;
            }
        }
        map
    })
}

/// The byte a GPT-2 byte character stands for (`unicode_utf8_to_byte`), if it is one.
pub(super) fn char_to_byte(c: char) -> Option<u8> {
    let c = c as u32;
    match c {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(c as u8),
        0x100..=0x143 => {
            let n = (c - 0x100) as usize;
            // The n-th byte not in the printable ranges.
            (0..=255u8)
                .filter(|&b| !matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF))
                .nth(n)
        }
        _ => None,
    }
}

/// The class a `\p{..}` name stands for and the byte it collapses to (llama.cpp's `k_ucat_*`).
fn ucat(name: &str) -> Option<(u16, char, &'static str)> {
    let flag = match name {
        "N" => NUMBER,
        "L" | "Lu" | "Ll" | "Lt" | "Lm" | "Lo" => LETTER,
        "P" => PUNCTUATION,
        "M" => ACCENT_MARK,
        "S" => SYMBOL,
        _ => return None,
    };
    Some((flag, collapsed_char(flag)?, ascii_class(flag)))
}

fn collapsed_char(flag: u16) -> Option<char> {
    Some(match flag {
        NUMBER => '\u{D1}',
        LETTER => '\u{D2}',
        PUNCTUATION => '\u{D3}',
        ACCENT_MARK => '\u{D4}',
        SYMBOL => '\u{D5}',
        _ => return None,
    })
}

/// The ASCII members of each class, which stay themselves in the collapsed text.
fn ascii_class(flag: u16) -> &'static str {
    match flag {
        NUMBER => "0-9",
        LETTER => "A-Za-z",
        PUNCTUATION => r"!-#%-*,-/:-;?-@\[-\]_\{\}",
        SYMBOL => r"\$\+<->\^`\|~",
        _ => "",
    }
}

fn uses_categories(pattern: &str) -> bool {
    ["\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}"]
        .iter()
        .any(|c| pattern.contains(c))
}

/// One compiled pre-tokenizer pattern.
pub(super) struct Pattern {
    source: &'static str,
    regex: fancy_regex::Regex,
    /// Run over the collapsed text (every non-ASCII character replaced by its category's stand-in).
    collapsed: bool,
}

impl Pattern {
    /// Compiles a pattern the way `unicode_regex_split` does: a pattern with `\p{..}` classes is
    /// rewritten to match the collapsed text, any other runs on the code points themselves.
    pub(super) fn new(source: &'static str) -> Result<Pattern, TokenizerError> {
        let collapsed = uses_categories(source);
        let rewritten = if collapsed {
            collapse_pattern(source)?
        } else {
            source.to_string()
        };
        let regex = fancy_regex::Regex::new(&rewritten).map_err(|e| TokenizerError::Regex {
            pattern: source.to_string(),
            message: e.to_string(),
        })?;
        Ok(Pattern {
            source,
            regex,
            collapsed,
        })
    }
}

/// Port of the collapsing loop of `unicode_regex_split`: `\p{X}` becomes `[<stand-in><ascii members>]`
/// (without the brackets inside a class).
fn collapse_pattern(p: &'static str) -> Result<String, TokenizerError> {
    if !p.is_ascii() {
        return Err(TokenizerError::Regex {
            pattern: p.to_string(),
            message: "unicode categories together with non-ASCII characters are not supported"
                .into(),
        });
    }
    let b = p.as_bytes();
    let mut out = String::new();
    let mut inside = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'[' && (i == 0 || b[i - 1] != b'\\') {
            out.push('[');
            inside = true;
            i += 1;
            continue;
        }
        if inside && c == b']' && b[i - 1] != b'\\' {
            out.push(']');
            inside = false;
            i += 1;
            continue;
        }
        if c == b'\\' && i + 3 < b.len() && b[i + 1] == b'p' && b[i + 2] == b'{' {
            if let Some(close) = p[i + 3..].find('}').map(|k| k + i + 3) {
                if close <= i + 10 {
                    if let Some((_, stand_in, ascii)) = ucat(&p[i + 3..close]) {
                        if !inside {
                            out.push('[');
                        }
                        out.push(stand_in);
                        out.push_str(ascii);
                        if !inside {
                            out.push(']');
                        }
                        i = close + 1;
                        continue;
                    }
                }
            }
        }
        out.push(c as char);
        i += 1;
    }
    Ok(out)
}

/// A text prepared for matching: the string the regexes see and where each code point starts in it.
struct Haystack {
    text: String,
    /// Byte offset of each code point, plus the end.
    starts: Vec<usize>,
}

impl Haystack {
    fn new(chars: impl Iterator<Item = char>) -> Haystack {
        let mut text = String::new();
        let mut starts = Vec::new();
        for c in chars {
            starts.push(text.len());
            text.push(c);
        }
        starts.push(text.len());
        Haystack { text, starts }
    }

    fn cpt_at(&self, byte: usize) -> usize {
        self.starts.partition_point(|&s| s < byte)
    }
}

/// Splits `text` into words with each pattern in turn (`unicode_regex_split`), returning the words'
/// lengths in code points. Parts of a piece that a pattern does not match stay pieces of their own.
pub(super) fn regex_split(text: &str, patterns: &[Pattern]) -> Result<Vec<String>, TokenizerError> {
    let cpts: Vec<char> = text.chars().collect();
    let mut collapsed: Option<Haystack> = None;
    let mut plain: Option<Haystack> = None;
    let mut offsets = vec![cpts.len()];
    for p in patterns {
        let hay = if p.collapsed {
            collapsed.get_or_insert_with(|| {
                Haystack::new(cpts.iter().map(|&c| {
                    let u = c as u32;
                    if u < 128 {
                        c
                    } else if is_whitespace(u) {
                        '\u{0B}'
                    } else {
                        collapsed_char(category(u)).unwrap_or('\u{D0}')
                    }
                }))
            })
        } else {
            // std::wregex's \s knows only ASCII whitespace; llama.cpp swaps the rest for \v.
            plain.get_or_insert_with(|| {
                Haystack::new(cpts.iter().map(|&c| {
                    if (c as u32) > 0x7F && is_whitespace(c as u32) {
                        '\u{0B}'
                    } else {
                        c
                    }
                }))
            })
        };
        let mut next = Vec::with_capacity(offsets.len());
        let mut start = 0usize;
        for &len in &offsets {
            let (a, b) = (hay.starts[start], hay.starts[start + len]);
            let chunk = &hay.text[a..b];
            let mut done = start;
            for m in p.regex.find_iter(chunk) {
                let m = m.map_err(|e| TokenizerError::Regex {
                    pattern: p.source.to_string(),
                    message: e.to_string(),
                })?;
                if m.start() == m.end() {
                    continue;
                }
                let (ms, me) = (hay.cpt_at(a + m.start()), hay.cpt_at(a + m.end()));
                if ms > done {
                    next.push(ms - done);
                }
                next.push(me - ms);
                done = me;
            }
            if done < start + len {
                next.push(start + len - done);
            }
            start += len;
        }
        offsets = next;
    }
    let mut words = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for len in offsets {
        words.push(cpts[start..start + len].iter().collect());
        start += len;
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_round_trips() {
        let map = byte_to_char();
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(map[b as usize]), Some(b), "byte {b}");
        }
        assert_eq!(map[b' ' as usize], 'Ġ');
        assert_eq!(map[b'\n' as usize], 'Ċ');
    }

    #[test]
    fn categories_match_llama_tables() {
        assert_eq!(category('a' as u32), LETTER);
        assert_eq!(category('7' as u32), NUMBER);
        assert_eq!(category('!' as u32), PUNCTUATION);
        assert_eq!(category('$' as u32), SYMBOL);
        assert_eq!(category('中' as u32), LETTER);
        assert_eq!(category(0x301), ACCENT_MARK);
        assert!(is_whitespace(0x3000) && !is_whitespace('x' as u32));
    }

    #[test]
    fn gpt2_pattern_splits_words() {
        let p = Pattern::new(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
        )
        .unwrap();
        let w = regex_split("Hello world's  3.14  中文\n", &[p]).unwrap();
        assert_eq!(
            w,
            ["Hello", " world", "'s", " ", " 3", ".", "14", " ", " 中文", "\n"]
        );
    }
}
