//! Read → write gives back the identical bytes, for every bundled file and for the real model.
//! Tensor data is streamed from the mapped source through the writer, never held whole.

mod common;

use std::io::Write;

use pocket::gguf::{GgufFile, GgufWriter};
use sha2::{Digest, Sha256};

fn gguf_files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(common::testdata(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_testdata_file_round_trips_byte_identical() {
    let files = gguf_files();
    assert!(
        files.len() >= 8,
        "expected the generated testdata files, found {files:?}"
    );
    for path in files {
        let f = GgufFile::open(&path).unwrap();
        let g = f
            .gguf()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut out = Vec::new();
        let n = GgufWriter::from_gguf(&g).write_from(&mut out, &g).unwrap();
        assert_eq!(n as usize, out.len());
        assert!(
            out == f.bytes(),
            "{}: written {} bytes differ from the {} read",
            path.display(),
            out.len(),
            f.len()
        );
    }
}

struct HashWriter(Sha256, u64);
impl Write for HashWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        self.1 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn gemma_round_trips_byte_identical() {
    let f = GgufFile::open(common::gemma()).unwrap();
    let g = f.gguf().unwrap();
    let mut h = HashWriter(Sha256::new(), 0);
    GgufWriter::from_gguf(&g).write_from(&mut h, &g).unwrap();
    assert_eq!(h.1, f.len());
    let written: [u8; 32] = h.0.finalize().into();
    let original: [u8; 32] = Sha256::digest(f.bytes()).into();
    assert_eq!(written, original);
}

#[test]
fn edits_change_only_what_was_edited() {
    let f = GgufFile::open(common::gemma()).unwrap();
    let g = f.gguf().unwrap();
    let mut w = GgufWriter::from_gguf(&g);
    w.set("general.name", pocket::Value::String("renamed"));
    w.remove("general.tags");
    let mut out = Vec::new();
    w.write_from(&mut out, &g).unwrap();
    let g2 = pocket::Gguf::parse(&out).unwrap();
    assert_eq!(g2.get_str("general.name"), Some("renamed"));
    assert!(g2.get("general.tags").is_none());
    assert_eq!(g2.kvs.len(), g.kvs.len() - 1);
    for (a, b) in g.tensors.iter().zip(&g2.tensors) {
        assert_eq!((a.name, &a.dims, a.ty), (b.name, &b.dims, b.ty));
        assert_eq!(g.tensor_data(a), g2.tensor_data(b), "{}", a.name);
    }
}
