//! Settings of the lag engine, checked once at start-up.

use std::collections::HashSet;
use std::time::Duration;

use crate::compute::ResetPolicy;
use crate::error::{LagError, Result};
use crate::model::Isolation;

/// How the engine reads and judges lag.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Only these groups (all consumer groups when empty). Groups named here are shown
    /// even when the cluster does not list them.
    pub groups: Vec<String>,
    /// Groups whose consumers use isolation.level=read_committed: their lag is measured
    /// against the last stable offset (the broker does not tell a group's isolation).
    pub read_committed_groups: HashSet<String>,
    /// Where a group without a committed offset would start reading.
    pub reset_policy: ResetPolicy,
    /// Length of the sliding window used for rates and status.
    pub window: Duration,
    /// Timeout of each Kafka request.
    pub request_timeout: Duration,
    /// Longest a cycle waits for record timestamps it has not read yet (lag in seconds
    /// of offsets written before the engine started); reading goes on in the background.
    pub timestamp_timeout: Duration,
    /// Groups whose committed offsets are read concurrently when each group has its
    /// own client (TLS or SASL clusters; plaintext ones read all groups at once).
    pub concurrency: usize,
    /// With TLS or SASL: most per-group OffsetFetch clients kept open between cycles (each holds a
    /// connection to the bootstrap broker and one to the group's coordinator). With
    /// more groups, the clients of groups read longest ago are closed and reopened
    /// when next needed. At least `concurrency`.
    pub group_clients: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            groups: Vec::new(),
            read_committed_groups: HashSet::new(),
            reset_policy: ResetPolicy::Earliest,
            window: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            timestamp_timeout: Duration::from_millis(500),
            concurrency: 16,
            group_clients: 64,
        }
    }
}

impl EngineConfig {
    /// Isolation used for `group`.
    pub fn isolation_of(&self, group: &str) -> Isolation {
        if self.read_committed_groups.contains(group) {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        }
    }

    /// Checks the client settings against each other (also done by
    /// [`crate::LagEngine::new`], so a one-shot read checks them too).
    pub fn validate_clients(&self) -> Result<()> {
        if self.concurrency == 0 {
            return Err(LagError::Config("concurrency must be at least 1".into()));
        }
        if self.group_clients < self.concurrency {
            return Err(LagError::Config(format!(
                "group clients ({}) must be at least the concurrency ({}): concurrent reads would close each other's clients",
                self.group_clients, self.concurrency
            )));
        }
        Ok(())
    }

    /// Checks the settings against each other and against `interval` (the poll period).
    pub fn validate(&self, interval: Duration) -> Result<()> {
        self.validate_clients()?;
        if interval.is_zero() {
            return Err(LagError::Config("the poll interval must be above 0".into()));
        }
        if self.window < interval * 2 {
            return Err(LagError::Config(format!(
                "the window ({:?}) must hold at least two poll intervals ({:?} each) to judge progress",
                self.window, interval
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(LagError::Config(
                "the request timeout must be above 0".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_shorter_than_two_intervals_is_rejected() {
        let config = EngineConfig {
            window: Duration::from_secs(5),
            ..EngineConfig::default()
        };
        let err = config.validate(Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("two poll intervals"), "{err}");
        assert!(config.validate(Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn fewer_group_clients_than_concurrent_reads_is_rejected() {
        let config = EngineConfig {
            concurrency: 16,
            group_clients: 8,
            ..EngineConfig::default()
        };
        let err = config.validate_clients().unwrap_err();
        assert!(
            err.to_string().contains("at least the concurrency"),
            "{err}"
        );
    }
}
