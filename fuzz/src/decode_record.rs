//! Target `decode_record`: one Kafka record through the consumer's [`EventDecoder`].
//!
//! Input layout: byte 0 is the key length `n` (255: the record has no key), then `n`
//! key bytes, then the record value (Confluent frame: magic byte, schema id, Avro body).
//! The registry is in memory: schema id 1 is `order_event.v1.avsc`, id 2 is
//! `order_event.v2.avsc`. Values framed with any other id are skipped, because looking
//! them up would go to the network (that path is covered by the registry tests).

use std::sync::{Arc, OnceLock};

use order_consumer::worker::decode::{DecodeFailure, EventDecoder};
use orderflow_schemas::{OrderEventDeserializer, RegistryClient, schema_v1, schema_v2, wire};

/// Schema id of the v1 writer schema.
pub const V1_ID: u32 = 1;
/// Schema id of the v2 (current) writer schema.
pub const V2_ID: u32 = 2;
/// Key-length byte meaning "the record has no key".
pub const NO_KEY: u8 = u8::MAX;

struct Offline {
    runtime: tokio::runtime::Runtime,
    client: RegistryClient,
    decoder: EventDecoder,
}

fn offline() -> &'static Offline {
    static OFFLINE: OnceLock<Offline> = OnceLock::new();
    OFFLINE.get_or_init(|| {
        // Nothing listens there: a lookup that missed the cache would fail, not hang.
        let client = RegistryClient::new("http://127.0.0.1:1").expect("a valid URL");
        client.insert_cached(V1_ID, Arc::new(schema_v1().clone()));
        client.insert_cached(V2_ID, Arc::new(schema_v2().clone()));
        let decoder = EventDecoder::new(OrderEventDeserializer::new(client.clone()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        Offline {
            runtime,
            client,
            decoder,
        }
    })
}

/// Builds an input from a record's key and value.
pub fn input(key: Option<&[u8]>, value: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(1 + key.map_or(0, <[u8]>::len) + value.len());
    match key {
        Some(key) => {
            let len = u8::try_from(key.len()).expect("keys under 255 bytes");
            assert_ne!(len, NO_KEY, "keys under 255 bytes");
            data.push(len);
            data.extend_from_slice(key);
        }
        None => data.push(NO_KEY),
    }
    data.extend_from_slice(value);
    data
}

/// Splits an input into the record's key and value (`None` when the input is empty).
pub fn split_input(data: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let (&len, rest) = data.split_first()?;
    if len == NO_KEY {
        return Some((None, rest));
    }
    let len = usize::from(len).min(rest.len());
    let (key, value) = rest.split_at(len);
    Some((Some(key), value))
}

/// Decodes one input. Panics (a finding) when bad input is called transient, which would
/// stall the partition instead of dead-lettering the record, or an error says nothing.
pub fn run(data: &[u8]) {
    let Some((key, value)) = split_input(data) else {
        return;
    };
    let offline = offline();
    if let Ok((schema_id, _)) = wire::split_frame(value)
        && offline.client.cached_schema(schema_id).is_none()
    {
        return;
    }
    let outcome = offline
        .runtime
        .block_on(offline.decoder.decode(key, Some(value)));
    match outcome {
        Ok(event) => {
            assert!(
                !event.order_id.is_empty(),
                "a decoded event has an order id"
            );
            assert_eq!(
                key,
                Some(event.order_id.as_bytes()),
                "a decoded event's key is its order id"
            );
        }
        Err(DecodeFailure::Transient(message)) => {
            panic!("bad input classified as transient (would stall the partition): {message}")
        }
        Err(DecodeFailure::Poison(category, message)) => {
            assert!(!message.is_empty(), "{category:?} error without a message");
        }
    }
}
