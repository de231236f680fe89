//! Poison inside live orders' key lanes: right after the order API acknowledged an
//! order's creation, one of every `every` such orders gets a poison record under its own
//! key (so in its partition, between its creation and its payment). Kinds take turns:
//! bytes that are not the wire format, a frame naming a schema id the registry does not
//! know, and a payment of 0 cents that decodes but breaks the rules. The consumer must
//! dead-letter each and go on applying the order's later events.

use std::time::Duration;

use anyhow::Context;
use orderflow_schemas::{
    OrderEvent, OrderEventSerializer, OrderPaid, OrderPayload, RegistryClient,
};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc;

/// Poison records written, by kind.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LanePoisonSummary {
    /// Not the wire format.
    pub not_wire_format: u64,
    /// Unknown schema id.
    pub unknown_schema_id: u64,
    /// A payment of 0 cents.
    pub invalid_payment: u64,
    /// Writes that failed (each is a record the verifier will not see).
    pub failed: u64,
}

/// Consumes created order ids until the channel closes.
pub async fn run(
    brokers: &str,
    registry: &str,
    topic: &str,
    every: u64,
    mut created: mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<LanePoisonSummary> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // The partitioner of the relay and the generator (Java's), so the poison
        // lands in its order's partition.
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .context("create the lane poison producer")?;
    let serializer = OrderEventSerializer::new(&RegistryClient::new(registry)?, topic).await?;
    let mut summary = LanePoisonSummary::default();
    let mut n = 0u64;
    while let Some(order_id) = created.recv().await {
        n += 1;
        if every == 0 || !n.is_multiple_of(every) {
            continue;
        }
        let kind = (n / every) % 3;
        let value = match kind {
            0 => br#"{"order_id": "not Avro"}"#.to_vec(),
            1 => {
                let mut value = vec![0, 0x7f, 0xff, 0xff, 0xf0];
                value.extend_from_slice(b"\x02abc");
                value
            }
            _ => serializer.serialize(&OrderEvent {
                event_id: uuid::Uuid::new_v4(),
                order_id: order_id.clone(),
                occurred_at: chrono::Utc::now(),
                producer: "orderflow-chaos".into(),
                sales_channel: None,
                payload: OrderPayload::Paid(OrderPaid {
                    payment_id: format!("poison-{n}"),
                    amount_cents: 0,
                }),
            }),
        };
        let headers = OwnedHeaders::new().insert(Header {
            key: "event-type",
            value: Some("OrderPaid"),
        });
        let record = FutureRecord::to(topic)
            .key(&order_id)
            .payload(&value)
            .headers(headers);
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => match kind {
                0 => summary.not_wire_format += 1,
                1 => summary.unknown_schema_id += 1,
                _ => summary.invalid_payment += 1,
            },
            Err((error, _)) => {
                summary.failed += 1;
                tracing::warn!(%error, order_id, "lane poison not written");
            }
        }
    }
    Ok(summary)
}
