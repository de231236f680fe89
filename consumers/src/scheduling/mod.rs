//! Scheduling: the records received from the owned partitions wait here, queued
//! per key (records of one order in offset order, different orders concurrently),
//! until dispatch hands them to workers in batches: runs of consecutive records of
//! a key, one run per key at a time.
//! [`Shared`] keeps the queues and the partitions' bookkeeping under one lock, so
//! a record is taken, finished or fenced in one step with its partition's offsets.

pub(crate) mod dispatch;
pub(crate) mod key_scheduler;
pub(crate) mod state;

pub use state::Ordering;
pub(crate) use state::{DispatchedJob, Done, Shared};
