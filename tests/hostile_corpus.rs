//! The hostile corpus (testdata/hostile/, made by testdata/hostile/make.py): each file is wrong in one
//! way, and `pocket inspect --json` must reject it with exit code 2, the expected error kind and byte
//! offset, and a message naming the problem — never a crash. expected.tsv says what each must give.

mod common;

use serde_json::Value as J;

#[test]
fn every_hostile_file_is_rejected_with_the_expected_error() {
    let dir = common::testdata("hostile");
    let table = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut n = 0;
    let mut failures = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let (file, kind, offset, text) = (f[0], f[1], f[2], f.get(3).copied().unwrap_or(""));
        let out = common::pocket()
            .args(["inspect", "--json"])
            .arg(dir.join(file))
            .output()
            .unwrap();
        n += 1;
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{file}: exit {:?}, expected 2; stderr {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let doc: J = match serde_json::from_slice(&out.stdout) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{file}: stdout is not one JSON document ({e})"));
                continue;
            }
        };
        let e = &doc["error"];
        let got_offset = e["offset"]
            .as_u64()
            .map_or("-".to_string(), |o| o.to_string());
        let msg = e["message"].as_str().unwrap_or("");
        if e["kind"] != kind || got_offset != offset || !msg.contains(text) {
            failures.push(format!("{file}: got {} at {got_offset}: {msg}; expected {kind} at {offset} containing {text:?}", e["kind"]));
        }
        // People get the same message on stderr.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.contains(msg) {
            failures.push(format!(
                "{file}: stderr does not carry the message: {stderr}"
            ));
        }
    }
    assert!(n >= 50, "only {n} hostile files listed");
    assert!(
        failures.is_empty(),
        "{} of {n} hostile files not rejected as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
