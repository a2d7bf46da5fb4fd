//! Unigram (`llm_tokenizer_ugm`, T5 and XLM-R style): the text is normalised by the file's
//! precompiled SentencePiece character map (`tokenizer.ggml.precompiled_charsmap`: a XOR-compressed
//! double array of byte sequences and the strings that replace them), spaces become `▁`, and the
//! segmentation with the highest sum of token scores wins (Viterbi over byte positions); code points no
//! token covers become the unknown token, runs of them one.
//!
//! llama.cpp walks byte tries of the tokens; here the tokens are sorted by their bytes once and a walk
//! narrows a range of that list byte by byte, which finds the same prefixes without a node per byte.

use super::unicode::utf8_len;
use super::{attr, TokenizerError, Vocab};

pub(super) struct Ugm {
    /// Normal, user-defined and unused tokens, sorted by text bytes (llama.cpp's `token_matcher`).
    matcher: Vec<u32>,
    /// User-defined tokens, sorted by text bytes (`user_defined_token_matcher`).
    user_defined: Vec<u32>,
    /// The character map's double array, and the NUL-terminated replacement strings after it.
    xcda: Vec<u32>,
    replacements: Vec<u8>,
    unknown_score: f32,
}

/// One node of a walk down a sorted token list: the tokens in `lo..hi` all start with the bytes
/// walked so far.
struct Walk<'a> {
    v: &'a Vocab,
    list: &'a [u32],
    lo: usize,
    hi: usize,
    depth: usize,
}

impl<'a> Walk<'a> {
    fn new(v: &'a Vocab, list: &'a [u32]) -> Walk<'a> {
        Walk {
            v,
            list,
            lo: 0,
            hi: list.len(),
            depth: 0,
        }
    }

    fn text(&self, id: u32) -> &'a [u8] {
        self.v.tokens[id as usize].text.as_bytes()
    }

    /// Goes one byte deeper; false (and nothing changed) when no token continues with `b`.
    fn step(&mut self, b: u8) -> bool {
        let d = self.depth;
        let range = &self.list[self.lo..self.hi];
        // Shorter texts sort first, so within the range the byte at `d` ascends, None first.
        let first = range.partition_point(|&id| self.text(id).get(d).is_none_or(|&c| c < b));
        let end = range.partition_point(|&id| self.text(id).get(d).is_none_or(|&c| c <= b));
        if first == end {
            return false;
        }
        self.hi = self.lo + end;
        self.lo += first;
        self.depth += 1;
        true
    }

    /// The token whose text is exactly the bytes walked, if there is one (it sorts first).
    fn value(&self) -> Option<u32> {
        let id = *self.list.get(self.lo)?;
        (self.lo < self.hi && self.text(id).len() == self.depth).then_some(id)
    }
}

fn sorted(v: &Vocab, keep: impl Fn(u32) -> bool) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..v.tokens.len() as u32).filter(|&id| keep(id)).collect();
    ids.sort_by(|&a, &b| {
        v.tokens[a as usize]
            .text
            .as_bytes()
            .cmp(v.tokens[b as usize].text.as_bytes())
    });
    ids
}

/// The best segmentation ending at a byte position: its last token, where that token starts, and the
/// sum of scores.
#[derive(Clone, Copy)]
struct Best {
    id: Option<u32>,
    start: usize,
    score: f64,
}

impl Ugm {
    pub(super) fn new(v: &Vocab, charsmap: Option<&[u8]>) -> Result<Ugm, TokenizerError> {
        let (mut xcda, mut replacements) = (Vec::new(), Vec::new());
        if let Some(map) = charsmap.filter(|m| !m.is_empty()) {
            let bad = |m: String| TokenizerError::Charsmap(m);
            let head: [u8; 4] = map
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| bad(format!("{} bytes, too small for its size field", map.len())))?;
            // Little-endian whatever the file's byte order: llama.cpp reads it so on every host.
            let blob = u32::from_le_bytes(head) as usize;
            if blob.saturating_add(4) >= map.len() {
                return Err(bad(format!(
                    "its double array of {blob} bytes does not fit in its {} bytes",
                    map.len()
                )));
            }
            xcda = map[4..4 + blob]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            replacements = map[4 + blob..].to_vec();
        }
        let is = |id: u32, a: u32| v.tokens[id as usize].attr & a != 0;
        let mut min_score = f32::MAX;
        for (id, t) in v.tokens.iter().enumerate() {
            if is(id as u32, attr::NORMAL) {
                min_score = min_score.min(t.score);
            }
        }
        Ok(Ugm {
            matcher: sorted(v, |id| {
                is(id, attr::NORMAL | attr::USER_DEFINED | attr::UNUSED)
            }),
            user_defined: sorted(v, |id| is(id, attr::USER_DEFINED)),
            xcda,
            replacements,
            unknown_score: min_score - 10.0,
        })
    }

    /// Tokenizes one fragment of text (no special tokens in it), appending to `out`.
    pub(super) fn tokenize(
        &self,
        v: &Vocab,
        text: &str,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        let norm = self.normalize(v, text.as_bytes())?;
        let n = norm.len();
        if n == 0 {
            return Ok(());
        }
        let mut best = vec![
            Best {
                id: v.unk,
                start: 0,
                score: -f64::MAX,
            };
            n + 1
        ];
        best[0].score = 0.0;
        let mut at = 0;
        while at < n {
            let units = utf8_len(norm[at]).min(n - at);
            let here = best[at];
            let mut whole_code_point = false;
            let mut walk = Walk::new(v, &self.matcher);
            let mut end = at;
            while end < n && walk.step(norm[end]) {
                end += 1;
                if let Some(id) = walk.value() {
                    whole_code_point |= end - at == units;
                    // User-defined tokens score 0, above every (log-probability) normal score.
                    let t = &v.tokens[id as usize];
                    let s = if t.attr & attr::USER_DEFINED != 0 {
                        0.0
                    } else {
                        t.score as f64
                    };
                    let challenger = here.score + s;
                    if challenger > best[end].score {
                        best[end] = Best {
                            id: Some(id),
                            start: at,
                            score: challenger,
                        };
                    }
                }
            }
            if !whole_code_point {
                let challenger = here.score + self.unknown_score as f64;
                if challenger > best[at + units].score {
                    best[at + units] = Best {
                        id: v.unk,
                        start: at,
                        score: challenger,
                    };
                }
            }
            at += units;
        }
        // Back from the end; consecutive unknown tokens become one.
        let first = out.len();
        let mut prev_unknown = false;
        let mut b = best[n];
        loop {
            let unknown = b.id == v.unk;
            if !(prev_unknown && unknown) {
                out.push(b.id.ok_or(TokenizerError::NoSpecial("UNK"))?);
            }
            if b.start == 0 {
                break;
            }
            prev_unknown = unknown;
            b = best[b.start];
        }
        out[first..].reverse();
        Ok(())
    }

    /// `llm_tokenizer_ugm_session::normalize`: the character map applied prefix by prefix, spaces
    /// escaped to `▁`, one in front (add_space_prefix), runs merged (remove_extra_whitespaces).
    fn normalize(&self, v: &Vocab, input: &[u8]) -> Result<Vec<u8>, TokenizerError> {
        let space: &[u8] = if v.escape_whitespaces {
            "\u{2581}".as_bytes()
        } else {
            b" "
        };
        let prepend = v.add_space_prefix;
        let merge = v.remove_extra_whitespaces;
        let mut out = Vec::with_capacity(input.len() * 3);
        let mut space_prepended = false;
        let mut in_word = false;
        let mut at = 0;
        while at < input.len() {
            let (piece, used) = self.normalize_prefix(v, input, at)?;
            for &c in piece {
                if c != b' ' {
                    if !in_word {
                        in_word = true;
                        if (prepend && !space_prepended) || merge {
                            out.extend_from_slice(space);
                            space_prepended = true;
                        }
                    }
                    out.push(c);
                } else {
                    in_word = false;
                    if !merge {
                        out.extend_from_slice(space);
                    }
                }
            }
            at += used;
        }
        Ok(out)
    }

    /// The normalised bytes for the longest prefix of `input[at..]` the map knows, and how many input
    /// bytes they replace: a user-defined token's prefix stays as it is, else the map's replacement,
    /// else one code point unchanged (U+FFFD for a byte that starts none).
    fn normalize_prefix<'s>(
        &'s self,
        v: &Vocab,
        input: &'s [u8],
        at: usize,
    ) -> Result<(&'s [u8], usize), TokenizerError> {
        // llama.cpp takes the deepest point of its user-defined token trie the input reaches, whether
        // or not a token ends there.
        let mut walk = Walk::new(v, &self.user_defined);
        while at + walk.depth < input.len() && walk.step(input[at + walk.depth]) {}
        if walk.depth > 0 {
            return Ok((&input[at..at + walk.depth], walk.depth));
        }

        let mut longest = None;
        if !self.xcda.is_empty() {
            let node = |i: usize| -> Result<u32, TokenizerError> {
                self.xcda.get(i).copied().ok_or_else(|| {
                    TokenizerError::Charsmap(format!(
                        "its double array has {} entries; a walk reached entry {i}",
                        self.xcda.len()
                    ))
                })
            };
            let base = |p: u32| (p >> 10) << ((p & (1 << 9)) >> 6);
            let mut index = base(node(0)?) as usize;
            for (k, &c) in input[at..].iter().enumerate() {
                if c == 0 {
                    break;
                }
                index ^= c as usize;
                let p = node(index)?;
                if p & ((1 << 31) | 0xFF) != c as u32 {
                    break;
                }
                let leaf = (p >> 8) & 1 == 1;
                index ^= base(p) as usize;
                if leaf {
                    longest = Some((k + 1, node(index)? & ((1 << 31) - 1)));
                }
            }
        }
        if let Some((len, offset)) = longest {
            let rest = self
                .replacements
                .get(offset as usize..)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    TokenizerError::Charsmap(format!(
                        "replacement offset {offset} is past its {} bytes of strings",
                        self.replacements.len()
                    ))
                })?;
            let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                TokenizerError::Charsmap(format!(
                    "replacement at offset {offset} is not terminated"
                ))
            })?;
            return Ok((&rest[..end], len));
        }

        match code_point_len(&input[at..]) {
            Some(n) => Ok((&input[at..at + n], n)),
            None => Ok(("\u{FFFD}".as_bytes(), 1)),
        }
    }
}

/// The length of the UTF-8 sequence at the start of `b` as `unicode_cpt_from_utf8` accepts it (lead
/// byte and continuation bytes only), None where it would throw.
fn code_point_len(b: &[u8]) -> Option<usize> {
    let lead = *b.first()?;
    let n = match lead {
        0x00..=0x7F => return Some(1),
        0x80..=0xBF => return None,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    (b.len() >= n && b[1..n].iter().all(|&c| c & 0xC0 == 0x80)).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_points_as_llama_reads_them() {
        assert_eq!(code_point_len(b"a"), Some(1));
        assert_eq!(code_point_len("é".as_bytes()), Some(2));
        assert_eq!(code_point_len("中x".as_bytes()), Some(3));
        assert_eq!(code_point_len("😀".as_bytes()), Some(4));
        assert_eq!(code_point_len(&[0x80]), None);
        assert_eq!(code_point_len(&[0xE4, 0xB8]), None);
        assert_eq!(code_point_len(&[0xF8, 0x80, 0x80, 0x80, 0x80]), None);
    }
}
