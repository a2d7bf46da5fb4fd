//! WordPiece (`llm_tokenizer_wpm_session`): BERT's normalisation (llama.cpp's one-code-point NFD,
//! accents dropped, lower case, control characters dropped), words cut at whitespace with each
//! punctuation mark, ASCII symbol and CJK ideograph a word of its own; then each word, with a `▁` in
//! front, is covered left to right by the longest tokens that match. A word that cannot be covered
//! becomes the unknown token.

use super::unicode::{self, ACCENT_MARK, CONTROL, PUNCTUATION, SYMBOL};
use super::{TokenizerError, Vocab};

/// Tokenizes one fragment of text (no special tokens in it), appending to `out`.
pub(super) fn tokenize(v: &Vocab, text: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
    for word in preprocess(text, v.lowercase, v.strip_accents) {
        let word = format!("\u{2581}{word}");
        let n = word.len();
        let start = out.len();
        let mut i = 0;
        // The longest token at i, tried from the longest candidate down (llama.cpp's window is
        // max_token_len + 1 bytes); a token is valid UTF-8, so only character boundaries can match.
        'word: while i < n {
            let mut j = n.min(i + v.max_token_len + 1);
            while j > i {
                if word.is_char_boundary(j) {
                    if let Some(id) = v.token_id(&word[i..j]) {
                        out.push(id);
                        i = j;
                        continue 'word;
                    }
                }
                j -= 1;
            }
            // No token starts here: the whole word is unknown.
            out.truncate(start);
            break;
        }
        if out.len() == start {
            out.push(v.unk.ok_or(TokenizerError::NoSpecial("UNK"))?);
        }
    }
    Ok(())
}

/// `llm_tokenizer_wpm_session::preprocess`: the normalised words of a text.
fn preprocess(text: &str, lowercase: bool, strip_accents: bool) -> Vec<String> {
    let mut words = vec![String::new()];
    for c in text.chars() {
        let mut cpt = c as u32;
        if strip_accents {
            cpt = unicode::nfd(cpt);
        }
        if unicode::is_whitespace(cpt) {
            if !words.last().is_some_and(String::is_empty) {
                words.push(String::new());
            }
            continue;
        }
        let cat = unicode::category(cpt);
        if cpt == 0 || cpt == 0xFFFD || cat & CONTROL != 0 {
            continue;
        }
        if strip_accents && cat & ACCENT_MARK != 0 {
            continue;
        }
        let out = if lowercase {
            unicode::to_lower(cpt)
        } else {
            cpt
        };
        // The tables map code points to code points; a surrogate cannot come out of them.
        let Some(ch) = char::from_u32(out) else {
            continue;
        };
        if cat & PUNCTUATION != 0 || (cpt < 0x7F && cat & SYMBOL != 0) || is_chinese_char(cpt) {
            if !words.last().is_some_and(String::is_empty) {
                words.push(String::new());
            }
            words.last_mut().expect("never empty").push(ch);
            words.push(String::new());
        } else {
            words.last_mut().expect("never empty").push(ch);
        }
    }
    if words.last().is_some_and(String::is_empty) {
        words.pop();
    }
    words.retain(|w| !w.is_empty());
    words
}

/// The CJK ranges of BERT's `_is_chinese_char`, as llama.cpp has them.
fn is_chinese_char(cpt: u32) -> bool {
    matches!(cpt,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF // 0x2B820 in Unicode, 0x2B920 in Hugging Face's code
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_splits_like_bert() {
        assert_eq!(
            preprocess("Héllo, WORLD!  中文 a$b x\u{301}y\u{7}z", true, true),
            ["hello", ",", "world", "!", "中", "文", "a", "$", "b", "xyz"]
        );
        // Without lower-casing and accent stripping the characters stay, marks included.
        assert_eq!(preprocess("Héllo", false, false), ["Héllo"]);
        assert!(preprocess(" \t\n ", true, true).is_empty());
    }
}
