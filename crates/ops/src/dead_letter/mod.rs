//! Dead-letter records: read a DLQ topic within bounds fixed at start, select records,
//! and replay them to their source topic with a redrive count that stops endless loops.
//!
//! The record layout (original key, value and headers plus `dlq-*` headers) is written
//! by the consumer with the shared contract (`orderflow_contracts::dead_letter`), which
//! this module reads through.

pub mod error;
pub mod listing;
pub mod rate_pacer;
pub mod reader;
pub mod record;
pub mod redrive;
pub mod redrive_cursor;
pub mod redrive_plan;
pub mod redrive_progress;
pub mod selection;
pub mod summary;

pub use error::{DeadLetterError, Result};
pub use reader::{DlqReader, ReadScope};
pub use record::{DlqRecord, RecordHeader};
pub use redrive::{RedriveOptions, Redriver};
pub use redrive_cursor::{CURSOR_GROUP, Cursors};
pub use redrive_plan::{
    AllowedTopics, REDRIVE_COUNT_HEADER, Redrive, RedriveDecision, SkipReason, plan_redrive,
};
pub use selection::{Selection, parse_category};
pub use summary::{ListSummary, RedriveSummary};
