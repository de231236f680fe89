//! Unit tests of decoding: round trips, schema evolution with the real .avsc files, and every
//! [`DecodeError`] kind that needs no registry (the registry ones are under `tests/`).

use super::*;
use crate::avro_value::event_to_value;
use crate::avro_value::tests::sample_events;
use crate::error::ErrorCategory;
use crate::registry_client::tests::closed_port_url;
use crate::serializer::OrderEventSerializer;
use apache_avro::writer::datum::GenericDatumWriter;

const V1_ID: u32 = 11;
const V2_ID: u32 = 12;

/// A deserializer whose registry is unreachable but whose cache holds v1 and v2: anything it
/// decodes proves the cached path needs no network.
fn offline_deserializer() -> OrderEventDeserializer {
    let client = RegistryClient::new(closed_port_url()).unwrap();
    client.insert_cached(V1_ID, Arc::new(schema_v1().clone()));
    client.insert_cached(V2_ID, Arc::new(current_schema().clone()));
    OrderEventDeserializer::new(client)
}

/// `event` as a v1 producer would have written it.
fn v1_frame(event: &OrderEvent) -> Vec<u8> {
    let Value::Record(mut fields) = event_to_value(event) else {
        unreachable!()
    };
    fields.retain(|(name, _)| name != "sales_channel");
    let body = GenericDatumWriter::builder(schema_v1())
        .build()
        .unwrap()
        .write_value_to_vec(Value::Record(fields))
        .unwrap();
    wire::encode_frame(V1_ID, &body)
}

#[tokio::test]
async fn every_payload_round_trips_through_the_wire_format() {
    let deserializer = offline_deserializer();
    let serializer = OrderEventSerializer::from_schema_id(V2_ID, "orders-value");
    let mut buf = Vec::new();
    for event in sample_events() {
        serializer.serialize_into(&event, &mut buf);
        assert_eq!(
            buf[..5],
            [0, 0, 0, 0, V2_ID as u8],
            "magic byte + big-endian id"
        );
        assert_eq!(deserializer.deserialize(&buf).await.unwrap(), event);
        assert_eq!(serializer.serialize(&event), buf);
    }
}

#[tokio::test]
async fn v1_data_reads_with_v2_and_no_sales_channel() {
    let deserializer = offline_deserializer();
    for mut event in sample_events() {
        let frame = v1_frame(&event);
        event.sales_channel = None;
        assert_eq!(deserializer.deserialize(&frame).await.unwrap(), event);
        let (_, body) = wire::split_frame(&frame).unwrap();
        assert_eq!(decode_body(V1_ID, schema_v1(), body).unwrap(), event);
    }
}

#[test]
fn v2_data_reads_with_a_v1_reader() {
    let serializer = OrderEventSerializer::from_schema_id(V2_ID, "orders-value");
    let v1_reader = GenericDatumReader::builder(current_schema())
        .reader_schema(schema_v1())
        .build()
        .unwrap();
    for event in sample_events() {
        let frame = serializer.serialize(&event);
        let value = v1_reader.read_value(&mut &frame[5..]).unwrap();
        let Value::Record(fields) = &value else {
            panic!("{value:?}")
        };
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["event_id", "order_id", "occurred_at", "producer", "payload"]
        );
        // What a v1 reader sees equals the v1 encoding of the same event.
        let Value::Record(mut expected) = event_to_value(&event) else {
            unreachable!()
        };
        expected.retain(|(name, _)| name != "sales_channel");
        assert_eq!(value, Value::Record(expected), "{}", event.event_type());
    }
}

/// v2 plus a field with a default and a new payload branch, as a later producer might write.
const V3_JSON: &str = r#"{"type": "record", "name": "OrderEvent", "namespace": "io.orderflow.orders",
  "fields": [
    {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "order_id", "type": "string"},
    {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "producer", "type": "string"},
    {"name": "payload", "type": [
      {"type": "record", "name": "OrderCancelled", "fields": [{"name": "reason", "type": "string"}]},
      {"type": "record", "name": "OrderRefunded", "fields": [{"name": "refund_id", "type": "string"}]}
    ]},
    {"name": "sales_channel", "type": ["null", "string"], "default": null},
    {"name": "coupon", "type": "string", "default": ""}
  ]}"#;

fn v3_body(branch: u32, payload: Value) -> Vec<u8> {
    let schema = Schema::parse_str(V3_JSON).unwrap();
    let value = Value::Record(vec![
        ("event_id".into(), Value::Uuid(uuid::Uuid::new_v4())),
        ("order_id".into(), Value::String("o-3".into())),
        (
            "occurred_at".into(),
            Value::TimestampMillis(1_700_000_000_000),
        ),
        ("producer".into(), Value::String("v3".into())),
        ("payload".into(), Value::Union(branch, Box::new(payload))),
        (
            "sales_channel".into(),
            Value::Union(1, Box::new(Value::String("app".into()))),
        ),
        ("coupon".into(), Value::String("X".into())),
    ]);
    GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

#[test]
fn newer_writer_resolves_by_branch_name_or_is_a_schema_mismatch() {
    let v3 = Schema::parse_str(V3_JSON).unwrap();
    let cancelled = Value::Record(vec![("reason".into(), Value::String("late".into()))]);
    let event = decode_body(3, &v3, &v3_body(0, cancelled)).unwrap();
    assert_eq!(event.event_type(), "OrderCancelled");
    assert_eq!(event.sales_channel.as_deref(), Some("app"));

    let refunded = Value::Record(vec![("refund_id".into(), Value::String("r".into()))]);
    let error = decode_body(3, &v3, &v3_body(1, refunded)).unwrap_err();
    assert!(
        matches!(error, DecodeError::SchemaMismatch { schema_id: 3, .. }),
        "{error}"
    );
    assert_eq!(error.category(), ErrorCategory::Schema);
}

#[test]
fn unrelated_writer_schema_is_a_schema_mismatch() {
    let other = Schema::parse_str(
        r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"}]}"#,
    )
    .unwrap();
    let error = decode_body(5, &other, &[0x02]).unwrap_err();
    assert!(
        matches!(error, DecodeError::SchemaMismatch { schema_id: 5, .. }),
        "{error}"
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn broken_bodies_are_invalid_body() {
    let deserializer = offline_deserializer();
    let good = OrderEventSerializer::from_schema_id(V2_ID, "s").serialize(&sample_events()[0]);
    let truncated = &good[..good.len() - 3];
    let mut trailing = good.clone();
    trailing.push(0);
    let mut bad_union = wire::encode_frame(V2_ID, &[]);
    bad_union.extend_from_slice(&good[5..]);
    // Corrupt the length of event_id (first byte of the body) into a negative length.
    bad_union[5] = 0x01;
    for frame in [
        truncated,
        &trailing,
        &bad_union,
        &wire::encode_frame(V2_ID, &[]),
    ] {
        let error = deserializer.deserialize(frame).await.unwrap_err();
        assert!(
            matches!(
                error,
                DecodeError::InvalidBody {
                    schema_id: V2_ID,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(error.category(), ErrorCategory::Deserialization);
    }
}

#[tokio::test]
async fn unframed_values_are_not_wire_format() {
    let deserializer = offline_deserializer();
    for value in [&b""[..], b"\x00\x00\x00", b"{\"order_id\":\"1\"}"] {
        let error = deserializer.deserialize(value).await.unwrap_err();
        assert!(
            matches!(error, DecodeError::NotWireFormat { .. }),
            "{error}"
        );
        assert!(!error.is_transient());
    }
}

#[tokio::test]
async fn unknown_id_with_registry_down_is_transient() {
    let deserializer = offline_deserializer();
    let frame = wire::encode_frame(999, &[0]);
    let error = deserializer.deserialize(&frame).await.unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::RegistryUnavailable { schema_id: 999, .. }
        ),
        "{error}"
    );
    assert!(error.is_transient());
}

#[test]
fn registry_answers_map_to_decode_errors() {
    let not_found = RegistryError::NotFound {
        url: "http://r".into(),
        what: "schema id 4".into(),
    };
    assert!(matches!(
        registry_failure(4, not_found),
        DecodeError::UnknownSchemaId(4)
    ));
    let invalid = RegistryError::InvalidSchema {
        url: "http://r".into(),
        what: "schema id 4".into(),
        reason: "x".into(),
    };
    assert!(matches!(
        registry_failure(4, invalid),
        DecodeError::SchemaMismatch { schema_id: 4, .. }
    ));
    let refused = RegistryError::Rejected {
        url: "http://r".into(),
        what: "schema id 4".into(),
        status: 401,
        code: 40101,
        message: "unauthorized".into(),
    };
    assert!(
        registry_failure(4, refused).is_transient(),
        "a misconfigured registry must not flood the DLQ"
    );
}

#[tokio::test]
async fn truncated_v1_bodies_are_invalid_body_not_defaults() {
    let deserializer = offline_deserializer();
    for event in sample_events() {
        let frame = v1_frame(&event);
        for len in wire::HEADER_LEN..frame.len() {
            match deserializer.deserialize(&frame[..len]).await {
                Err(DecodeError::InvalidBody {
                    schema_id: V1_ID, ..
                }) => {}
                other => panic!("{} cut to {len} bytes: {other:?}", event.event_type()),
            }
        }
    }
}
