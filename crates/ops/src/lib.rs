//! Library side of the `orderflow` ops CLI: topics as code and dead-letter inspection and redrive.

pub mod dead_letter;
pub mod topics;
