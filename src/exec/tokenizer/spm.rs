//! SentencePiece-style tokenization (`llm_tokenizer_spm_session`): start from single characters and
//! repeatedly merge the adjacent pair whose merged text is the highest-scoring token; what is left
//! unknown falls back to `<0xXX>` byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{TokenizerError, Vocab};

#[derive(Clone, Copy)]
struct Symbol {
    prev: Option<usize>,
    next: Option<usize>,
    start: usize,
    len: usize,
}

struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// The highest score first; among equal scores the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.left.cmp(&self.left))
    }
}

/// Tokenizes one fragment whose spaces are already `▁`, appending to `out`.
pub(super) fn tokenize(v: &Vocab, text: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    for (i, (start, c)) in text.char_indices().enumerate() {
        let end = start + c.len_utf8();
        symbols.push(Symbol {
            prev: i.checked_sub(1),
            next: (end < text.len()).then_some(i + 1),
            start,
            len: c.len_utf8(),
        });
    }
    let mut queue = BinaryHeap::new();
    let try_add = |symbols: &[Symbol], queue: &mut BinaryHeap<Bigram>, l: usize, r: usize| {
        let s = &text[symbols[l].start..symbols[l].start + symbols[l].len + symbols[r].len];
        if let Some(id) = v.token_id(s) {
            queue.push(Bigram {
                left: l,
                right: r,
                score: v.tokens[id as usize].score,
                size: s.len(),
            });
        }
    };
    for i in 1..symbols.len() {
        try_add(&symbols, &mut queue, i - 1, i);
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (symbols[b.left], symbols[b.right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
            continue;
        }
        symbols[b.left].len += r.len;
        symbols[b.right].len = 0;
        symbols[b.left].next = r.next;
        if let Some(n) = r.next {
            symbols[n].prev = Some(b.left);
        }
        if let Some(p) = symbols[b.left].prev {
            try_add(&symbols, &mut queue, p, b.left);
        }
        if let Some(n) = symbols[b.left].next {
            try_add(&symbols, &mut queue, b.left, n);
        }
    }
    let mut i = if symbols.is_empty() { None } else { Some(0) };
    while let Some(k) = i {
        let s = symbols[k];
        let piece = &text[s.start..s.start + s.len];
        match v.token_id(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece.as_bytes() {
                    out.push(byte_to_token(v, b)?);
                }
            }
        }
        i = s.next;
    }
    Ok(())
}

/// `llama_vocab::byte_to_token` for SentencePiece vocabularies: `<0xXX>`, else the byte itself.
fn byte_to_token(v: &Vocab, b: u8) -> Result<u32, TokenizerError> {
    let hex = format!("<0x{b:02X}>");
    if let Some(id) = v.token_id(&hex) {
        return Ok(id);
    }
    if b < 0x80 {
        if let Some(id) = v.token_id(std::str::from_utf8(&[b]).unwrap_or("")) {
            return Ok(id);
        }
    }
    Err(TokenizerError::NoByteToken(b))
}
