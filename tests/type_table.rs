//! The ggml type table must match llama.cpp's at the peer's commit, id for id: name
//! (`ggml_type_name`), block size and bytes per block. `testdata/ggml-types.txt` was printed by the
//! peer's own libggml-base (scripts/make-type-golden.sh).

mod common;

use pocket::gguf::spec::{ggml_type, ggml_type_by_name, TypeIdError, GGML_TYPE_COUNT};

#[test]
fn every_id_matches_the_peer() {
    let text = std::fs::read_to_string(common::testdata("ggml-types.txt")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let mut parts = line.splitn(2, ' ');
        let id: u32 = parts.next().unwrap().parse().unwrap();
        let rest = parts.next().unwrap();
        // "name blck type_size"; removed types have a multi-word name and sizes 0 0.
        let fields: Vec<&str> = rest.rsplitn(3, ' ').collect();
        let (type_size, blck, name): (u64, u64, &str) = (
            fields[0].parse().unwrap(),
            fields[1].parse().unwrap(),
            fields[2],
        );
        match ggml_type(id) {
            Ok(t) => {
                assert_eq!(
                    (t.name, t.block_size, t.type_size),
                    (name, blck, type_size),
                    "type id {id}"
                );
                assert_eq!(ggml_type_by_name(name).map(|t| t.id.raw()), Some(id));
            }
            Err(TypeIdError::Removed { .. }) => {
                assert_eq!(
                    (blck, type_size),
                    (0, 0),
                    "id {id} is removed here but has sizes in ggml"
                );
                assert!(
                    name.contains("REMOVED") || name == "DEPRECATED",
                    "id {id}: {name}"
                );
            }
            Err(e) => panic!("id {id}: {e:?}"),
        }
        n += 1;
    }
    assert_eq!(
        n, GGML_TYPE_COUNT,
        "the golden lists every id below GGML_TYPE_COUNT"
    );
    assert_eq!(
        ggml_type(GGML_TYPE_COUNT),
        Err(TypeIdError::Unknown {
            id: GGML_TYPE_COUNT
        })
    );
}

#[test]
fn newest_types_are_present() {
    for name in [
        "mxfp4", "nvfp4", "q1_0", "q2_0", "tq1_0", "tq2_0", "iq4_xs", "bf16",
    ] {
        assert!(ggml_type_by_name(name).is_some(), "{name}");
    }
}
