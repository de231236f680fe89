//! Library side of the `orderflow` ops CLI: topics as code, dead-letter inspection and redrive,
//! and the exactly-once ledger of `orderflow verify`.

pub mod dead_letter;
pub mod topics;
pub mod verify;
