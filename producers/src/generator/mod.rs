//! `order-producer generate`: the load generator. Realistic, seeded order lifecycles as
//! Confluent-framed Avro, keyed by order id, partitioned like the Java client, with
//! optional duplicates and poison records for exercising consumers.

pub mod delivery;
pub mod error;
pub mod generate;
pub mod generate_args;
pub mod lifecycle;
pub mod poison;
pub(crate) mod progress;
pub mod summary;

pub use error::{ProducerError, Result};
pub use generate::{generate, run_command};
pub use generate_args::GenerateArgs;
pub use summary::Summary;
