//! Library side of the `orderflow` ops CLI: topics as code, dead-letter inspection and redrive,
//! and the exactly-once ledger of `orderflow verify`.
//!
//! The command line itself ([`cli`], and the flags and glue of each subcommand in
//! [`commands`]) is library code too, so that docs/configuration.md is generated from the
//! same clap model the binary parses (`crates/repo-tests`); `main.rs` only parses and
//! dispatches. The glue keeps `anyhow`, as a binary's `main` would: its errors end as
//! one line on stderr and are never matched on.

pub mod cli;
pub mod commands;
pub mod dead_letter;
pub mod topics;
pub mod verify;
