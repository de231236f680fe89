//! What `topics apply` refuses to change, and what the operator can do instead: its own
//! file because both the plan (which finds them) and the error (which reports them)
//! name it.

use std::fmt;

use serde::Serialize;

use super::key_moves::{KeyMoves, describe_moves};

/// Drift that `apply` will not touch, with what the operator can do instead.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// The file asks for fewer partitions than the topic has.
    PartitionDecrease {
        /// Topic name.
        topic: String,
        /// Current partition count.
        from: i32,
        /// Partition count the file asks for.
        to: i32,
    },
    /// The file asks for another replication factor than the topic has.
    ReplicationFactorChange {
        /// Topic name.
        topic: String,
        /// Current replication factor.
        from: i16,
        /// Replication factor the file asks for.
        to: i16,
    },
    /// More partitions for a topic whose records carry keys, without
    /// `--allow-key-moves`: the keys that move would be read out of order.
    KeyedPartitionIncrease {
        /// Topic name.
        topic: String,
        /// Current partition count.
        from: i32,
        /// Partition count asked for.
        to: i32,
        /// The keys that would change partition.
        key_moves: KeyMoves,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::PartitionDecrease { topic, from, to } => write!(
                f,
                "! {topic}: the file asks for {to} partitions but the topic has {from}. \
                 Kafka cannot lower a partition count: set partitions back to {from} in the file, \
                 or create a new topic with {to} partitions, move producers and consumers to it \
                 and delete the old one"
            ),
            Refusal::ReplicationFactorChange { topic, from, to } => write!(
                f,
                "! {topic}: the file asks for replication factor {to} but the topic has {from}. \
                 orderflow does not move replicas: reassign them with kafka-reassign-partitions.sh, \
                 or use replication factor {from} for this environment (--replication-factor or \
                 environments.<env>.replication_factor)"
            ),
            Refusal::KeyedPartitionIncrease {
                topic,
                from,
                to,
                key_moves,
            } => write!(
                f,
                "! {topic}: the file asks for {to} partitions but the topic has {from} and its \
                 records are keyed: {}. Records of a moving key already in the old partition \
                 would be read after its new ones by lagging consumers. Drain the consumers \
                 (lag 0) and stop the producers first, then pass --allow-key-moves; or keep \
                 {from} partitions",
                describe_moves(key_moves)
            ),
        }
    }
}
