//! The worker: a batch of dispatched records is decoded, applied in one database
//! transaction (the [`effect_batch`], written through the store), and each record
//! settled; failures are judged by the [`retry`] policy behind the database's
//! [`circuit_breaker`], and poison is handed to the dead-letter topic
//! ([`hand_off`]) until every record is done or fenced.

pub(crate) mod circuit_breaker;
pub mod decode;
pub mod effect_batch;
pub(crate) mod hand_off;
pub(crate) mod processing;
pub(crate) mod registry_budget;
pub(crate) mod retry;
