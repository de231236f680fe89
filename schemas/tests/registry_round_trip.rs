//! Against the real schema registry (`SCHEMA_REGISTRY_URL`): register the current schema under a
//! fresh subject, round-trip an event through the wire format, evolve v1 -> v2 under one subject,
//! and show that an id the registry does not know is poison, not a transient failure.

use orderflow_schemas::{
    DecodeError, OrderCancelled, OrderEvent, OrderEventDeserializer, OrderEventSerializer,
    OrderPayload, RegistryClient, RegistryError, SCHEMA_V1_JSON, SCHEMA_V2_JSON, value_subject,
    wire,
};
use orderflow_testkit as testkit;

fn client() -> RegistryClient {
    RegistryClient::new(testkit::registry_url()).expect("SCHEMA_REGISTRY_URL is a usable URL")
}

fn sample_event() -> OrderEvent {
    let mut event = OrderEvent::new(
        testkit::unique_name("order"),
        "schemas-it",
        OrderPayload::Cancelled(OrderCancelled {
            reason: "integration test".into(),
        }),
    );
    event.sales_channel = Some("web".into());
    event
}

#[tokio::test]
async fn event_round_trips_through_a_registered_subject() {
    let topic = testkit::unique_name("orders");
    let serializer = OrderEventSerializer::new(&client(), &topic)
        .await
        .expect("register current schema");
    assert_eq!(serializer.subject(), value_subject(&topic));

    let event = sample_event();
    let frame = serializer.serialize(&event);
    let (schema_id, _) = wire::split_frame(&frame).unwrap();
    assert_eq!(schema_id, serializer.schema_id());

    // A separate client has an empty cache: it must fetch the writer schema by id.
    let deserializer = OrderEventDeserializer::new(client());
    assert!(deserializer.client().cached_schema(schema_id).is_none());
    assert_eq!(deserializer.deserialize(&frame).await.unwrap(), event);
    assert!(
        deserializer.client().cached_schema(schema_id).is_some(),
        "fetched schema is cached"
    );

    // Registering the same schema again is idempotent.
    let again = OrderEventSerializer::new(&client(), &topic).await.unwrap();
    assert_eq!(again.schema_id(), serializer.schema_id());
}

#[tokio::test]
async fn v1_then_v2_under_one_subject_reads_old_data() {
    let subject = value_subject(&testkit::unique_name("orders"));
    let registry = client();
    let v1_id = registry
        .register(&subject, SCHEMA_V1_JSON)
        .await
        .expect("register v1");
    let v2_id = registry
        .register(&subject, SCHEMA_V2_JSON)
        .await
        .expect("v2 is BACKWARD compatible with v1");
    assert_ne!(v1_id, v2_id);

    // A v1 body: the v2 encoding of an event without sales_channel minus its final null branch byte.
    let mut event = sample_event();
    event.sales_channel = None;
    let v2_frame = OrderEventSerializer::from_schema_id(v2_id, subject.clone()).serialize(&event);
    assert_eq!(
        v2_frame.last(),
        Some(&0),
        "null branch of sales_channel ends the v2 body"
    );
    let v1_frame = wire::encode_frame(v1_id, &v2_frame[wire::HEADER_LEN..v2_frame.len() - 1]);

    let deserializer = OrderEventDeserializer::new(client());
    assert_eq!(deserializer.deserialize(&v1_frame).await.unwrap(), event);
    assert_eq!(deserializer.deserialize(&v2_frame).await.unwrap(), event);
}

#[tokio::test]
async fn unknown_schema_id_is_poison() {
    let deserializer = OrderEventDeserializer::new(client());
    let frame = wire::encode_frame(1_999_999_937, &[0]);
    let error = deserializer.deserialize(&frame).await.unwrap_err();
    assert!(
        matches!(error, DecodeError::UnknownSchemaId(id) if id == 1_999_999_937),
        "{error}"
    );
    assert!(!error.is_transient());
    assert_eq!(error.category().as_str(), "schema");
}

#[tokio::test]
async fn incompatible_schema_is_refused_not_retried() {
    let subject = value_subject(&testkit::unique_name("orders"));
    let registry = client();
    registry
        .register(&subject, SCHEMA_V1_JSON)
        .await
        .expect("register v1");
    // A required field without a default cannot read v1 data: not BACKWARD compatible.
    let breaking = SCHEMA_V2_JSON
        .replace(r#""default": null,"#, "")
        .replace(r#"["null", "string"]"#, r#""string""#);
    assert_ne!(breaking, SCHEMA_V2_JSON);
    let error = registry.register(&subject, &breaking).await.unwrap_err();
    assert!(
        matches!(error, RegistryError::Rejected { status: 409, .. }),
        "{error}"
    );
    assert!(!error.is_transient());
    assert!(error.to_string().contains(registry.url()), "{error}");
}
