//! Java-compatible key partitioning, defined once in the runtime crate (the topic plan
//! and the redrive's dry run use it too); re-exported here for the producer's callers.

pub use orderflow_runtime::partitioner::{murmur2, partition_for_key};
