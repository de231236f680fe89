//! The order service's storage: the `orders` table and its state machine, and the
//! idempotency keys stored with each change. The outbox rows it writes in the same
//! transaction go through `orderflow_outbox`. Nothing here knows about HTTP routes.

pub mod idempotency;
pub mod order_store;
