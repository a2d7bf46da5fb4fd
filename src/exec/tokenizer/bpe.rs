//! Byte-level BPE (`llm_tokenizer_bpe_session`): the text is cut into words by the pre-tokenizer
//! regexes llama.cpp selects by `tokenizer.ggml.pre`, each word's bytes are mapped to GPT-2's printable
//! characters, and adjacent pieces are merged lowest merge rank first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::unicode::{byte_to_char, regex_split, Pattern};
use super::{TokenizerError, Vocab};
use crate::gguf::Array;

/// How llama.cpp treats one `tokenizer.ggml.pre` value.
pub(super) struct PreTokenizer {
    pub patterns: &'static [&'static str],
    pub ignore_merges: bool,
    pub add_bos: bool,
    pub clean_spaces: bool,
    /// Words are mapped to GPT-2's byte characters before merging; false for SentencePiece-style BPE
    /// (gemma-4), which merges raw UTF-8 and falls back to `<0xXX>` tokens.
    pub byte_encode: bool,
    /// Spaces become `▁` before pre-tokenization (gemma-4).
    pub escape_whitespaces: bool,
}

const GPT2: &[&str] =
    &["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"];
const LLAMA3: &[&str] = &["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"];
const QWEN35: &[&str] = &["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"];
/// gemma-4: BPE over the whole text with spaces as `▁`, cut only at newlines.
const NEWLINES: &[&str] = &["[^\\n]+|[\\n]+"];
const QWEN2: &[&str] = &["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"];
const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
    "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
    "\\s+$",
    "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
    "\\p{N}+",
];
const DEEPSEEK_CODER: &[&str] = &[
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
    "\\p{N}",
];
const FALCON: &[&str] = &[
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
];
const STARCODER: &[&str] = &[
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
];
const DEFAULT: &[&str] = &[
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
];

/// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value, for the families pocket knows.
pub(super) fn pre_tokenizer(pre: &str) -> Option<PreTokenizer> {
    let p = |patterns, clean_spaces| PreTokenizer {
        patterns,
        ignore_merges: false,
        add_bos: false,
        clean_spaces,
        byte_encode: true,
        escape_whitespaces: false,
    };
    Some(match pre {
        "" | "default" => p(DEFAULT, true),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => PreTokenizer {
            ignore_merges: true,
            add_bos: true,
            ..p(LLAMA3, true)
        },
        "gemma4" | "granite-embed-multi-311m" => PreTokenizer {
            byte_encode: false,
            escape_whitespaces: true,
            ..p(NEWLINES, true)
        },
        "sarvam-moe" => PreTokenizer {
            byte_encode: false,
            escape_whitespaces: true,
            ..p(NEWLINES, false)
        },
        "qwen35" => p(QWEN35, false),
        "dbrx" | "smaug-bpe" => p(LLAMA3, true),
        "deepseek-llm" => p(DEEPSEEK_LLM, false),
        "deepseek-coder" => p(DEEPSEEK_CODER, false),
        "falcon" => p(FALCON, true),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            p(STARCODER, true)
        }
        "command-r" | "smollm" => p(STARCODER, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "exaone4" => {
            p(GPT2, true)
        }
        "trillion" | "granite-docling" => p(GPT2, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => {
            p(QWEN2, false)
        }
        "stablelm2" | "megrez" => p(QWEN2, true),
        _ => return None,
    })
}

/// Merge ranks and the compiled pre-tokenizer.
pub(super) struct Bpe {
    /// Every string that appears in a merge, numbered, so ranks are keyed by a pair of numbers.
    parts: HashMap<Box<str>, u32>,
    ranks: HashMap<(u32, u32), u32>,
    patterns: Vec<Pattern>,
    ignore_merges: bool,
    byte_encode: bool,
    /// gemma-4: a word of newlines only is one token when the vocabulary has it.
    newline_words: bool,
}

impl Bpe {
    pub(super) fn new(
        merges: Array<'_>,
        pre: &PreTokenizer,
        newline_words: bool,
    ) -> Result<Bpe, TokenizerError> {
        let (patterns, ignore_merges) = (pre.patterns, pre.ignore_merges);
        let mut parts: HashMap<Box<str>, u32> = HashMap::new();
        let mut ranks = HashMap::with_capacity(merges.len.min(1 << 22) as usize);
        let mut intern = |s: &str| -> u32 {
            if let Some(&i) = parts.get(s) {
                return i;
            }
            let i = parts.len() as u32;
            parts.insert(s.into(), i);
            i
        };
        for (index, m) in merges.strings().enumerate() {
            // Split at the first space after the first byte, as llama.cpp does.
            let pos = m
                .as_bytes()
                .iter()
                .skip(1)
                .position(|&b| b == b' ')
                .map(|p| p + 1);
            let Some(pos) = pos else {
                return Err(TokenizerError::BadMerge {
                    index,
                    merge: m.to_string(),
                });
            };
            let (a, b) = (intern(&m[..pos]), intern(&m[pos + 1..]));
            ranks.entry((a, b)).or_insert(index as u32);
        }
        let patterns = patterns
            .iter()
            .map(|p| Pattern::new(p))
            .collect::<Result<_, _>>()?;
        Ok(Bpe {
            parts,
            ranks,
            patterns,
            ignore_merges,
            byte_encode: pre.byte_encode,
            newline_words,
        })
    }

    fn rank(&self, a: &str, b: &str) -> Option<u32> {
        let a = *self.parts.get(a)?;
        let b = *self.parts.get(b)?;
        self.ranks.get(&(a, b)).copied()
    }

    /// Tokenizes one fragment of text (no special tokens in it), appending to `out`.
    pub(super) fn tokenize(
        &self,
        v: &Vocab,
        text: &str,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        let map = byte_to_char();
        for word in regex_split(text, &self.patterns)? {
            if self.byte_encode {
                let encoded: String = word.bytes().map(|b| map[b as usize]).collect();
                self.tokenize_word(v, &encoded, out);
            } else {
                self.tokenize_word(v, &word, out);
            }
        }
        Ok(())
    }

    fn tokenize_word(&self, v: &Vocab, word: &str, out: &mut Vec<u32>) {
        if self.ignore_merges || (self.newline_words && word.bytes().all(|b| b == b'\n')) {
            if let Some(id) = v.token_id(word) {
                out.push(id);
                return;
            }
        }
        // Symbols: (start, len, prev, next) over the word's bytes, one per character to begin with.
        let mut sym: Vec<(usize, usize, Option<usize>, Option<usize>)> = Vec::new();
        for (i, (start, c)) in word.char_indices().enumerate() {
            let end = start + c.len_utf8();
            sym.push((
                start,
                c.len_utf8(),
                i.checked_sub(1),
                (end < word.len()).then_some(i + 1),
            ));
        }
        let text = |s: &(usize, usize, Option<usize>, Option<usize>)| &word[s.0..s.0 + s.1];
        // Lowest rank first; among equal ranks the leftmost pair.
        let mut queue: BinaryHeap<Reverse<(u32, usize, usize, usize)>> = BinaryHeap::new();
        let add = |sym: &[(usize, usize, Option<usize>, Option<usize>)],
                   queue: &mut BinaryHeap<Reverse<(u32, usize, usize, usize)>>,
                   l: usize,
                   r: usize| {
            if let Some(rank) = self.rank(text(&sym[l]), text(&sym[r])) {
                queue.push(Reverse((rank, l, r, sym[l].1 + sym[r].1)));
            }
        };
        for i in 1..sym.len() {
            add(&sym, &mut queue, i - 1, i);
        }
        while let Some(Reverse((_, l, r, size))) = queue.pop() {
            let (ls, rs) = (sym[l], sym[r]);
            // Outdated: a side was merged away or grew since the pair was queued. The pieces are
            // contiguous, so same start and same total length means the same text.
            if ls.1 == 0 || rs.1 == 0 || ls.3 != Some(r) || ls.1 + rs.1 != size {
                continue;
            }
            sym[l].1 += rs.1;
            sym[r].1 = 0;
            sym[l].3 = rs.3;
            if let Some(n) = rs.3 {
                sym[n].2 = Some(l);
            }
            if let Some(p) = sym[l].2 {
                add(&sym, &mut queue, p, l);
            }
            if let Some(n) = sym[l].3 {
                add(&sym, &mut queue, l, n);
            }
        }
        for s in sym.iter().filter(|s| s.1 > 0) {
            let piece = text(s);
            match v.token_id(piece) {
                Some(id) => out.push(id),
                None => {
                    // llama.cpp looks each byte up as a one-byte string (`<0xXX>` without byte
                    // encoding) and drops what is missing.
                    for &b in piece.as_bytes() {
                        if !self.byte_encode {
                            if let Some(id) = v.token_id(&format!("<0x{b:02X}>")) {
                                out.push(id);
                            }
                        } else if b < 0x80 {
                            if let Some(id) = v.token_id(std::str::from_utf8(&[b]).unwrap_or("")) {
                                out.push(id);
                            }
                        }
                    }
                }
            }
        }
    }
}
