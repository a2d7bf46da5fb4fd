//! The tokenizers of llama.cpp (`src/llama-vocab.cpp`), driven by a file's `tokenizer.ggml.*`
//! metadata: SentencePiece-style (`tokenizer.ggml.model` = `llama`: llama 2, gemma) with score-driven
//! merges and byte fallback; byte-level BPE (`gpt2`) with merge ranks and the pre-tokenizer regexes
//! llama.cpp picks by `tokenizer.ggml.pre`, and gemma-4's BPE over raw UTF-8 (`gemma4`); WordPiece
//! (`bert`: BERT-style normalisation and greedy longest match); and Unigram (`t5`: the file's
//! precompiled SentencePiece normaliser and a Viterbi search over token scores). Special tokens are
//! split out of the text first, as llama.cpp's `tokenizer_st_partition` does; BOS/EOS/SEP follow the
//! file's flags and llama.cpp's defaults. Everything read from the file is checked: a bad vocabulary is
//! a [`TokenizerError`], never a panic.

mod bpe;
mod spm;
mod ugm;
mod unicode;
mod unicode_data;
mod wpm;

use crate::gguf::{Gguf, Value, ValueType};

/// Token attributes, as llama.cpp's `llama_token_attr`.
pub mod attr {
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
    pub const LSTRIP: u32 = 1 << 7;
    pub const RSTRIP: u32 = 1 << 8;
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("no {0} in the file's metadata")]
    MissingKey(&'static str),
    #[error("{key} is {found}, expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("unsupported tokenizer '{0}' ({KEY_MODEL}): pocket reads 'llama' (SentencePiece), 'gpt2' and 'gemma4' (BPE), 'bert' (WordPiece) and 't5' (Unigram)")]
    UnsupportedModel(String),
    #[error("unknown pre-tokenizer '{0}' ({KEY_PRE})")]
    UnknownPre(String),
    #[error("{key} has {found} entries but {KEY_TOKENS} has {expected}")]
    LengthMismatch {
        key: &'static str,
        found: u64,
        expected: u64,
    },
    #[error("{KEY_TOKENS} is empty")]
    EmptyVocab,
    #[error("{KEY_TOKENS} has {0} entries, more than a token id can address")]
    TooManyTokens(u64),
    #[error("{KEY_TOKENS}[{id}] = {text:?} repeats token {first}")]
    DuplicateToken { id: u32, first: u32, text: String },
    #[error("{KEY_MERGES}[{index}] = {merge:?} is not two pieces separated by a space")]
    BadMerge { index: usize, merge: String },
    #[error("{key} = {id} is out of range (vocabulary of {n_vocab} tokens)")]
    SpecialOutOfRange {
        key: &'static str,
        id: u64,
        n_vocab: usize,
    },
    #[error("token id {id} is out of range (vocabulary of {n_vocab} tokens)")]
    IdOutOfRange { id: u32, n_vocab: usize },
    #[error("token {id} ({text:?}) is typed as a byte token but is not <0xXX>")]
    BadByteToken { id: u32, text: String },
    #[error("the vocabulary has no token for byte 0x{0:02X} (byte fallback)")]
    NoByteToken(u8),
    #[error("{0} is to be added but the vocabulary has none")]
    NoSpecial(&'static str),
    #[error("pre-tokenizer pattern {pattern:?}: {message}")]
    Regex { pattern: String, message: String },
    #[error("{KEY_CHARSMAP}: {0}")]
    Charsmap(String),
}

pub const KEY_MODEL: &str = "tokenizer.ggml.model";
pub const KEY_PRE: &str = "tokenizer.ggml.pre";
pub const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
pub const KEY_SCORES: &str = "tokenizer.ggml.scores";
pub const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub const KEY_MERGES: &str = "tokenizer.ggml.merges";
pub const KEY_CHARSMAP: &str = "tokenizer.ggml.precompiled_charsmap";

/// Which algorithm turns a piece of text into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabType {
    /// SentencePiece-style: merges by token score, `▁` for spaces, `<0xXX>` byte fallback.
    Spm,
    /// Byte-level BPE: merges by rank after regex pre-tokenization, bytes mapped to printable characters
    /// (gemma-4: merges over raw UTF-8 with `▁` for spaces and `<0xXX>` byte fallback).
    Bpe,
    /// WordPiece (BERT): lower-cased, accent-stripped words, each the greedy longest match of tokens.
    Wpm,
    /// Unigram (T5, XLM-R): the file's precompiled normaliser, then the most probable segmentation.
    Ugm,
}

#[derive(Debug, Clone)]
pub struct TokenData {
    pub text: TokenText,
    pub score: f32,
    pub attr: u32,
}

/// A token's text: up to [`TokenText::INLINE`] bytes kept in place (most tokens, and every
/// `[EMPTY_n]` stand-in), longer ones boxed. A `String` per token cost an allocation each, 2.1 GB
/// for a vocabulary of 10M empty tokens with the index and the pieces (issue #27).
#[derive(Clone)]
pub struct TokenText(TextRepr);

#[derive(Clone)]
enum TextRepr {
    Inline {
        len: u8,
        buf: [u8; TokenText::INLINE],
    },
    Boxed(Box<str>),
}

impl TokenText {
    pub const INLINE: usize = 22;

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only ever filled from a `&str` cut at its length (see `From<&str>`).
            TextRepr::Inline { len, buf } => {
                std::str::from_utf8(&buf[..*len as usize]).expect("whole UTF-8 text")
            }
            TextRepr::Boxed(b) => b,
        }
    }
}

impl From<&str> for TokenText {
    fn from(s: &str) -> Self {
        if s.len() <= Self::INLINE {
            let mut buf = [0u8; Self::INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            TokenText(TextRepr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            TokenText(TextRepr::Boxed(s.into()))
        }
    }
}

impl std::ops::Deref for TokenText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for TokenText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for TokenText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for TokenText {
    fn eq(&self, o: &Self) -> bool {
        self.as_str() == o.as_str()
    }
}

impl PartialEq<str> for TokenText {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for TokenText {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

/// Token ids by text: an open-addressed table of ids (4 bytes a slot, at most 7/8 full) whose
/// texts are the tokens' own, instead of a map holding a second copy of every text.
struct TextIndex {
    slots: Vec<u32>,
    state: std::collections::hash_map::RandomState,
}

/// An empty slot of a [`TextIndex`] (ids are below `i32::MAX`).
const NO_ID: u32 = u32::MAX;

impl TextIndex {
    fn with_capacity(n: usize) -> TextIndex {
        let size = (n + n / 7 + 1).next_power_of_two().max(8);
        TextIndex {
            slots: vec![NO_ID; size],
            state: Default::default(),
        }
    }

    fn start(&self, text: &str) -> usize {
        use std::hash::BuildHasher;
        self.state.hash_one(text) as usize & (self.slots.len() - 1)
    }

    fn get(&self, tokens: &[TokenData], text: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.start(text);
        loop {
            match self.slots[i] {
                NO_ID => return None,
                id if tokens[id as usize].text.as_str() == text => return Some(id),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Adds `id` (whose text is `tokens[id]`'s); the id already there when the text is taken.
    fn insert(&mut self, tokens: &[TokenData], id: u32) -> Result<(), u32> {
        let text = tokens[id as usize].text.as_str();
        let mask = self.slots.len() - 1;
        let mut i = self.start(text);
        loop {
            match self.slots[i] {
                NO_ID => {
                    self.slots[i] = id;
                    return Ok(());
                }
                other if tokens[other as usize].text.as_str() == text => return Err(other),
                _ => i = (i + 1) & mask,
            }
        }
    }
}

/// Each token's piece ([`Vocab::token_to_piece`]): its text's bytes when they are the same (most
/// tokens of SentencePiece vocabularies), else a span of one shared buffer.
#[derive(Default)]
struct Pieces {
    bytes: Vec<u8>,
    /// (start, length) in `bytes`, or `SAME` as the token's text.
    at: Vec<(u32, u32)>,
}

impl Pieces {
    const SAME: u32 = u32::MAX;
}

/// A vocabulary and everything needed to tokenize with it.
pub struct Vocab {
    vtype: VocabType,
    pre: String,
    tokens: Vec<TokenData>,
    token_to_id: TextIndex,
    bpe: Option<bpe::Bpe>,
    ugm: Option<ugm::Ugm>,
    /// Control, user-defined and unknown tokens, longest text first (`cache_special_tokens`).
    special: Vec<u32>,
    pieces: Pieces,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    unk: Option<u32>,
    sep: Option<u32>,
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
    /// Spaces become `▁` before tokenization (BPE of gemma-4; Unigram).
    escape_whitespaces: bool,
    /// Unigram: runs of spaces become one, leading and trailing ones go.
    remove_extra_whitespaces: bool,
    /// WordPiece normalisation: lower-case, and drop accents.
    lowercase: bool,
    strip_accents: bool,
    /// The longest token text in bytes (WordPiece's match window).
    max_token_len: usize,
}

fn to_id(v: i64) -> Option<u32> {
    u32::try_from(v).ok()
}

fn get_bool(g: &Gguf<'_>, key: &'static str) -> Result<Option<bool>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(TokenizerError::WrongType {
            key,
            expected: "a bool",
            found: v.value_type().name().to_string(),
        }),
    }
}

fn get_array<'a>(
    g: &Gguf<'a>,
    key: &'static str,
    allowed: &[ValueType],
    expected: &'static str,
) -> Result<Option<crate::gguf::Array<'a>>, TokenizerError> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) if allowed.contains(&a.elem_type) => Ok(Some(*a)),
        Some(v) => Err(TokenizerError::WrongType {
            key,
            expected,
            found: crate::gguf::json::type_string(v),
        }),
    }
}

impl Vocab {
    /// Reads the vocabulary from a file's metadata, as llama.cpp's `llama_vocab::impl::load`.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Vocab, TokenizerError> {
        let model = match g.get(KEY_MODEL) {
            None => return Err(TokenizerError::MissingKey(KEY_MODEL)),
            Some(Value::String(s)) => *s,
            Some(v) => {
                return Err(TokenizerError::WrongType {
                    key: KEY_MODEL,
                    expected: "a string",
                    found: v.value_type().name().to_string(),
                })
            }
        };
        let file_pre = match g.get(KEY_PRE) {
            None => "",
            Some(Value::String(s)) => *s,
            Some(v) => {
                return Err(TokenizerError::WrongType {
                    key: KEY_PRE,
                    expected: "a string",
                    found: v.value_type().name().to_string(),
                })
            }
        };
        // Default special tokens per tokenizer, as llama.cpp's `load`.
        let (vtype, mut bos, mut eos, mut unk, mut sep) = match model {
            "llama" => (VocabType::Spm, Some(1), Some(2), Some(0), None),
            "bert" => (VocabType::Wpm, Some(101), None, Some(100), Some(102)),
            "gpt2" => (VocabType::Bpe, Some(11), Some(11), None, None),
            "gemma4" => (VocabType::Bpe, None, None, None, None),
            "t5" => (VocabType::Ugm, None, Some(1), Some(2), None),
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        // gemma-4's tokenizer always uses its own pre-tokenizer, whatever the file says.
        let pre = if model == "gemma4" {
            "gemma4"
        } else {
            file_pre
        };
        let mut add_space_prefix = false;
        let mut add_bos = false;
        let mut add_eos = false;
        let mut clean_spaces = false;
        let mut escape_whitespaces = true;
        let mut pre_tok = None;
        match vtype {
            VocabType::Spm => {
                add_space_prefix = true;
                add_bos = true;
            }
            VocabType::Bpe => {
                escape_whitespaces = false;
                clean_spaces = true;
                let p = bpe::pre_tokenizer(pre)
                    .ok_or_else(|| TokenizerError::UnknownPre(pre.to_string()))?;
                add_bos |= p.add_bos;
                clean_spaces &= p.clean_spaces;
                escape_whitespaces |= p.escape_whitespaces;
                pre_tok = Some(p);
            }
            VocabType::Wpm => {
                clean_spaces = true;
                add_bos = true;
            }
            VocabType::Ugm => add_eos = true,
        }
        if let Some(b) = get_bool(g, "tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = b;
        }
        let remove_extra_whitespaces =
            get_bool(g, "tokenizer.ggml.remove_extra_whitespaces")?.unwrap_or(false);

        let list = get_array(g, KEY_TOKENS, &[ValueType::String], "an array of strings")?
            .ok_or(TokenizerError::MissingKey(KEY_TOKENS))?;
        let n = list.len;
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if n > i32::MAX as u64 {
            return Err(TokenizerError::TooManyTokens(n));
        }
        let scores = get_array(
            g,
            KEY_SCORES,
            &[ValueType::F32, ValueType::I32],
            "an array of f32 or i32",
        )?;
        let types = get_array(g, KEY_TOKEN_TYPE, &[ValueType::I32], "an array of i32")?;
        for (key, arr) in [(KEY_SCORES, scores), (KEY_TOKEN_TYPE, types)] {
            if let Some(a) = arr {
                if a.len != n {
                    return Err(TokenizerError::LengthMismatch {
                        key,
                        found: a.len,
                        expected: n,
                    });
                }
            }
        }
        // The counts were checked against the file's bytes when it was parsed.
        let n = n as usize;
        let mut max_token_len = 0;
        let mut tokens = Vec::with_capacity(n);
        let mut token_to_id = TextIndex::with_capacity(n);
        let mut score_it = scores.map(|a| a.iter());
        let mut type_it = types.map(|a| a.iter());
        for (i, text) in list.strings().enumerate() {
            let id = i as u32;
            let score = score_it
                .as_mut()
                .and_then(|it| it.next())
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0) as f32;
            let attr = match type_it.as_mut().and_then(|it| it.next()) {
                None => attr::NORMAL,
                Some(v) => match v.as_i64() {
                    Some(1) => attr::NORMAL,
                    Some(2) => attr::UNKNOWN,
                    Some(3) => attr::CONTROL,
                    Some(4) => attr::USER_DEFINED,
                    Some(5) => attr::UNUSED,
                    Some(6) => attr::BYTE,
                    _ => 0,
                },
            };
            let text = if text.is_empty() {
                TokenText::from(format!("[EMPTY_{i}]").as_str())
            } else {
                TokenText::from(text)
            };
            max_token_len = max_token_len.max(text.len());
            tokens.push(TokenData { text, score, attr });
            if let Err(first) = token_to_id.insert(&tokens, id) {
                return Err(TokenizerError::DuplicateToken {
                    id,
                    first,
                    text: tokens[id as usize].text.to_string(),
                });
            }
        }
        if tokens.len() != n {
            return Err(TokenizerError::LengthMismatch {
                key: KEY_TOKENS,
                found: tokens.len() as u64,
                expected: n as u64,
            });
        }

        let bpe = match &pre_tok {
            Some(p) => {
                let merges = get_array(g, KEY_MERGES, &[ValueType::String], "an array of strings")?
                    .ok_or(TokenizerError::MissingKey(KEY_MERGES))?;
                Some(bpe::Bpe::new(merges, p, pre == "gemma4")?)
            }
            None => None,
        };
        let charsmap = match vtype {
            VocabType::Ugm => get_array(
                g,
                KEY_CHARSMAP,
                &[ValueType::U8, ValueType::I8],
                "an array of u8 or i8",
            )?
            .map(|a| a.raw),
            _ => None,
        };

        // Special token ids: llama.cpp's defaults unless out of range, then the file's.
        for id in [&mut bos, &mut eos, &mut unk, &mut sep] {
            if id.is_some_and(|v| v as usize >= n) {
                *id = None;
            }
        }
        let mut eot = None;
        let mut eom = None;
        let mut fim = [None; 6];
        let special_keys: [(&'static str, usize); 17] = [
            ("tokenizer.ggml.bos_token_id", 0),
            ("tokenizer.ggml.eos_token_id", 1),
            ("tokenizer.ggml.eot_token_id", 2),
            ("tokenizer.ggml.eom_token_id", 3),
            ("tokenizer.ggml.unknown_token_id", 4),
            ("tokenizer.ggml.seperator_token_id", 12),
            ("tokenizer.ggml.padding_token_id", 5),
            ("tokenizer.ggml.mask_token_id", 5),
            ("tokenizer.ggml.fim_pre_token_id", 6),
            ("tokenizer.ggml.fim_suf_token_id", 7),
            ("tokenizer.ggml.fim_mid_token_id", 8),
            ("tokenizer.ggml.fim_pad_token_id", 9),
            ("tokenizer.ggml.fim_rep_token_id", 10),
            ("tokenizer.ggml.fim_sep_token_id", 11),
            ("tokenizer.ggml.prefix_token_id", 6),
            ("tokenizer.ggml.suffix_token_id", 7),
            ("tokenizer.ggml.middle_token_id", 8),
        ];
        for (key, slot) in special_keys {
            let Some(v) = g.get(key) else { continue };
            let id = v.as_i64().ok_or_else(|| TokenizerError::WrongType {
                key,
                expected: "an integer",
                found: v.value_type().name().to_string(),
            })?;
            let id = to_id(id).filter(|&i| (i as usize) < n).ok_or(
                TokenizerError::SpecialOutOfRange {
                    key,
                    id: id as u64,
                    n_vocab: n,
                },
            )?;
            match slot {
                0 => bos = Some(id),
                1 => eos = Some(id),
                2 => eot = Some(id),
                3 => eom = Some(id),
                4 => unk = Some(id),
                5 => {}
                12 => sep = Some(id),
                s => fim[s - 6] = Some(id),
            }
        }
        if let Some(b) = get_bool(g, "tokenizer.ggml.add_bos_token")? {
            add_bos = b;
        }
        if let Some(b) = get_bool(g, "tokenizer.ggml.add_eos_token")? {
            add_eos = b;
        }
        // llama.cpp's workaround for gemma-4 files that say otherwise.
        if pre == "gemma4" {
            add_bos = true;
        }
        // BERT's normaliser: lower-case unless the file says not to; strip accents as it lower-cases.
        let lowercase = get_bool(g, "tokenizer.ggml.normalizer.lowercase")?.unwrap_or(true);
        let strip_accents =
            get_bool(g, "tokenizer.ggml.normalizer.strip_accents")?.unwrap_or(lowercase);

        let mut v = Vocab {
            vtype,
            pre: pre.to_string(),
            tokens,
            token_to_id,
            bpe,
            ugm: None,
            special: Vec::new(),
            pieces: Pieces::default(),
            bos,
            eos,
            eot,
            unk,
            sep,
            eog: Vec::new(),
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            escape_whitespaces,
            remove_extra_whitespaces,
            lowercase,
            strip_accents,
            max_token_len,
        };
        if vtype == VocabType::Ugm {
            // From the attributes the file gives, before the special-token detection below changes
            // some: llama.cpp builds it in `init_tokenizer`, at this point.
            v.ugm = Some(ugm::Ugm::new(&v, charsmap)?);
        }
        v.detect_special(eom, &mut fim);
        v.check_byte_tokens()?;

        // Control, user-defined and unknown tokens are matched in the text, longest first.
        let mut special: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                v.tokens[id as usize].attr & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN)
                    != 0
            })
            .collect();
        special.sort_by(|&a, &b| {
            v.tokens[b as usize]
                .text
                .len()
                .cmp(&v.tokens[a as usize].text.len())
                .then(a.cmp(&b))
        });
        v.special = special;
        let mut pieces = Pieces {
            bytes: Vec::new(),
            at: Vec::with_capacity(n),
        };
        for id in 0..n as u32 {
            let p = v.render_piece(id);
            if p == v.tokens[id as usize].text.as_bytes() {
                pieces.at.push((Pieces::SAME, 0));
                continue;
            }
            let start = u32::try_from(pieces.bytes.len())
                .ok()
                .filter(|&s| s != Pieces::SAME && p.len() <= (u32::MAX - s) as usize)
                .ok_or(TokenizerError::TooManyTokens(n as u64))?;
            pieces.bytes.extend_from_slice(&p);
            pieces.at.push((start, p.len() as u32));
        }
        v.pieces = pieces;
        v.set_strip_attrs(g, file_pre);
        Ok(v)
    }

    /// llama.cpp finds EOT, EOM, FIM and end-of-generation tokens by their text and marks them as
    /// control tokens, which changes how they are split out of text.
    fn detect_special(&mut self, mut eom: Option<u32>, fim: &mut [Option<u32>; 6]) {
        const EOT: &[&str] = &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|end_of_text|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "<｜end▁of▁sentence｜>",
            "<end_of_utterance>",
        ];
        const FIM: [&[&str]; 6] = [
            &[
                "<|fim_prefix|>",
                "<fim-prefix>",
                "<fim_prefix>",
                "<｜fim▁begin｜>",
                "<PRE>",
                "▁<PRE>",
                "<|code_prefix|>",
                "<|prefix|>",
            ],
            &[
                "<|fim_suffix|>",
                "<fim-suffix>",
                "<fim_suffix>",
                "<｜fim▁hole｜>",
                "<SUF>",
                "▁<SUF>",
                "<|code_suffix|>",
                "<|suffix|>",
            ],
            &[
                "<|fim_middle|>",
                "<fim-middle>",
                "<fim_middle>",
                "<｜fim▁end｜>",
                "<MID>",
                "▁<MID>",
                "<|code_middle|>",
                "<|middle|>",
            ],
            &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
            &[
                "<|fim_repo|>",
                "<|repo_name|>",
                "<fim-repo>",
                "<REPO>",
                "<reponame>",
            ],
            &["<|file_sep|>"],
        ];
        const EOG: &[&str] = &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<|return|>",
            "<|call|>",
            "<|flush|>",
            "<|calls|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "</s>",
            "<|eom_id|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "[EOS]",
            "<|end_of_text|>",
            "<end_of_utterance>",
            "<eos>",
            "<turn|>",
            "<|tool_response>",
            "<｜end▁of▁sentence｜>",
            "[e~[",
        ];
        let find =
            |names: &[&str], v: &Vocab| -> Option<u32> { names.iter().find_map(|t| v.token_id(t)) };
        if self.eot.is_none() {
            self.eot = find(EOT, self);
            if let Some(id) = self.eot {
                self.tokens[id as usize].attr |= attr::CONTROL;
            }
        }
        if eom.is_none() {
            eom = find(&["<|eom_id|>"], self);
            if let Some(id) = eom {
                self.tokens[id as usize].attr |= attr::CONTROL;
            }
        }
        for (slot, names) in fim.iter_mut().zip(FIM) {
            if slot.is_none() {
                *slot = find(names, self);
                if let Some(id) = *slot {
                    self.tokens[id as usize].attr |= attr::CONTROL;
                }
            }
        }
        for t in &mut self.tokens {
            if t.attr & attr::CONTROL != 0 && t.text.contains("unused") {
                t.attr |= attr::UNUSED;
            }
        }
        let mut eog: Vec<u32> = fim[3..].iter().flatten().copied().collect();
        for name in EOG {
            if let Some(id) = self.token_id(name) {
                eog.push(id);
                self.tokens[id as usize].attr |= attr::CONTROL;
            }
        }
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = self.token_id(name) {
                self.tokens[id as usize].attr = attr::USER_DEFINED;
            }
        }
        eog.extend([self.eos, self.eot, eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        let find_eog = |t: &str, eog: &[u32], v: &Vocab| {
            eog.iter()
                .copied()
                .find(|&id| v.tokens[id as usize].text == t)
        };
        if let Some(end) = find_eog("<|end|>", &eog, self) {
            let has = |t: &str| find_eog(t, &eog, self).is_some();
            let call = has("<|call|>") || has("<|calls|>");
            if call && (has("<|return|>") || has("<|flush|>")) {
                eog.retain(|&id| id != end);
                self.tokens[end as usize].attr = attr::USER_DEFINED;
            }
        }
        if let Some(s) = find_eog("</s>", &eog, self) {
            let marker = find_eog("<|tool_response>", &eog, self)
                .or_else(|| find_eog("<|plamo:eos|>", &eog, self));
            if marker.is_some() {
                eog.retain(|&id| id != s);
                self.tokens[s as usize].attr = attr::NORMAL;
            }
        }
        self.eog = eog;
    }

    /// Byte tokens must be `<0xXX>` so that rendering them cannot fail later.
    fn check_byte_tokens(&self) -> Result<(), TokenizerError> {
        for (id, t) in self.tokens.iter().enumerate() {
            if t.attr & attr::BYTE != 0 && parse_byte_token(&t.text).is_none() {
                return Err(TokenizerError::BadByteToken {
                    id: id as u32,
                    text: t.text.to_string(),
                });
            }
        }
        Ok(())
    }

    /// llama.cpp's per-model strip attributes (after the piece cache, as there).
    fn set_strip_attrs(&mut self, g: &Gguf<'_>, pre: &str) {
        let name = g.get_str("general.name").unwrap_or("").to_ascii_lowercase();
        let arch = g.architecture().unwrap_or("");
        let any = |s: &str, subs: &[&str]| subs.iter().any(|x| s.contains(x));
        let set = |v: &mut Vocab, t: &str, a: u32, on: bool| {
            if let Some(id) = v.token_id(t) {
                let at = &mut v.tokens[id as usize].attr;
                *at = if on { *at | a } else { *at & !a };
            }
        };
        if any(pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"])
            || any(arch, &["nomic-bert-moe", "jina-bert-v3"])
        {
            set(self, "<mask>", attr::LSTRIP, true);
        } else if any(&name, &["phi-3", "phi3"]) {
            for i in 0..self.special.len() {
                let id = self.special[i] as usize;
                self.tokens[id].attr |= attr::RSTRIP;
            }
            set(self, "</s>", attr::RSTRIP, true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set(self, t, attr::RSTRIP, false);
            }
        } else if any(&name, &["modern-bert"]) {
            set(self, "[MASK]", attr::LSTRIP, true);
        }
    }

    pub fn vocab_type(&self) -> VocabType {
        self.vtype
    }

    /// `tokenizer.ggml.pre` as read (empty when absent).
    pub fn pre(&self) -> &str {
        &self.pre
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    pub fn token(&self, id: u32) -> Option<&TokenData> {
        self.tokens.get(id as usize)
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(&self.tokens, text)
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    pub fn eot(&self) -> Option<u32> {
        self.eot
    }

    pub fn unk(&self) -> Option<u32> {
        self.unk
    }

    /// The separator token WordPiece vocabularies end a sequence with (BERT's `[SEP]`).
    pub fn sep(&self) -> Option<u32> {
        self.sep
    }

    /// Whether generating this token ends generation (EOS, EOT, `<|im_end|>`...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// Whether the model wants a BOS token in front of a prompt.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// `llama_tokenize`: `add_special` adds BOS/EOS as the vocabulary asks; `parse_special` lets
    /// control tokens written in the text (`<start_of_turn>`) become those tokens.
    pub fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let fragments = if text.is_empty() {
            Vec::new()
        } else {
            self.partition(text, parse_special)
        };
        let mut out = Vec::new();
        let bos = |out: &mut Vec<u32>| -> Result<(), TokenizerError> {
            if add_special && self.add_bos {
                out.push(self.bos.ok_or(TokenizerError::NoSpecial("BOS"))?);
            }
            Ok(())
        };
        bos(&mut out)?;
        match self.vtype {
            VocabType::Spm => {
                let mut prev_special = true;
                for f in fragments {
                    match f {
                        Fragment::Text(t) => {
                            let mut s = String::with_capacity(t.len() + 1);
                            if self.add_space_prefix && prev_special {
                                s.push(' ');
                            }
                            s.push_str(t);
                            let s = s.replace(' ', "\u{2581}");
                            spm::tokenize(self, &s, &mut out)?;
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            VocabType::Bpe => {
                let bpe = self.bpe.as_ref().expect("BPE vocabularies have merges");
                for f in fragments {
                    match f {
                        Fragment::Text(t) if self.escape_whitespaces => {
                            bpe.tokenize(self, &t.replace(' ', "\u{2581}"), &mut out)?
                        }
                        Fragment::Text(t) => bpe.tokenize(self, t, &mut out)?,
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
            VocabType::Wpm => {
                // BERT's [CLS] ... [SEP], whatever add_bos says.
                if add_special && !self.add_bos {
                    out.push(self.bos.ok_or(TokenizerError::NoSpecial("BOS"))?);
                }
                for f in fragments {
                    match f {
                        Fragment::Text(t) => wpm::tokenize(self, t, &mut out)?,
                        Fragment::Token(id) => out.push(id),
                    }
                }
                if add_special {
                    out.push(self.sep.ok_or(TokenizerError::NoSpecial("SEP"))?);
                }
                return Ok(out);
            }
            VocabType::Ugm => {
                let ugm = self
                    .ugm
                    .as_ref()
                    .expect("Unigram vocabularies have their tables");
                for f in fragments {
                    match f {
                        Fragment::Text(t) => ugm.tokenize(self, t, &mut out)?,
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.push(self.eos.ok_or(TokenizerError::NoSpecial("EOS"))?);
        }
        Ok(out)
    }

    /// `tokenizer_st_partition`: splits special tokens out of the text, longest first.
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut frags = vec![Fragment::Text(text)];
        for &id in &self.special {
            let t = &self.tokens[id as usize];
            if !parse_special && t.attr & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let needle = t.text.as_str();
            let mut next = Vec::with_capacity(frags.len());
            for f in frags {
                let Fragment::Text(mut rest) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(at) = rest.find(needle) {
                    let mut left = &rest[..at];
                    if t.attr & attr::LSTRIP != 0 {
                        left = left.trim_end_matches(is_c_space);
                    }
                    if !left.is_empty() {
                        next.push(Fragment::Text(left));
                    }
                    next.push(Fragment::Token(id));
                    rest = &rest[at + needle.len()..];
                    if t.attr & attr::RSTRIP != 0 {
                        rest = rest.trim_start_matches(is_c_space);
                    }
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            frags = next;
        }
        frags
    }

    /// The text of a token as llama.cpp renders it (with special tokens rendered).
    fn render_piece(&self, id: u32) -> Vec<u8> {
        let t = &self.tokens[id as usize];
        if t.attr & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            return t.text.as_bytes().to_vec();
        }
        if t.attr & attr::NORMAL != 0 {
            return match self.vtype {
                VocabType::Bpe if !self.escape_whitespaces => decode_bpe_text(&t.text),
                _ => t.text.replace('\u{2581}', " ").into_bytes(),
            };
        }
        if t.attr & attr::BYTE != 0 {
            if let Some(b) = parse_byte_token(&t.text) {
                return vec![b];
            }
        }
        Vec::new()
    }

    /// `llama_token_to_piece`: the bytes a token stands for. Control and unknown tokens are empty
    /// unless `special`. A piece may be part of a UTF-8 character (byte tokens).
    pub fn token_to_piece(&self, id: u32, special: bool) -> Result<&[u8], TokenizerError> {
        let t = self
            .tokens
            .get(id as usize)
            .ok_or(TokenizerError::IdOutOfRange {
                id,
                n_vocab: self.tokens.len(),
            })?;
        if !special && t.attr & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return Ok(&[]);
        }
        Ok(match self.pieces.at[id as usize] {
            (Pieces::SAME, _) => t.text.as_bytes(),
            (start, len) => &self.pieces.bytes[start as usize..(start + len) as usize],
        })
    }

    /// `llama_detokenize`: the text of a sequence of tokens. `remove_special` drops a leading BOS and
    /// trailing EOS the vocabulary adds; `unparse_special` renders control tokens as their text.
    pub fn detokenize(
        &self,
        ids: &[u32],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<Vec<u8>, TokenizerError> {
        let mut ids = ids;
        let mut remove_space = self.add_space_prefix;
        if remove_special && self.add_bos && !ids.is_empty() && Some(ids[0]) == self.bos {
            remove_space = false;
            ids = &ids[1..];
        }
        if remove_special && self.add_eos && ids.last().is_some_and(|&l| Some(l) == self.eos) {
            ids = &ids[..ids.len() - 1];
        }
        let mut text = Vec::new();
        for &id in ids {
            let mut piece = self.token_to_piece(id, unparse_special)?;
            if remove_space && piece.first() == Some(&b' ') {
                piece = &piece[1..];
            }
            remove_space = false;
            text.extend_from_slice(piece);
        }
        if self.clean_spaces {
            clean_up_spaces(&mut text);
        }
        Ok(text)
    }
}

enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// C's `isspace` in the "C" locale.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// The byte of a `<0xXX>` token.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// `llama_decode_text`: GPT-2 byte characters back to bytes.
fn decode_bpe_text(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match unicode::char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
    out
}

/// The three clean-up passes of `llama_vocab::impl::detokenize` (`clean_up_tokenization_spaces`).
fn clean_up_spaces(text: &mut Vec<u8>) {
    // " ?", " !", " .", " ," lose the space.
    let t = std::mem::take(text);
    let mut out: Vec<u8> = Vec::with_capacity(t.len());
    for (i, &x) in t.iter().enumerate() {
        if i > 0 && t[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        out.push(x);
    }
    // " ' " becomes "'".
    // llama.cpp overwrites the skipped space with NUL in place, which the next comparison sees.
    let mut t = out;
    let mut out: Vec<u8> = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let x = t[i];
        if i > 0 && x == b'\'' && i + 1 < t.len() && t[i - 1] == b' ' && t[i + 1] == b' ' {
            t[i + 1] = 0;
            out.pop();
            out.push(x);
            i += 2;
            continue;
        }
        out.push(x);
        i += 1;
    }
    // " 's", " 'm", " 're", " 've" lose the space.
    let t = out;
    let mut out: Vec<u8> = Vec::with_capacity(t.len());
    for (i, &x) in t.iter().enumerate() {
        if i > 0 && t[i - 1] == b' ' && x == b'\'' && i + 1 < t.len() {
            let x1 = t[i + 1];
            let x2 = t.get(i + 2).copied();
            if matches!(x1, b's' | b'm')
                || (i + 2 < t.len() && matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e'))))
            {
                out.pop();
            }
        }
        out.push(x);
    }
    *text = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_up_matches_llama() {
        let mut t = b"Hello , world ! it 's a ' b ' 're 't".to_vec();
        clean_up_spaces(&mut t);
        assert_eq!(
            String::from_utf8(t).unwrap(),
            "Hello, world! it's a'b''re 't"
        );
        // The second quote sees the NUL llama.cpp wrote over the space it skipped.
        let mut t = b"a ' ' b".to_vec();
        clean_up_spaces(&mut t);
        assert_eq!(String::from_utf8(t).unwrap(), "a'' b");
    }

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xff>"), Some(255));
        assert_eq!(parse_byte_token("<0x0A"), None);
        assert_eq!(parse_byte_token("<0x>"), None);
    }
}
