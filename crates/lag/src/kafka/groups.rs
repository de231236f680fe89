//! Consumer groups and their members: ListGroups + DescribeGroups through librdkafka's
//! `fetch_group_list`.
//!
//! DescribeGroups is the classic-protocol call. A group of the consumer protocol
//! (KIP-848, `group.protocol=consumer`) is listed by ListGroups, but Kafka answers its
//! DescribeGroups with state `Dead` and no members; only ConsumerGroupDescribe
//! describes it, which rdkafka 0.39 does not expose. Such a group is kept with its
//! members marked unknown rather than reported as a group without members; the engine
//! then describes it over its own connections
//! ([`super::group_offsets::GroupOffsetReader::describe_consumer_groups`]), which speak
//! TLS and SASL PLAIN/SCRAM too; only with settings beyond those (GSSAPI, OAUTHBEARER)
//! do its members stay unknown.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::groups::GroupInfo;

use super::assignment::decode_assignment;
use crate::error::{LagError, Result};
use crate::model::{Member, Membership};

/// State DescribeGroups gives a group it cannot describe (librdkafka describes only
/// groups ListGroups listed, so such a group exists).
const DEAD: &str = "Dead";

/// Why the members of a consumer-protocol group are unknown.
pub const CONSUMER_PROTOCOL_REASON: &str = "DescribeGroups answers Dead: a consumer-protocol (KIP-848) group, described only by ConsumerGroupDescribe, which the engine sends over its own connections, not with these security settings (rdkafka 0.39 does not expose it)";

/// A group as listed by the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group: String,
    /// Members and state, or why they are unknown.
    pub membership: Membership,
    /// Asked for by name, but the cluster's listing (which answered) does not have it.
    pub unlisted: bool,
}

/// Lists the groups of the cluster (only `only` when given) with their members. Groups
/// whose protocol type is neither `consumer` nor empty (Connect workers, ...) are left
/// out unless asked for by name.
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
            .map(listed)
            .collect())
    })
    .await
    .map_err(|e| LagError::Task(e.to_string()))??;
    out.sort_by(|a, b| a.group.cmp(&b.group));
    out.dedup_by(|a, b| a.group == b.group);
    Ok(out)
}

fn listed(g: &GroupInfo) -> ListedGroup {
    let membership = if g.state() == DEAD {
        Membership::Unknown {
            reason: CONSUMER_PROTOCOL_REASON.to_owned(),
        }
    } else {
        Membership::Known {
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
        }
    };
    ListedGroup {
        group: g.name().to_owned(),
        membership,
        unlisted: false,
    }
}
