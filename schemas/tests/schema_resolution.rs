//! Against the real schema registry (`SCHEMA_REGISTRY_URL`): another team registers a newer
//! schema the registry accepts (BACKWARD compatible with ours) and writes with it. Each
//! record must either read as the event it is or fail as a `schema` record failure that
//! names what this reader cannot read; never read as a different event.

use apache_avro::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use orderflow_schemas::{
    DecodeError, ErrorCategory, OrderEventDeserializer, OrderPayload, RegistryClient,
    SCHEMA_V2_JSON, value_subject, wire,
};
use orderflow_testkit as testkit;

fn client() -> RegistryClient {
    RegistryClient::new(testkit::registry_url()).expect("SCHEMA_REGISTRY_URL is a usable URL")
}

const OCCURRED_AT_MS: i64 = 1_700_000_000_123;

/// v2 with `OrderRefunded{payment_id, amount_cents, reason}` appended to the payload union:
/// every field of OrderPaid plus one, so a shape match takes it for OrderPaid.
fn v3_with_refunds() -> String {
    let refunded = r#"{"type": "record", "name": "OrderRefunded", "fields": [
            {"name": "payment_id", "type": "string"},
            {"name": "amount_cents", "type": "long"},
            {"name": "reason", "type": "string"}]},
        {
          "type": "record",
          "name": "OrderCancelled","#;
    let v3 = SCHEMA_V2_JSON.replacen(
        r#"{
          "type": "record",
          "name": "OrderCancelled","#,
        refunded,
        1,
    );
    assert_ne!(
        v3, SCHEMA_V2_JSON,
        "the v2 text has the OrderCancelled branch"
    );
    v3
}

/// v2 with `occurred_at` in microseconds.
fn v3_with_micros() -> String {
    let v3 = SCHEMA_V2_JSON.replacen(
        r#""logicalType": "timestamp-millis""#,
        r#""logicalType": "timestamp-micros""#,
        1,
    );
    assert_ne!(v3, SCHEMA_V2_JSON);
    v3
}

/// Registers v2 then `newer` under a fresh subject (both accepted) and returns `newer`'s id.
async fn register_after_v2(newer: &str) -> u32 {
    let subject = value_subject(&testkit::unique_name("orders"));
    let registry = client();
    registry
        .register(&subject, SCHEMA_V2_JSON)
        .await
        .expect("register v2");
    registry
        .register(&subject, newer)
        .await
        .expect("the registry accepts the newer schema (BACKWARD compatible)")
}

/// A framed record of `schema` with `payload` as union branch `branch`.
fn frame(schema_id: u32, schema: &str, occurred_at: Value, branch: u32, payload: Value) -> Vec<u8> {
    let schema = Schema::parse_str(schema).expect("the newer schema parses");
    let value = Value::Record(vec![
        ("event_id".into(), Value::Uuid(uuid::Uuid::new_v4())),
        ("order_id".into(), Value::String("order-evolved".into())),
        ("occurred_at".into(), occurred_at),
        ("producer".into(), Value::String("refund-service".into())),
        ("payload".into(), Value::Union(branch, Box::new(payload))),
        (
            "sales_channel".into(),
            Value::Union(0, Box::new(Value::Null)),
        ),
    ]);
    let body = GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .expect("the value fits the newer schema");
    wire::encode_frame(schema_id, &body)
}

fn payment(extra: Option<&str>) -> Value {
    let mut fields = vec![
        ("payment_id".into(), Value::String("pay-1".into())),
        ("amount_cents".into(), Value::Long(1999)),
    ];
    if let Some(reason) = extra {
        fields.push(("reason".into(), Value::String(reason.into())));
    }
    Value::Record(fields)
}

#[tokio::test]
async fn a_new_union_branch_is_not_read_as_an_older_branch_of_the_same_shape() {
    let v3 = v3_with_refunds();
    let v3_id = register_after_v2(&v3).await;
    let millis = Value::TimestampMillis(OCCURRED_AT_MS);
    let deserializer = OrderEventDeserializer::new(client());

    // OrderPaid is branch 1 in both: read as itself.
    let paid = deserializer
        .deserialize(&frame(v3_id, &v3, millis.clone(), 1, payment(None)))
        .await
        .expect("an OrderPaid of v3 reads");
    assert!(
        matches!(&paid.payload, OrderPayload::Paid(p) if p.payment_id == "pay-1" && p.amount_cents == 1999),
        "{paid:?}"
    );

    // OrderRefunded is branch 3 of v3: this reader has no such branch.
    let refund = frame(v3_id, &v3, millis, 3, payment(Some("damaged")));
    let error = deserializer
        .deserialize(&refund)
        .await
        .expect_err("a refund must not be read as a payment");
    assert!(
        matches!(error, DecodeError::SchemaMismatch { schema_id, .. } if schema_id == v3_id),
        "{error}"
    );
    assert_eq!(error.category(), ErrorCategory::Schema);
    assert!(!error.is_transient());
    assert!(
        error.to_string().contains("OrderRefunded"),
        "the error names the branch: {error}"
    );
}

#[tokio::test]
async fn timestamp_micros_are_not_read_as_millis() {
    let v3 = v3_with_micros();
    let v3_id = register_after_v2(&v3).await;
    let micros = Value::TimestampMicros(OCCURRED_AT_MS * 1000 + 456);
    let cancelled = Value::Record(vec![("reason".into(), Value::String("late".into()))]);
    let event = OrderEventDeserializer::new(client())
        .deserialize(&frame(v3_id, &v3, micros, 3, cancelled))
        .await
        .expect("microseconds convert to the reader's milliseconds");
    assert_eq!(
        event.occurred_at.timestamp_millis(),
        OCCURRED_AT_MS,
        "occurred_at {} is the instant written",
        event.occurred_at
    );
}
