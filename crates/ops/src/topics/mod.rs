//! Topics as code: parse topics.yaml, diff it against the cluster, apply it.
//!
//! The flow is `TopicsFile::load` -> `TopicsFile::resolve` (pick the environment) ->
//! `TopicsAdmin::plan` (read the cluster, `Plan::compute`) -> `TopicsAdmin::apply`.
//! Everything but the last two steps is pure and tested without a broker.

mod admin;
mod config_set;
mod config_value;
mod error;
mod file;
mod incremental_configs;
mod key_moves;
mod key_sample;
mod plan;
mod refusal;
mod render;
mod resolve;
mod topic_name;

pub use admin::{ApplyOutcome, TopicsAdmin};
pub use config_value::{ConfigValue, check_config};
pub use error::{Result, TopicsError};
pub use file::{
    Configs, Defaults, EnvironmentSpec, Partitions, ReplicationFactor, TopicOverride, TopicSpec,
    TopicsFile,
};
pub use incremental_configs::{Incremental, supports_incremental};
pub use key_moves::{KeyMoves, KeySample, expected_moving_percent};
pub use plan::{Change, ObservedTopic, Plan, PlanOptions, partition_targets};
pub use refusal::Refusal;
pub use render::{PlanSource, plan_json, render_plan};
pub use resolve::{DesiredTopic, ResolveOptions};
pub use topic_name::{MAX_TOPIC_NAME_LEN, TopicName};
