//! Prints the logits of a token sequence as little-endian f32 (all positions) to a file, to compare
//! the executor with llama.cpp's by hand: `cargo run --release --example exec_logits MODEL OUT TOKEN...`.
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let f = pocket::GgufFile::open(&a[1]).unwrap();
    let g = f.gguf().unwrap();
    let w = pocket::exec::Weights::load(std::slice::from_ref(&g)).unwrap();
    let toks: Vec<u32> = a[3..].iter().map(|t| t.parse().unwrap()).collect();
    let mut s = pocket::exec::Session::new(&w, toks.len());
    let l = s.eval(&toks, toks.len()).unwrap();
    let b: Vec<u8> = l.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&a[2], b).unwrap();
}
