//! Partitions and commits, as bookkeeping: which partitions this worker owns (an
//! epoch per assignment fences late work), which received offsets are done and so
//! may be committed (the first offset not done, never past it), which partitions
//! to pause when the buffer fills or the database is closed off, and the group
//! protocol's settings. No I/O here: the engine applies these decisions to the
//! consumer ([`crate::engine`]).

pub(crate) mod assignment;
pub(crate) mod back_pressure;
pub(crate) mod group_protocol;
pub(crate) mod offset_tracker;

pub(crate) use assignment::Assignment;
