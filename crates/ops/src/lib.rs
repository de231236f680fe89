//! Library side of the `orderflow` ops CLI: topics as code (and later dead-letter redrive).

pub mod topics;
