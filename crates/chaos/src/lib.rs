//! Chaos runs of the orderflow pipeline: the services supervised as child processes, the
//! faults injected while two workloads write, and two verifiers judging the outcome
//! (`orderflow verify`, and this crate's independent [`verifier`]).

pub mod ack_delay;
pub mod args;
pub mod db;
pub mod faults;
pub mod http_workload;
pub mod infra;
pub mod kafka_admin;
pub mod lane_poison;
pub mod observe;
pub mod relay_delay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod supervisor;
pub mod verifier;
pub mod workers;
