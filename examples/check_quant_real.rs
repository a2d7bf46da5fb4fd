//! pocket's side of scripts/check-quant-real.sh: the same tensors decoded with `dequantize_row` and
//! re-quantized with `quantize_chunk`, printing the same "tensor type plain|imatrix fnv" lines as
//! scripts/check-quant-real.c, so the script can diff them.

use pocket::gguf::spec::ggml_type_by_name;
use pocket::quant::{dequantize_row, quantize_chunk};
use pocket::GgufFile;

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: check_quant_real model.gguf prefix...");
        std::process::exit(2);
    }
    let file = GgufFile::open(&args[1]).expect("open");
    let g = file.gguf().expect("parse");
    let types = [
        "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "f16",
        "bf16",
    ];
    for t in &g.tensors {
        if !args[2..].iter().any(|p| t.name.starts_with(p.as_str())) {
            continue;
        }
        let ne0 = t.dims[0] as usize;
        let n = t.n_elements as usize;
        let raw = &file.bytes()[t.file_offset as usize..(t.file_offset + t.n_bytes) as usize];
        let mut x = vec![0f32; n];
        dequantize_row(t.ty, raw, &mut x).expect("decode");
        let im: Vec<f32> = (0..ne0)
            .map(|j| 0.1f32 + ((j * 7919) % 101) as f32 / 50.0f32)
            .collect();
        for name in types {
            let ty = ggml_type_by_name(name).unwrap();
            if !ne0.is_multiple_of(ty.block_size as usize) {
                continue;
            }
            for imatrix in [None, Some(&im[..])] {
                let mut q = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
                quantize_chunk(ty, &x, &mut q, ne0, imatrix).expect("quantize");
                let v = if imatrix.is_some() {
                    "imatrix"
                } else {
                    "plain"
                };
                println!("{} {name} {v} {:016x}", t.name, fnv(&q));
            }
        }
    }
}
