//! Chat templates against llama.cpp's `llama_chat_apply_template` (goldens from
//! scripts/make-chat-goldens.py): every built-in template by name, byte for byte, on four
//! conversations; and detection on real Jinja sources (llama.cpp's test strings and its
//! models/templates/*.jinja), including the ones llama.cpp refuses.

mod common;

use pocket::exec::chat::{Message, Template, NAMES};
use serde_json::Value;

fn load(name: &str) -> Value {
    let p = common::testdata(&format!("chat/{name}"));
    serde_json::from_slice(&std::fs::read(&p).expect("golden (scripts/make-chat-goldens.py)"))
        .unwrap()
}

fn conversation(doc: &Value, name: &str) -> (bool, Vec<(String, String)>) {
    let c = &doc["conversations"][name];
    let msgs = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m[0].as_str().unwrap().to_string(),
                m[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (c["add_ass"].as_bool().unwrap(), msgs)
}

fn apply(t: Template, conv: &(bool, Vec<(String, String)>)) -> String {
    let msgs: Vec<Message> = conv.1.iter().map(|(r, c)| Message::new(r, c)).collect();
    t.apply(&msgs, conv.0)
}

#[test]
fn every_builtin_template_formats_like_llama_cpp() {
    let doc = load("by-name.json");
    let cases = doc["cases"].as_array().unwrap();
    let mut names = std::collections::BTreeSet::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let conv = c["conversation"].as_str().unwrap();
        names.insert(name.to_string());
        let t = Template::from_name(name)
            .unwrap_or_else(|| panic!("llama.cpp template {name} unknown"));
        let want = c["output"]
            .as_str()
            .expect("llama.cpp supports all its names");
        let got = apply(t, &conversation(&doc, conv));
        assert_eq!(got, want, "template {name}, conversation {conv}");
    }
    // The same set of names as llama.cpp's llama_chat_builtin_templates().
    let ours: std::collections::BTreeSet<String> =
        NAMES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(ours, names);
    assert_eq!(cases.len(), names.len() * 4);
}

#[test]
fn real_templates_are_detected_like_llama_cpp() {
    let doc = load("detect.json");
    let cases = doc["cases"].as_array().unwrap();
    let (mut supported, mut refused) = (0, 0);
    for c in cases {
        let src = c["source"].as_str().unwrap();
        let tmpl = c["template"].as_str().unwrap();
        let detected = Template::detect(tmpl);
        if c["outputs"].is_null() {
            assert_eq!(detected, None, "{src}: llama.cpp refuses it");
            refused += 1;
            continue;
        }
        let t = detected.unwrap_or_else(|| panic!("{src}: not detected"));
        let same: Vec<&str> = c["same_as"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            same.contains(&t.name()),
            "{src}: detected {t}, llama.cpp formats like {same:?}"
        );
        for (conv, want) in c["outputs"].as_object().unwrap() {
            let got = apply(t, &conversation(&doc, conv));
            assert_eq!(got, want.as_str().unwrap(), "{src}, conversation {conv}");
        }
        supported += 1;
    }
    assert!(
        supported >= 80 && refused >= 10,
        "{supported} supported, {refused} refused"
    );
}

#[test]
fn unknown_template_is_none() {
    assert_eq!(Template::detect(""), None);
    assert_eq!(
        Template::detect(
            "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        ),
        None
    );
    // Detection is by substring: the order of llama.cpp's checks decides (chatml before llama2).
    assert_eq!(
        Template::detect("<|im_start|> [INST]"),
        Some(Template::Chatml)
    );
    assert_eq!(Template::detect("mistral anything"), Some(Template::Llama2));
}
