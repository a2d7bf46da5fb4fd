//! Character classes and pre-tokenization as llama.cpp's `unicode.cpp` does them: code point
//! categories from llama.cpp's own tables, GPT-2's byte-to-character map, and the regex split that
//! runs a list of patterns one after another over a text, each refining the pieces of the last.

use std::sync::OnceLock;

use super::unicode_data::{LOWERCASE, NFD, RANGES_FLAGS, WHITESPACE};
use super::TokenizerError;

pub(super) const NUMBER: u16 = 0x0002;
pub(super) const LETTER: u16 = 0x0004;
pub(super) const ACCENT_MARK: u16 = 0x0010;
pub(super) const PUNCTUATION: u16 = 0x0020;
pub(super) const SYMBOL: u16 = 0x0040;
pub(super) const CONTROL: u16 = 0x0080;
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

/// `unicode_tolower`: the lower case of a code point from llama.cpp's table, else the code point.
pub(super) fn to_lower(cpt: u32) -> u32 {
    match LOWERCASE.binary_search_by_key(&cpt, |&(c, _)| c) {
        Ok(i) => LOWERCASE[i].1,
        Err(_) => cpt,
    }
}

/// `unicode_cpts_normalize_nfd` for one code point: llama.cpp's "NFD" keeps only the base character
/// of a precomposed one (`é` becomes `e`), from its table of ranges.
pub(super) fn nfd(cpt: u32) -> u32 {
    let i = NFD.partition_point(|&(first, _, _)| first <= cpt);
    match i.checked_sub(1).map(|i| NFD[i]) {
        Some((first, last, to)) if first <= cpt && cpt <= last => to,
        _ => cpt,
    }
}

/// `unicode_len_utf8`: the length of the UTF-8 sequence a byte starts (1 for continuation bytes).
pub(super) fn utf8_len(b: u8) -> usize {
    const LEN: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LEN[(b >> 4) as usize]
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

/// The hand-written splitters llama.cpp runs instead of the regex for its most common patterns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Custom {
    Gpt2,
    Llama3,
    Qwen2,
    /// Qwen2's with combining marks (`\p{M}`) in letter runs.
    Qwen35,
    /// `[^\n]+|[\n]+`: runs of newlines and runs of anything else (gemma-4).
    Newlines,
}

const CUSTOM: [(&str, Custom); 6] = [
    (
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
        Custom::Gpt2,
    ),
    (
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        Custom::Llama3,
    ),
    (
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        Custom::Llama3,
    ),
    (
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        Custom::Qwen2,
    ),
    (
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        Custom::Qwen35,
    ),
    ("[^\\n]+|[\\n]+", Custom::Newlines),
];

enum Matcher {
    Custom(Custom),
    Regex {
        regex: fancy_regex::Regex,
        /// Run over the collapsed text (every non-ASCII character replaced by its category's stand-in).
        collapsed: bool,
    },
}

/// One compiled pre-tokenizer pattern.
pub(super) struct Pattern {
    source: &'static str,
    matcher: Matcher,
}

impl Pattern {
    /// Compiles a pattern the way `unicode_regex_split` does: the patterns llama.cpp has hand-written
    /// splitters for use a port of those; a pattern with `\p{..}` classes is rewritten to match the
    /// collapsed text, any other runs on the code points themselves.
    pub(super) fn new(source: &'static str) -> Result<Pattern, TokenizerError> {
        if let Some(&(_, c)) = CUSTOM.iter().find(|(p, _)| *p == source) {
            return Ok(Pattern {
                source,
                matcher: Matcher::Custom(c),
            });
        }
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
            matcher: Matcher::Regex { regex, collapsed },
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

/// Splits `text` into words with each pattern in turn (`unicode_regex_split`, without the byte
/// encoding). Parts of a piece that a pattern does not match stay pieces of their own.
pub(super) fn regex_split(text: &str, patterns: &[Pattern]) -> Result<Vec<String>, TokenizerError> {
    let cpts: Vec<char> = text.chars().collect();
    let mut collapsed: Option<Haystack> = None;
    let mut plain: Option<Haystack> = None;
    let mut offsets = vec![cpts.len()];
    for p in patterns {
        let (regex, collapsed_text) = match &p.matcher {
            Matcher::Custom(c) => {
                offsets = split_custom(*c, &cpts, &offsets);
                continue;
            }
            Matcher::Regex { regex, collapsed } => (regex, *collapsed),
        };
        let hay = if collapsed_text {
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
            for m in regex.find_iter(chunk) {
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

/// Port of `unicode_regex_split_custom_gpt2`, `_llama3`, `_qwen2`, `_qwen35` and `_newlines`: the
/// same splits as their regexes, in one pass, without backtracking (so without limits on long runs of
/// one class).
fn split_custom(kind: Custom, cpts: &[char], offsets: &[usize]) -> Vec<usize> {
    #[derive(Clone, Copy, Default)]
    struct F {
        any: bool,
        ws: bool,
        letter: bool,
        number: bool,
        mark: bool,
    }
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let (ini, end) = (start, start + len);
        start = end;
        if kind == Custom::Newlines {
            let mut pos = ini;
            while pos < end {
                let newline = cpts[pos] == '\n';
                let run = pos;
                while pos < end && (cpts[pos] == '\n') == newline {
                    pos += 1;
                }
                out.push(pos - run);
            }
            continue;
        }
        const OUT: u32 = u32::MAX;
        let cpt = |pos: usize| -> u32 {
            if pos >= ini && pos < end {
                cpts[pos] as u32
            } else {
                OUT
            }
        };
        let flags = |pos: usize| -> F {
            if pos >= ini && pos < end {
                let c = cpts[pos] as u32;
                let cat = category(c);
                let ws = is_whitespace(c);
                F {
                    any: cat != 0 || ws,
                    ws,
                    letter: cat == LETTER,
                    number: cat == NUMBER,
                    mark: cat == ACCENT_MARK,
                }
            } else {
                F::default()
            }
        };
        let lower = |c: u32| -> u32 {
            if kind == Custom::Gpt2 {
                c
            } else {
                to_lower(c)
            }
        };
        let mut prev_end = ini;
        let mut add = |e: usize, out: &mut Vec<usize>| -> usize {
            let n = e - prev_end;
            if n > 0 {
                out.push(n);
            }
            prev_end = e;
            n
        };
        let is_rn = |c: u32| c == '\r' as u32 || c == '\n' as u32;
        let mut pos = ini;
        while pos < end {
            let c = cpt(pos);
            let f = flags(pos);

            // 's|'t|'re|'ve|'m|'ll|'d (case-insensitive but for gpt2)
            if c == '\'' as u32 && pos + 1 < end {
                let n1 = lower(cpt(pos + 1));
                if [b's', b't', b'm', b'd'].iter().any(|&x| n1 == x as u32) {
                    pos += add(pos + 2, &mut out);
                    continue;
                }
                if pos + 2 < end {
                    let n2 = lower(cpt(pos + 2));
                    let pair = |a: u8, b: u8| n1 == a as u32 && n2 == b as u32;
                    if pair(b'r', b'e') || pair(b'v', b'e') || pair(b'l', b'l') {
                        pos += add(pos + 3, &mut out);
                        continue;
                    }
                }
            }

            if kind == Custom::Gpt2 {
                let mut f2 = if c == ' ' as u32 { flags(pos + 1) } else { f };
                // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
                let class: Option<fn(F) -> bool> = if f2.letter {
                    Some(|x: F| x.letter)
                } else if f2.number {
                    Some(|x: F| x.number)
                } else if !(f2.ws || f2.letter || f2.number) && f2.any {
                    Some(|x: F| !(x.ws || x.letter || x.number) && x.any)
                } else {
                    None
                };
                if let Some(class) = class {
                    pos += (c == ' ' as u32) as usize;
                    while class(f2) {
                        pos += 1;
                        f2 = flags(pos);
                    }
                    add(pos, &mut out);
                    continue;
                }
            } else {
                // [^\r\n\p{L}\p{N}]?\p{L}+ ([\p{L}\p{M}]+ for qwen35)
                let word: fn(F) -> bool = if kind == Custom::Qwen35 {
                    |x: F| x.letter || x.mark
                } else {
                    |x: F| x.letter
                };
                if !(is_rn(c) || f.number) && (word(f) || word(flags(pos + 1))) {
                    pos += 1;
                    while word(flags(pos)) {
                        pos += 1;
                    }
                    add(pos, &mut out);
                    continue;
                }
                // \p{N}{1,3} (llama3) or \p{N} (qwen2, qwen35)
                if f.number {
                    if kind != Custom::Llama3 {
                        pos += 1;
                    } else {
                        let mut first = pos;
                        while flags(pos).number {
                            pos += 1;
                            if pos - first >= 3 {
                                add(pos, &mut out);
                                first = pos;
                            }
                        }
                    }
                    add(pos, &mut out);
                    continue;
                }
                // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (qwen35: and not \p{M}; the first test reads the
                // first character's flags, as llama.cpp does)
                let other: fn(F) -> bool = if kind == Custom::Qwen35 {
                    |x: F| !(x.ws || x.letter || x.mark || x.number)
                } else {
                    |x: F| !(x.ws || x.letter || x.number)
                };
                let mut f2 = if c == ' ' as u32 { flags(pos + 1) } else { f };
                if other(f2) && f.any {
                    pos += (c == ' ' as u32) as usize;
                    while other(f2) && f2.any {
                        pos += 1;
                        f2 = flags(pos);
                    }
                    while is_rn(cpt(pos)) {
                        pos += 1;
                    }
                    add(pos, &mut out);
                    continue;
                }
            }

            let mut n_ws = 0;
            let mut last_rn = 0;
            while flags(pos + n_ws).ws {
                if kind != Custom::Gpt2 && is_rn(cpt(pos + n_ws)) {
                    last_rn = pos + n_ws + 1;
                }
                n_ws += 1;
            }
            // \s*[\r\n]+
            if last_rn > 0 {
                pos = last_rn;
                add(pos, &mut out);
                continue;
            }
            // \s+(?!\S)
            if n_ws > 1 && cpt(pos + n_ws) != OUT {
                pos += n_ws - 1;
                add(pos, &mut out);
                continue;
            }
            // \s+
            if n_ws > 0 {
                pos += n_ws;
                add(pos, &mut out);
                continue;
            }
            // no match: one character on its own
            pos += 1;
            add(pos, &mut out);
        }
    }
    out
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
    fn custom_splitters_replace_their_regexes() {
        for (pat, kind) in CUSTOM {
            let p = Pattern::new(pat).unwrap();
            assert!(
                matches!(p.matcher, Matcher::Custom(k) if k == kind),
                "{pat}"
            );
            // The regex itself compiles too, and splits ordinary text the same way.
            let collapsed = collapse_pattern(pat).unwrap();
            let regex = Pattern {
                source: pat,
                matcher: Matcher::Regex {
                    regex: fancy_regex::Regex::new(&collapsed).unwrap(),
                    collapsed: true,
                },
            };
            let text = "I'm 12345 dogs' X'RE  \t\n\n  ok?! 中文 \r\n  e\u{301}\u{308}x \u{301}a .\u{301} 9\u{301}\n\n";
            assert_eq!(
                regex_split(text, &[p]).unwrap(),
                regex_split(text, &[regex]).unwrap(),
                "{kind:?}"
            );
        }
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
