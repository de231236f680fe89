//! What each fuzz target does with one input, and how inputs are laid out, in a library
//! so the seed generator (`examples/make_seeds.rs`) writes inputs the targets read.
//!
//! The main workspace replays the committed corpus through the same public functions
//! (`consumers/tests/fuzz_corpus.rs`, `producers/tests/fuzz_corpus.rs`).

pub mod decode_record;
pub mod order_request;
