//! Producer side: Confluent-framed Avro values of the current schema.

use std::time::Duration;

use crate::avro_binary::encode_event;
use crate::avro_schema::{CURRENT_SCHEMA_JSON, value_subject};
use crate::error::RegistryError;
use crate::order_event::OrderEvent;
use crate::registry_client::RegistryClient;
use crate::wire;

/// How long [`OrderEventSerializer::new`] keeps retrying an unreachable registry.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Encodes [`OrderEvent`]s for one topic: magic byte, the schema id of the current schema under
/// `<topic>-value`, Avro body. The id is resolved once at construction; encoding is synchronous,
/// allocation-free into a reused buffer, and cannot fail.
#[derive(Debug, Clone)]
pub struct OrderEventSerializer {
    schema_id: u32,
    subject: String,
}

impl OrderEventSerializer {
    /// Registers (or finds) the current schema under `<topic>-value`, retrying an unreachable
    /// registry for up to [`DEFAULT_STARTUP_TIMEOUT`]. The error names the registry URL.
    pub async fn new(client: &RegistryClient, topic: &str) -> Result<Self, RegistryError> {
        Self::with_startup_timeout(client, topic, DEFAULT_STARTUP_TIMEOUT).await
    }

    /// [`OrderEventSerializer::new`] with a chosen retry budget for an unreachable registry.
    /// Refusals (e.g. 409 incompatible schema) are returned at once.
    pub async fn with_startup_timeout(
        client: &RegistryClient,
        topic: &str,
        max_wait: Duration,
    ) -> Result<Self, RegistryError> {
        let subject = value_subject(topic);
        let schema_id = client
            .register_with_retry(&subject, CURRENT_SCHEMA_JSON, max_wait)
            .await?;
        tracing::info!(registry = %client.url(), %subject, schema_id, "order event schema registered");
        Ok(Self { schema_id, subject })
    }

    /// A serializer for an id obtained elsewhere (the id must belong to the current schema).
    pub fn from_schema_id(schema_id: u32, subject: impl Into<String>) -> Self {
        Self {
            schema_id,
            subject: subject.into(),
        }
    }

    /// The schema id written into every frame.
    pub fn schema_id(&self) -> u32 {
        self.schema_id
    }

    /// The registry subject the id belongs to (`<topic>-value`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Replaces the contents of `buf` with the framed encoding of `event`. Does not validate:
    /// call [`OrderEvent::validate`] first where the data may be wrong.
    pub fn serialize_into(&self, event: &OrderEvent, buf: &mut Vec<u8>) {
        buf.clear();
        wire::write_header(self.schema_id, buf);
        encode_event(event, buf);
    }

    /// The framed encoding of `event` in a new buffer.
    pub fn serialize(&self, event: &OrderEvent) -> Vec<u8> {
        let mut buf = Vec::with_capacity(128);
        self.serialize_into(event, &mut buf);
        buf
    }
}
