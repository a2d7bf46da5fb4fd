//! Chat templates the way llama.cpp applies them without a Jinja engine: the model's
//! `tokenizer.chat_template` is recognised by the substring heuristics of `llm_chat_detect_template`
//! (`$LLAMA/src/llama-chat.cpp`) and a conversation is formatted by the port of the matching branch of
//! `llm_chat_apply_template`. No template code is ever executed. Pure functions over strings; the
//! tokenization of the result (special tokens parsed) is the caller's.

use std::fmt;

/// One message of a conversation: a role (`system`, `user`, `assistant`, ...) and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub role: &'a str,
    pub content: &'a str,
}

impl<'a> Message<'a> {
    pub fn new(role: &'a str, content: &'a str) -> Message<'a> {
        Message { role, content }
    }
}

/// The templates llama.cpp formats by hand (`enum llm_chat_template`, less `UNKNOWN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    Chatml,
    Llama2,
    Llama2Sys,
    Llama2SysBos,
    Llama2SysStrip,
    MistralV1,
    MistralV3,
    MistralV3Tekken,
    MistralV7,
    MistralV7Tekken,
    Phi3,
    Phi4,
    Falcon3,
    Zephyr,
    Monarch,
    Gemma,
    Orion,
    Openchat,
    Vicuna,
    VicunaOrca,
    Deepseek,
    Deepseek2,
    Deepseek3,
    DeepseekOcr,
    CommandR,
    Llama3,
    Chatglm3,
    Chatglm4,
    Glmedge,
    Minicpm,
    Exaone3,
    Exaone4,
    ExaoneMoe,
    RwkvWorld,
    Granite3,
    Granite40,
    Granite41,
    Gigachat,
    Megrez,
    Yandex,
    Bailing,
    BailingThink,
    Bailing2,
    Llama4,
    Smolvlm,
    Dots1,
    HunyuanMoe,
    OpenaiMoe,
    HunyuanDense,
    HunyuanVl,
    KimiK2,
    SeedOss,
    Grok2,
    PanguEmbed,
    SolarOpen,
}

/// llama.cpp's names (`LLM_CHAT_TEMPLATES`, what `--chat-template NAME` accepts), in its map order.
/// DOTS1 is detected but has no name there.
pub const NAMES: &[(&str, Template)] = &[
    ("bailing", Template::Bailing),
    ("bailing-think", Template::BailingThink),
    ("bailing2", Template::Bailing2),
    ("chatglm3", Template::Chatglm3),
    ("chatglm4", Template::Chatglm4),
    ("chatml", Template::Chatml),
    ("command-r", Template::CommandR),
    ("deepseek", Template::Deepseek),
    ("deepseek-ocr", Template::DeepseekOcr),
    ("deepseek2", Template::Deepseek2),
    ("deepseek3", Template::Deepseek3),
    ("exaone-moe", Template::ExaoneMoe),
    ("exaone3", Template::Exaone3),
    ("exaone4", Template::Exaone4),
    ("falcon3", Template::Falcon3),
    ("gemma", Template::Gemma),
    ("gigachat", Template::Gigachat),
    ("glmedge", Template::Glmedge),
    ("gpt-oss", Template::OpenaiMoe),
    ("granite", Template::Granite3),
    ("granite-4.0", Template::Granite40),
    ("granite-4.1", Template::Granite41),
    ("grok-2", Template::Grok2),
    ("hunyuan-dense", Template::HunyuanDense),
    ("hunyuan-moe", Template::HunyuanMoe),
    ("hunyuan-vl", Template::HunyuanVl),
    ("kimi-k2", Template::KimiK2),
    ("llama2", Template::Llama2),
    ("llama2-sys", Template::Llama2Sys),
    ("llama2-sys-bos", Template::Llama2SysBos),
    ("llama2-sys-strip", Template::Llama2SysStrip),
    ("llama3", Template::Llama3),
    ("llama4", Template::Llama4),
    ("megrez", Template::Megrez),
    ("minicpm", Template::Minicpm),
    ("mistral-v1", Template::MistralV1),
    ("mistral-v3", Template::MistralV3),
    ("mistral-v3-tekken", Template::MistralV3Tekken),
    ("mistral-v7", Template::MistralV7),
    ("mistral-v7-tekken", Template::MistralV7Tekken),
    ("monarch", Template::Monarch),
    ("openchat", Template::Openchat),
    ("orion", Template::Orion),
    ("pangu-embedded", Template::PanguEmbed),
    ("phi3", Template::Phi3),
    ("phi4", Template::Phi4),
    ("rwkv-world", Template::RwkvWorld),
    ("seed_oss", Template::SeedOss),
    ("smolvlm", Template::Smolvlm),
    ("solar-open", Template::SolarOpen),
    ("vicuna", Template::Vicuna),
    ("vicuna-orca", Template::VicunaOrca),
    ("yandex", Template::Yandex),
    ("zephyr", Template::Zephyr),
];

impl Template {
    /// The template called `name` in llama.cpp (`llm_chat_template_from_str`).
    pub fn from_name(name: &str) -> Option<Template> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// llama.cpp's name of the template (`dots1` for the one llama.cpp leaves unnamed).
    pub fn name(self) -> &'static str {
        match NAMES.iter().find(|(_, t)| *t == self) {
            Some((n, _)) => n,
            None => "dots1",
        }
    }

    /// `llm_chat_detect_template`: a template name, else the first family whose marker substrings the
    /// Jinja source contains. `None` when nothing matches (llama.cpp: unsupported template).
    pub fn detect(tmpl: &str) -> Option<Template> {
        use Template as T;
        if let Some(t) = Template::from_name(tmpl) {
            return Some(t);
        }
        let has = |s: &str| tmpl.contains(s);
        let t = if has("<|im_start|>") {
            if has("<|im_sep|>") {
                T::Phi4
            } else if has("<end_of_utterance>") {
                T::Smolvlm
            } else {
                T::Chatml
            }
        } else if tmpl.starts_with("mistral") || has("[INST]") {
            if has("[SYSTEM_PROMPT]") {
                T::MistralV7
            } else if has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") {
                if has(" [INST]") {
                    T::MistralV1
                } else if has("\"[INST]\"") {
                    T::MistralV3Tekken
                } else {
                    T::MistralV3
                }
            } else if has("content.strip()") {
                T::Llama2SysStrip
            } else if has("bos_token + '[INST]") {
                T::Llama2SysBos
            } else if has("<<SYS>>") {
                T::Llama2Sys
            } else {
                T::Llama2
            }
        } else if has("<|assistant|>") && has("<|end|>") {
            T::Phi3
        } else if has("[gMASK]<sop>") {
            T::Chatglm4
        } else if has("<|assistant|>") && has("<|user|>") {
            if has("<|tool_declare|>") {
                T::ExaoneMoe
            } else if has("</s>") {
                T::Falcon3
            } else {
                T::Glmedge
            }
        } else if has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>") {
            T::Glmedge
        } else if has("<|user|>") && has("<|endoftext|>") {
            T::Zephyr
        } else if has("bos_token + message['role']") {
            T::Monarch
        } else if has("<start_of_turn>") {
            T::Gemma
        } else if has("'\\n\\nAssistant: ' + eos_token") {
            T::Orion
        } else if has("GPT4 Correct ") {
            T::Openchat
        } else if has("USER: ") && has("ASSISTANT: ") {
            if has("SYSTEM: ") {
                T::VicunaOrca
            } else {
                T::Vicuna
            }
        } else if has("### Instruction:") && has("<|EOT|>") {
            T::Deepseek
        } else if has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>") {
            T::CommandR
        } else if has("<|start_header_id|>") && has("<|end_header_id|>") {
            T::Llama3
        } else if has("[gMASK]sop") {
            T::Chatglm3
        } else if has("<用户>") {
            T::Minicpm
        } else if has("'Assistant: ' + message['content'] + eos_token") {
            T::Deepseek2
        } else if has("<｜Assistant｜>") && has("<｜User｜>") && has("<｜end▁of▁sentence｜>") {
            T::Deepseek3
        } else if has("[|system|]") && has("[|assistant|]") && has("[|endofturn|]") {
            if has("[|tool|]") {
                T::Exaone4
            } else {
                T::Exaone3
            }
        } else if has("rwkv-world") || has("{{- 'User: ' + message['content']|trim + '\\n\\n' -}}") {
            T::RwkvWorld
        } else if has("<|start_of_role|>") {
            if has("<tool_call>") || has("<tools>") {
                if has("g4_default_system_message") {
                    T::Granite40
                } else {
                    T::Granite41
                }
            } else {
                T::Granite3
            }
        } else if has("message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]") {
            T::Gigachat
        } else if has("<|role_start|>") {
            T::Megrez
        } else if has(" Ассистент:") {
            T::Yandex
        } else if has("<role>ASSISTANT</role>") && has("'HUMAN'") {
            T::Bailing
        } else if has("<role>ASSISTANT</role>") && has("\"HUMAN\"") && has("<think>") {
            T::BailingThink
        } else if has("<role>ASSISTANT</role>") && has("<role>HUMAN</role>") && has("<|role_end|>") {
            T::Bailing2
        } else if has("<|header_start|>") && has("<|header_end|>") {
            T::Llama4
        } else if has("<|endofuserprompt|>") {
            T::Dots1
        } else if has("<|extra_0|>") && has("<|extra_4|>") {
            T::HunyuanMoe
        } else if has("<|start|>") && has("<|channel|>") {
            T::OpenaiMoe
        } else if has("<｜hy_Assistant｜>") && has("<｜hy_begin▁of▁sentence｜>") {
            T::HunyuanVl
        } else if has("<｜hy_Assistant｜>") && has("<｜hy_place▁holder▁no▁3｜>") {
            T::HunyuanDense
        } else if has("<|im_assistant|>assistant<|im_middle|>") {
            T::KimiK2
        } else if has("<seed:bos>") {
            T::SeedOss
        } else if has("'Assistant: '  + message['content'] + '<|separator|>") {
            T::Grok2
        } else if has("[unused9]系统：[unused10]") {
            T::PanguEmbed
        } else if has("<|begin|>") && has("<|end|>") && has("<|content|>") {
            T::SolarOpen
        } else {
            return None;
        };
        Some(t)
    }

    /// `llm_chat_apply_template`: the conversation as the model expects it, ending with the start of
    /// an assistant turn when `add_ass` (and the template has one).
    pub fn apply(self, chat: &[Message<'_>], add_ass: bool) -> String {
        use Template as T;
        let mut s = String::new();
        match self {
            T::Chatml => {
                for m in chat {
                    push(
                        &mut s,
                        &["<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n"],
                    );
                }
                if add_ass {
                    s += "<|im_start|>assistant\n";
                }
            }
            T::MistralV7 | T::MistralV7Tekken => {
                let sp = if self == T::MistralV7 { " " } else { "" };
                for m in chat {
                    match m.role {
                        "system" => push(
                            &mut s,
                            &["[SYSTEM_PROMPT]", sp, m.content, "[/SYSTEM_PROMPT]"],
                        ),
                        "user" => push(&mut s, &["[INST]", sp, m.content, "[/INST]"]),
                        _ => push(&mut s, &[sp, m.content, "</s>"]),
                    }
                }
            }
            T::MistralV1 | T::MistralV3 | T::MistralV3Tekken => {
                let lead = if self == T::MistralV1 { " " } else { "" };
                let trail = if self == T::MistralV3Tekken { "" } else { " " };
                let trim_assistant = self == T::MistralV3;
                let mut inside = false;
                for m in chat {
                    if !inside {
                        push(&mut s, &[lead, "[INST]", trail]);
                        inside = true;
                    }
                    match m.role {
                        "system" => push(&mut s, &[m.content, "\n\n"]),
                        "user" => push(&mut s, &[m.content, lead, "[/INST]"]),
                        _ => {
                            let c = if trim_assistant {
                                trim(m.content)
                            } else {
                                m.content
                            };
                            push(&mut s, &[trail, c, "</s>"]);
                            inside = false;
                        }
                    }
                }
            }
            T::Llama2 | T::Llama2Sys | T::Llama2SysBos | T::Llama2SysStrip => {
                let system = self != T::Llama2;
                let bos_inside = self == T::Llama2SysBos;
                let strip = self == T::Llama2SysStrip;
                let mut inside = true;
                s += "[INST] ";
                for m in chat {
                    let c = if strip { trim(m.content) } else { m.content };
                    if !inside {
                        inside = true;
                        s += if bos_inside { "<s>[INST] " } else { "[INST] " };
                    }
                    match m.role {
                        "system" if system => push(&mut s, &["<<SYS>>\n", c, "\n<</SYS>>\n\n"]),
                        "system" => push(&mut s, &[c, "\n"]),
                        "user" => push(&mut s, &[c, " [/INST]"]),
                        _ => {
                            push(&mut s, &[c, "</s>"]);
                            inside = false;
                        }
                    }
                }
            }
            T::Phi3 => {
                for m in chat {
                    push(&mut s, &["<|", m.role, "|>\n", m.content, "<|end|>\n"]);
                }
                if add_ass {
                    s += "<|assistant|>\n";
                }
            }
            T::Phi4 => {
                for m in chat {
                    push(
                        &mut s,
                        &[
                            "<|im_start|>",
                            m.role,
                            "<|im_sep|>",
                            m.content,
                            "<|im_end|>",
                        ],
                    );
                }
                if add_ass {
                    s += "<|im_start|>assistant<|im_sep|>";
                }
            }
            T::Falcon3 => {
                for m in chat {
                    push(&mut s, &["<|", m.role, "|>\n", m.content, "\n"]);
                }
                if add_ass {
                    s += "<|assistant|>\n";
                }
            }
            T::Zephyr => {
                for m in chat {
                    push(
                        &mut s,
                        &["<|", m.role, "|>\n", m.content, "<|endoftext|>\n"],
                    );
                }
                if add_ass {
                    s += "<|assistant|>\n";
                }
            }
            T::Monarch => {
                for (i, m) in chat.iter().enumerate() {
                    let bos = if i == 0 { "" } else { "<s>" };
                    push(&mut s, &[bos, m.role, "\n", m.content, "</s>\n"]);
                }
                if add_ass {
                    s += "<s>assistant\n";
                }
            }
            T::Gemma => {
                // No system role: the system text is merged into the next user turn.
                let mut system = String::new();
                for m in chat {
                    if m.role == "system" {
                        system += trim(m.content);
                        continue;
                    }
                    let role = if m.role == "assistant" {
                        "model"
                    } else {
                        m.role
                    };
                    push(&mut s, &["<start_of_turn>", role, "\n"]);
                    if !system.is_empty() && role != "model" {
                        push(&mut s, &[&system, "\n\n"]);
                        system.clear();
                    }
                    push(&mut s, &[trim(m.content), "<end_of_turn>\n"]);
                }
                if add_ass {
                    s += "<start_of_turn>model\n";
                }
            }
            T::Orion => {
                let mut system = String::new();
                for m in chat {
                    match m.role {
                        "system" => system += m.content,
                        "user" => {
                            s += "Human: ";
                            if !system.is_empty() {
                                push(&mut s, &[&system, "\n\n"]);
                                system.clear();
                            }
                            push(&mut s, &[m.content, "\n\nAssistant: </s>"]);
                        }
                        _ => push(&mut s, &[m.content, "</s>"]),
                    }
                }
            }
            T::Openchat => {
                for m in chat {
                    if m.role == "system" {
                        push(&mut s, &[m.content, "<|end_of_turn|>"]);
                    } else {
                        push(
                            &mut s,
                            &[
                                "GPT4 Correct ",
                                &upper_first(m.role),
                                ": ",
                                m.content,
                                "<|end_of_turn|>",
                            ],
                        );
                    }
                }
                if add_ass {
                    s += "GPT4 Correct Assistant:";
                }
            }
            T::Vicuna | T::VicunaOrca => {
                for m in chat {
                    match m.role {
                        "system" if self == T::VicunaOrca => {
                            push(&mut s, &["SYSTEM: ", m.content, "\n"])
                        }
                        "system" => push(&mut s, &[m.content, "\n\n"]),
                        "user" => push(&mut s, &["USER: ", m.content, "\n"]),
                        "assistant" => push(&mut s, &["ASSISTANT: ", m.content, "</s>\n"]),
                        _ => {}
                    }
                }
                if add_ass {
                    s += "ASSISTANT:";
                }
            }
            T::Deepseek => {
                for m in chat {
                    match m.role {
                        "system" => s += m.content,
                        "user" => push(&mut s, &["### Instruction:\n", m.content, "\n"]),
                        "assistant" => push(&mut s, &["### Response:\n", m.content, "\n<|EOT|>\n"]),
                        _ => {}
                    }
                }
                if add_ass {
                    s += "### Response:\n";
                }
            }
            T::CommandR => {
                for m in chat {
                    let tok = match m.role {
                        "system" => "<|SYSTEM_TOKEN|>",
                        "user" => "<|USER_TOKEN|>",
                        "assistant" => "<|CHATBOT_TOKEN|>",
                        _ => continue,
                    };
                    push(
                        &mut s,
                        &[
                            "<|START_OF_TURN_TOKEN|>",
                            tok,
                            trim(m.content),
                            "<|END_OF_TURN_TOKEN|>",
                        ],
                    );
                }
                if add_ass {
                    s += "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
                }
            }
            T::Llama3 => {
                for m in chat {
                    push(
                        &mut s,
                        &[
                            "<|start_header_id|>",
                            m.role,
                            "<|end_header_id|>\n\n",
                            trim(m.content),
                            "<|eot_id|>",
                        ],
                    );
                }
                if add_ass {
                    s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
                }
            }
            T::Chatglm3 => {
                s += "[gMASK]sop";
                for m in chat {
                    push(&mut s, &["<|", m.role, "|>\n ", m.content]);
                }
                if add_ass {
                    s += "<|assistant|>";
                }
            }
            T::Chatglm4 => {
                s += "[gMASK]<sop>";
                for m in chat {
                    push(&mut s, &["<|", m.role, "|>\n", m.content]);
                }
                if add_ass {
                    s += "<|assistant|>\n";
                }
            }
            T::Glmedge => {
                for m in chat {
                    push(&mut s, &["<|", m.role, "|>\n", m.content]);
                }
                if add_ass {
                    s += "<|assistant|>";
                }
            }
            T::Minicpm => {
                for m in chat {
                    if m.role == "user" {
                        push(&mut s, &["<用户>", trim(m.content), "<AI>"]);
                    } else {
                        s += trim(m.content);
                    }
                }
            }
            T::Deepseek2 => {
                for m in chat {
                    match m.role {
                        "system" => push(&mut s, &[m.content, "\n\n"]),
                        "user" => push(&mut s, &["User: ", m.content, "\n\n"]),
                        "assistant" => {
                            push(&mut s, &["Assistant: ", m.content, "<｜end▁of▁sentence｜>"])
                        }
                        _ => {}
                    }
                }
                if add_ass {
                    s += "Assistant:";
                }
            }
            T::Deepseek3 => {
                for m in chat {
                    match m.role {
                        "system" => push(&mut s, &[m.content, "\n\n"]),
                        "user" => push(&mut s, &["<｜User｜>", m.content]),
                        "assistant" => push(
                            &mut s,
                            &["<｜Assistant｜>", m.content, "<｜end▁of▁sentence｜>"],
                        ),
                        _ => {}
                    }
                }
                if add_ass {
                    s += "<｜Assistant｜>";
                }
            }
            T::DeepseekOcr => {
                for m in chat {
                    s += m.content;
                }
            }
            T::Exaone3 | T::Exaone4 => {
                for m in chat {
                    let c = trim(m.content);
                    match m.role {
                        "system" => push(&mut s, &["[|system|]", c, "[|endofturn|]\n"]),
                        "user" => push(&mut s, &["[|user|]", c, "\n"]),
                        "assistant" => push(&mut s, &["[|assistant|]", c, "[|endofturn|]\n"]),
                        "tool" if self == T::Exaone4 => {
                            push(&mut s, &["[|tool|]", c, "[|endofturn|]\n"])
                        }
                        _ => {}
                    }
                }
                if add_ass {
                    s += "[|assistant|]";
                }
            }
            T::ExaoneMoe => {
                for m in chat {
                    if matches!(m.role, "system" | "user" | "assistant" | "tool") {
                        push(
                            &mut s,
                            &["<|", m.role, "|>\n", trim(m.content), "<|endofturn|>\n"],
                        );
                    }
                }
                if add_ass {
                    s += "<|assistant|>\n";
                }
            }
            T::RwkvWorld => {
                for (i, m) in chat.iter().enumerate() {
                    let c = trim(m.content);
                    match m.role {
                        "system" => push(&mut s, &["System: ", c, "\n\n"]),
                        "user" => {
                            push(&mut s, &["User: ", c, "\n\n"]);
                            if i == chat.len() - 1 {
                                s += "Assistant:";
                            }
                        }
                        "assistant" => push(&mut s, &["Assistant: ", c, "\n\n"]),
                        _ => {}
                    }
                }
            }
            T::Granite3 => {
                for m in chat {
                    push(&mut s, &["<|start_of_role|>", m.role, "<|end_of_role|>"]);
                    if m.role == "assistant_tool_call" {
                        s += "<|tool_call|>";
                    }
                    push(&mut s, &[m.content, "<|end_of_text|>\n"]);
                }
                if add_ass {
                    s += "<|start_of_role|>assistant<|end_of_role|>";
                }
            }
            T::Granite40 | T::Granite41 => {
                for m in chat {
                    if m.role == "assistant_tool_call" {
                        s += "<|start_of_role|>assistant<|end_of_role|><|tool_call|>";
                    } else {
                        push(&mut s, &["<|start_of_role|>", m.role, "<|end_of_role|>"]);
                    }
                    push(&mut s, &[m.content, "<|end_of_text|>\n"]);
                }
                if add_ass {
                    s += "<|start_of_role|>assistant<|end_of_role|>";
                }
            }
            T::Gigachat => {
                let has_system = chat.first().is_some_and(|m| m.role == "system");
                if has_system {
                    push(&mut s, &["<s>", chat[0].content, "<|message_sep|>"]);
                } else {
                    s += "<s>";
                }
                for m in &chat[usize::from(has_system)..] {
                    match m.role {
                        "user" => push(
                            &mut s,
                            &[
                                "user<|role_sep|>",
                                m.content,
                                "<|message_sep|>",
                                "available functions<|role_sep|>[]<|message_sep|>",
                            ],
                        ),
                        "assistant" => push(
                            &mut s,
                            &["assistant<|role_sep|>", m.content, "<|message_sep|>"],
                        ),
                        _ => {}
                    }
                }
                if add_ass {
                    s += "assistant<|role_sep|>";
                }
            }
            T::Megrez => {
                for m in chat {
                    push(
                        &mut s,
                        &[
                            "<|role_start|>",
                            m.role,
                            "<|role_end|>",
                            m.content,
                            "<|turn_end|>",
                        ],
                    );
                }
                if add_ass {
                    s += "<|role_start|>assistant<|role_end|>";
                }
            }
            T::Yandex => {
                for m in chat {
                    match m.role {
                        "user" => push(&mut s, &[" Пользователь: ", m.content, "\n\n"]),
                        "assistant" => push(&mut s, &[" Ассистент: ", m.content, "\n\n"]),
                        _ => {}
                    }
                }
                if add_ass {
                    s += " Ассистент:[SEP]";
                }
            }
            T::Bailing | T::BailingThink => {
                for m in chat {
                    push(
                        &mut s,
                        &["<role>", &bailing_role(m.role), "</role>", m.content],
                    );
                }
                if add_ass {
                    s += "<role>ASSISTANT</role>";
                    if self == T::BailingThink {
                        s += "<think>";
                    }
                }
            }
            T::Bailing2 => {
                if chat.first().is_none_or(|m| m.role != "system") {
                    s += "<role>SYSTEM</role>detailed thinking off<|role_end|>";
                }
                for m in chat {
                    push(
                        &mut s,
                        &[
                            "<role>",
                            &bailing_role(m.role),
                            "</role>",
                            m.content,
                            "<|role_end|>",
                        ],
                    );
                }
                if add_ass {
                    s += "<role>ASSISTANT</role>";
                }
            }
            T::Llama4 => {
                for m in chat {
                    push(
                        &mut s,
                        &[
                            "<|header_start|>",
                            m.role,
                            "<|header_end|>\n\n",
                            trim(m.content),
                            "<|eot|>",
                        ],
                    );
                }
                if add_ass {
                    s += "<|header_start|>assistant<|header_end|>\n\n";
                }
            }
            T::Smolvlm => {
                s += "<|im_start|>";
                for m in chat {
                    match m.role {
                        "system" => push(&mut s, &[m.content, "\n\n"]),
                        "user" => push(&mut s, &["User: ", m.content, "<end_of_utterance>\n"]),
                        _ => push(&mut s, &["Assistant: ", m.content, "<end_of_utterance>\n"]),
                    }
                }
                if add_ass {
                    s += "Assistant:";
                }
            }
            T::Dots1 => {
                for m in chat {
                    match m.role {
                        "system" => push(&mut s, &["<|system|>", m.content, "<|endofsystem|>"]),
                        "user" => push(
                            &mut s,
                            &["<|userprompt|>", m.content, "<|endofuserprompt|>"],
                        ),
                        _ => push(&mut s, &["<|response|>", m.content, "<|endofresponse|>"]),
                    }
                }
                if add_ass {
                    s += "<|response|>";
                }
            }
            T::HunyuanMoe => {
                for m in chat {
                    match m.role {
                        "system" => push(&mut s, &["<|startoftext|>", m.content, "<|extra_4|>"]),
                        "assistant" => push(&mut s, &[m.content, "<|eos|>"]),
                        _ => push(&mut s, &["<|startoftext|>", m.content, "<|extra_0|>"]),
                    }
                }
            }
            T::OpenaiMoe => {
                for m in chat {
                    push(&mut s, &["<|start|>", m.role, "<|message|>", m.content]);
                    s += if m.role == "assistant" {
                        "<|return|>"
                    } else {
                        "<|end|>"
                    };
                }
                if add_ass {
                    s += "<|start|>assistant";
                }
            }
            T::HunyuanDense => {
                for (i, m) in chat.iter().enumerate() {
                    if i == 0 && m.role == "system" {
                        push(&mut s, &[m.content, "<｜hy_place▁holder▁no▁3｜>"]);
                    }
                    match m.role {
                        "assistant" => push(
                            &mut s,
                            &[
                                "<｜hy_Assistant｜>",
                                m.content,
                                "<｜hy_place▁holder▁no▁2｜>",
                            ],
                        ),
                        "user" => push(&mut s, &["<｜hy_User｜>", m.content, "<｜hy_Assistant｜>"]),
                        _ => {}
                    }
                }
            }
            T::HunyuanVl => {
                s += "<｜hy_begin▁of▁sentence｜>";
                for (i, m) in chat.iter().enumerate() {
                    if i == 0 && m.role == "system" {
                        push(&mut s, &[m.content, "<｜hy_place▁holder▁no▁3｜>"]);
                        continue;
                    }
                    match m.role {
                        "user" => push(&mut s, &[m.content, "<｜hy_User｜>"]),
                        "assistant" => push(&mut s, &[m.content, "<｜hy_Assistant｜>"]),
                        _ => {}
                    }
                }
            }
            T::KimiK2 => {
                for m in chat {
                    s += match m.role {
                        "system" => "<|im_system|>system<|im_middle|>",
                        "user" => "<|im_user|>user<|im_middle|>",
                        "assistant" => "<|im_assistant|>assistant<|im_middle|>",
                        "tool" => "<|im_system|>tool<|im_middle|>",
                        _ => "",
                    };
                    push(&mut s, &[m.content, "<|im_end|>"]);
                }
                if add_ass {
                    s += "<|im_assistant|>assistant<|im_middle|>";
                }
            }
            T::SeedOss => {
                for m in chat {
                    let c = if m.role == "assistant" {
                        trim(m.content)
                    } else {
                        m.content
                    };
                    push(&mut s, &["<seed:bos>", m.role, "\n", c, "<seed:eos>"]);
                }
                if add_ass {
                    s += "<seed:bos>assistant\n";
                }
            }
            T::Grok2 => {
                for m in chat {
                    match m.role {
                        "system" => {
                            push(&mut s, &["System: ", trim(m.content), "<|separator|>\n\n"])
                        }
                        "user" => push(&mut s, &["Human: ", trim(m.content), "<|separator|>\n\n"]),
                        "assistant" => {
                            push(&mut s, &["Assistant: ", m.content, "<|separator|>\n\n"])
                        }
                        _ => {}
                    }
                }
                if add_ass {
                    s += "Assistant:";
                }
            }
            T::PanguEmbed => {
                for (i, m) in chat.iter().enumerate() {
                    if i == 0 && m.role != "system" {
                        s += "[unused9]系统：[unused10]";
                    }
                    let who = match m.role {
                        "system" => "系统",
                        "user" => "用户",
                        "assistant" => "助手",
                        "tool" => "工具",
                        "function" => "方法",
                        _ => continue,
                    };
                    push(&mut s, &["[unused9]", who, "：", m.content, "[unused10]"]);
                }
                if add_ass {
                    s += "[unused9]助手：";
                }
            }
            T::SolarOpen => {
                for m in chat {
                    push(
                        &mut s,
                        &["<|begin|>", m.role, "<|content|>", m.content, "<|end|>"],
                    );
                }
                if add_ass {
                    s += "<|begin|>assistant";
                }
            }
        }
        s
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn push(s: &mut String, parts: &[&str]) {
    for p in parts {
        s.push_str(p);
    }
}

/// llama-chat.cpp's `trim`: C `isspace` (space, \t, \n, \v, \f, \r) off both ends.
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'))
}

/// openchat's `role[0] = toupper(role[0])` (ASCII only, as in the C locale).
fn upper_first(role: &str) -> String {
    let mut r = role.to_string();
    if let Some(b) = r.get_mut(0..1) {
        b.make_ascii_uppercase();
    }
    r
}

/// bailing's roles: `user` is HUMAN, any other role upper-cased (ASCII, `::toupper`).
fn bailing_role(role: &str) -> String {
    if role == "user" {
        "HUMAN".to_string()
    } else {
        role.to_ascii_uppercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (n, t) in NAMES {
            assert_eq!(Template::from_name(n), Some(*t));
            assert_eq!(t.name(), *n);
            assert_eq!(Template::detect(n), Some(*t));
        }
        assert_eq!(Template::Dots1.name(), "dots1");
        assert_eq!(Template::detect("{{ messages }}"), None);
    }

    #[test]
    fn trim_is_c_isspace() {
        assert_eq!(trim("\x0b\x0c \t\r\n a b \n"), "a b");
        assert_eq!(trim("\u{a0}x\u{a0}"), "\u{a0}x\u{a0}");
        assert_eq!(upper_first("user"), "User");
        assert_eq!(upper_first(""), "");
    }
}
