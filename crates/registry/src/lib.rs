//! The development schema registry: the subset of Confluent Schema Registry's REST API
//! that real clients use (register, look up by id, subject versions, compatibility check,
//! config), stored in PostgreSQL and enforcing compatibility with apache-avro's schema
//! resolution rules.
//!
//! [`server::start`] runs it; [`client::RegistryClient`] registers schema files against
//! it (or against Confluent's registry).

pub mod api;
pub mod avro_schema;
pub mod client;
pub mod compatibility;
mod error;
pub mod metrics;
pub mod schema_registry;
pub mod server;
pub mod store;

pub use compatibility::CompatibilityLevel;
pub use error::{RegistryError, Result};
