//! Sets topic configs with IncrementalAlterConfigs (KIP-339, Kafka 2.3+): only the keys
//! named are sent, each as a SET, so configs outside the file are never rewritten and
//! there is no read-modify-write race. rdkafka 0.39 does not expose the request, so it
//! goes over the wire-protocol connection of the lag engine (same TLS and SASL settings
//! as every other client). A broker without the API answers [`Incremental::Unsupported`]
//! and `apply` falls back to the legacy AlterConfigs path (`config_set`).

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use orderflow_lag::kafka::broker_connection::{BrokerConnection, WireSecurity, error_name};

/// Version sent: v1 (flexible versions) is in every Kafka since 2.4.
const VERSION: i16 = 1;
/// The topic resource type.
const TOPIC: i8 = 2;
/// The SET operation.
const SET: i8 = 0;

/// What the incremental path did with one topic's configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incremental {
    /// The broker set every key.
    Applied,
    /// No broker reached supports IncrementalAlterConfigs: use the legacy path.
    Unsupported,
    /// The broker refused the change (all keys of the topic are left as they were).
    Rejected(String),
}

/// Whether a broker advertising `max` (its highest IncrementalAlterConfigs version, if
/// any) takes the incremental path.
pub fn supports_incremental(max: Option<i16>) -> bool {
    max.is_some_and(|max| max >= VERSION)
}

/// Sets `wanted` on `topic` through the first of `bootstrap` (comma-separated) that
/// answers. `Err` is a failure to reach any broker.
pub async fn set_topic_configs(
    bootstrap: &str,
    security: &WireSecurity,
    topic: &str,
    wanted: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Incremental, String> {
    let mut last_error = "no bootstrap broker configured".to_owned();
    for address in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        let mut connection = match BrokerConnection::connect(address, security, timeout).await {
            Ok(connection) => connection,
            Err(err) => {
                last_error = err.to_string();
                continue;
            }
        };
        if !supports_incremental(connection.max_version(ApiKey::IncrementalAlterConfigs)) {
            return Ok(Incremental::Unsupported);
        }
        let configs = wanted
            .iter()
            .map(|(key, value)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.clone()))
                    .with_config_operation(SET)
                    .with_value(Some(StrBytes::from_string(value.clone())))
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configs(configs),
        ]);
        let answer: IncrementalAlterConfigsResponse = connection
            .call(ApiKey::IncrementalAlterConfigs, request, VERSION, timeout)
            .await
            .map_err(|err| err.to_string())?;
        return Ok(match answer.responses.iter().find(|r| r.error_code != 0) {
            None if !answer.responses.is_empty() => Incremental::Applied,
            None => Incremental::Rejected("the broker answered for no topic".into()),
            Some(failed) => Incremental::Rejected(format!(
                "{}{}",
                error_name(failed.error_code),
                failed
                    .error_message
                    .as_ref()
                    .map(|m| format!(": {}", m.as_str()))
                    .unwrap_or_default()
            )),
        });
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_brokers_with_the_api_take_the_incremental_path() {
        assert!(supports_incremental(Some(1)));
        assert!(supports_incremental(Some(2)));
        assert!(
            !supports_incremental(Some(0)),
            "v0 is not flexible; legacy path"
        );
        assert!(!supports_incremental(None), "a broker before 2.3");
    }
}
