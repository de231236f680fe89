//! One module per subcommand: flag definitions and the glue that calls library code.

pub mod dlq;
pub mod lag;
pub mod outbox;
pub mod registry;
pub mod topics;
pub mod verify;
