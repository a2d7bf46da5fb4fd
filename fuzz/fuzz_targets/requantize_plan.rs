//! What `pocket requantize --dry-run` does — read the hyper-parameters, plan every tensor's type,
//! build the output headers — on arbitrary GGUF bytes, for every ftype llama-quantize knows.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pocket::gguf::Gguf;
use pocket::requant::convert::{prepare, Options};
use pocket::requant::ftype::FTYPES;
use pocket::requant::plan::Params;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(g) = Gguf::parse(rest) else { return };
    let ggufs = [g];
    let ftype = FTYPES[pick as usize % FTYPES.len()];
    let opts = Options {
        params: Params::new(ftype),
        allow_requantize: pick & 0x80 != 0,
        keep_split: false,
        overrides: Vec::new(),
        imatrix: None,
        n_threads: 1,
        report: false,
    };
    let _ = prepare(&ggufs, &[Path::new("fuzz.gguf")], &opts);
});
