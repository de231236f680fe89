//! Consumer groups and their members (ListGroups + DescribeGroups through
//! `fetch_group_list`). A failing DescribeGroups does not hide a group: it is listed
//! with members unknown.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::assignment::decode_assignment;
use crate::error::{LagError, Result};
use crate::model::{Member, Membership};

/// A group as listed by the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group: String,
    /// Members and state, or why they are unknown.
    pub membership: Membership,
}

/// Lists the groups of the cluster (only `only` when given). Groups whose protocol type
/// is not `consumer` (Connect workers, ...) are left out unless asked for by name.
pub async fn list_groups(
    client: Arc<BaseConsumer>,
    only: Option<String>,
    timeout: Duration,
) -> Result<Vec<ListedGroup>> {
    let mut out = tokio::task::spawn_blocking(move || -> Result<Vec<ListedGroup>> {
        let list = client
            .fetch_group_list(only.as_deref(), timeout)
            .map_err(|e| LagError::kafka("ListGroups/DescribeGroups", e))?;
        Ok(list
            .groups()
            .iter()
            .filter(|g| {
                only.is_some() || g.protocol_type().is_empty() || g.protocol_type() == "consumer"
            })
            .map(|g| ListedGroup {
                group: g.name().to_owned(),
                membership: Membership::Known {
                    state: g.state().to_owned(),
                    members: g
                        .members()
                        .iter()
                        .map(|m| Member {
                            member_id: m.id().to_owned(),
                            client_id: m.client_id().to_owned(),
                            client_host: m.client_host().to_owned(),
                            assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
                        })
                        .collect(),
                },
            })
            .collect())
    })
    .await
    .map_err(|e| LagError::Task(e.to_string()))??;
    out.sort_by(|a, b| a.group.cmp(&b.group));
    out.dedup_by(|a, b| a.group == b.group);
    Ok(out)
}
