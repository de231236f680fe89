//! Tests of the repository as a whole live under `tests/` of this package: docker-compose
//! and the Prometheus files, the generated references, a clean-checkout build, every
//! binary over SASL_SSL and against a TLS registry, a registry restart. The library part
//! writes docs/configuration.md from the binaries' clap command models.

pub mod config_reference;

use clap::CommandFactory;

/// The command model of each binary, in the order the reference shows them.
pub fn binaries() -> Vec<clap::Command> {
    vec![
        order_producer::cli::command(),
        order_consumer::ConsumerArgs::command(),
        orderflow_ops::cli::Cli::command(),
    ]
}

/// Every command with a section in the references, binary by binary.
pub fn commands() -> Vec<config_reference::CommandSettings> {
    binaries()
        .into_iter()
        .flat_map(config_reference::commands_of)
        .collect()
}

/// docs/configuration.md as the binaries define it now.
pub fn configuration_reference() -> String {
    config_reference::render(&commands())
}
