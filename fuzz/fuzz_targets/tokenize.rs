//! The tokenizers: arbitrary text through a SentencePiece and a BPE vocabulary (loaded once from
//! testdata/vocab), tokenized with and without special-token parsing and detokenized again; and
//! arbitrary GGUF bytes through Vocab::from_gguf (untrusted tokenizer metadata).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pocket::exec::tokenizer::Vocab;
use pocket::gguf::{Gguf, GgufFile};

fn vocabs() -> &'static Vec<Vocab> {
    static V: OnceLock<Vec<Vocab>> = OnceLock::new();
    V.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vocab/");
        ["ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf"]
            .iter()
            .map(|f| {
                let file = GgufFile::open(format!("{dir}{f}")).expect("testdata vocab");
                let g = file.gguf().expect("valid vocab file");
                Vocab::from_gguf(&g).expect("valid vocab")
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = Gguf::parse(data) {
        let _ = Vocab::from_gguf(&g);
    }
    let text = String::from_utf8_lossy(data);
    for v in vocabs() {
        for (add, parse) in [(true, true), (false, false)] {
            if let Ok(ids) = v.tokenize(&text, add, parse) {
                let _ = v.detokenize(&ids, add, parse);
            }
        }
    }
    // Arbitrary ids, in range or not.
    let ids: Vec<u32> = data.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    for v in vocabs() {
        let _ = v.detokenize(&ids, false, true);
    }
});
