//! Replays the committed corpus of the `decode_record` fuzz target
//! (`fuzz/corpus/decode_record/`: the seeds, and every input a fuzzer found to crash)
//! through the consumer's [`EventDecoder`], as the target does: writer schema v1 under
//! id 1 and v2 under id 2, held in memory.
//!
//! Input layout (see `fuzz/src/decode_record.rs`): byte 0 is the key length (255: no
//! key), then the key, then the record value.

use std::sync::Arc;

use order_consumer::dead_letter::DlqCategory;
use order_consumer::worker::decode::{DecodeFailure, EventDecoder};
use orderflow_schemas::{OrderEventDeserializer, RegistryClient, schema_v1, schema_v2, wire};

fn split_input(data: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let (&len, rest) = data.split_first()?;
    if len == u8::MAX {
        return Some((None, rest));
    }
    let (key, value) = rest.split_at(usize::from(len).min(rest.len()));
    Some((Some(key), value))
}

#[tokio::test]
async fn every_corpus_input_decodes_or_is_dead_lettered_with_a_reason() {
    // Nothing listens on port 1: a lookup that missed the in-memory schemas would be
    // a transient failure, which the assertions below refuse.
    let client = RegistryClient::new("http://127.0.0.1:1").unwrap();
    client.insert_cached(1, Arc::new(schema_v1().clone()));
    client.insert_cached(2, Arc::new(schema_v2().clone()));
    let decoder = EventDecoder::new(OrderEventDeserializer::new(client.clone()));
    let corpus = orderflow_testkit::fuzz_corpus("decode_record");
    assert!(
        corpus.len() >= 20,
        "the seeds are committed: {}",
        corpus.len()
    );
    let (mut decoded, mut refused) = (0, 0);
    for (name, data) in &corpus {
        let Some((key, value)) = split_input(data) else {
            continue;
        };
        if let Ok((schema_id, _)) = wire::split_frame(value)
            && client.cached_schema(schema_id).is_none()
        {
            // An unknown id is the registry's answer to give (tests/dead_letter.rs).
            assert!(name.starts_with("poison-"), "{name}: schema id {schema_id}");
            continue;
        }
        match decoder.decode(key, Some(value)).await {
            Ok(event) => {
                assert!(
                    name.starts_with("v1-") || name.starts_with("v2-"),
                    "{name} decoded: {event:?}"
                );
                assert_eq!(key, Some(event.order_id.as_bytes()), "{name}");
                decoded += 1;
            }
            Err(DecodeFailure::Poison(category, reason)) => {
                assert!(
                    !name.starts_with("v1-") && !name.starts_with("v2-"),
                    "{name}: a real event refused: {category:?} {reason}"
                );
                assert!(!reason.is_empty(), "{name}: {category:?} without a reason");
                if name == "poison-invalid_event" || name.starts_with("key-") {
                    assert_eq!(category, DlqCategory::Validation, "{name}: {reason}");
                }
                refused += 1;
            }
            Err(DecodeFailure::Transient(reason)) => {
                panic!("{name}: bad input called transient would stall the partition: {reason}")
            }
        }
    }
    assert!(decoded >= 16, "real events decode: {decoded}");
    assert!(refused >= 4, "poison is refused: {refused}");
}
