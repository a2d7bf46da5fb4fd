//! The reference executor: what it takes to run a model the way llama.cpp does. So far the
//! tokenizers.

pub mod tokenizer;
