//! The registry against real PostgreSQL, started in-process on 127.0.0.1:0 and driven
//! over HTTP, by plain requests and by a real client crate (schema_registry_converter).

mod support;

use apache_avro::types::Value as AvroValue;
use reqwest::{Method, StatusCode};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, post_schema,
};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::json;
use support::{TestRegistry, V1, V1_REFORMATTED, V2, V3_REQUIRED_FIELD, schema_body};

#[tokio::test]
async fn real_client_registers_encodes_and_decodes_unchanged() {
    let registry = TestRegistry::start().await;
    let settings = SrSettings::new_builder(registry.url())
        .no_proxy()
        .build()
        .unwrap();

    let supplied = SuppliedSchema::new(None, SchemaType::Avro, V1.to_string());
    let registered = post_schema(&settings, "orders-value".into(), supplied.clone())
        .await
        .expect("the client registers");
    let again = post_schema(&settings, "orders-value".into(), supplied.clone())
        .await
        .expect("registering again answers the same id");
    assert_eq!(registered.id, again.id);

    let fetched = get_schema_by_id(registered.id, &settings)
        .await
        .expect("the client fetches by id");
    assert_eq!(fetched.schema, V1);
    assert_eq!(fetched.schema_type, SchemaType::Avro);

    // A full round trip through the Confluent wire format: the encoder registers (or
    // finds) the schema, the decoder looks it up by the id in the payload.
    let encoder = AvroEncoder::new(settings.clone());
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "orders".into(),
        false,
        SuppliedSchema::new(None, SchemaType::Avro, V2.to_string()),
    );
    let bytes = encoder
        .encode(
            vec![
                ("order_id", AvroValue::String("o-1".into())),
                ("amount_cents", AvroValue::Long(1250)),
                ("note", AvroValue::Union(0, Box::new(AvroValue::Null))),
            ],
            strategy,
        )
        .await
        .expect("encode with a schema the registry accepts as BACKWARD compatible");
    assert_eq!(bytes[0], 0, "magic byte");
    let v2_id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    assert_ne!(v2_id, registered.id, "an evolved schema gets a new id");

    let decoded = AvroDecoder::new(settings.clone())
        .decode(Some(&bytes))
        .await
        .expect("decode by schema id");
    let AvroValue::Record(fields) = decoded.value else {
        panic!("decoded {:?}", decoded.value)
    };
    assert_eq!(
        fields[0],
        ("order_id".into(), AvroValue::String("o-1".into()))
    );
    assert_eq!(fields[1], ("amount_cents".into(), AvroValue::Long(1250)));

    // The client surfaces an incompatible schema as an error.
    let incompatible = SuppliedSchema::new(None, SchemaType::Avro, V3_REQUIRED_FIELD.into());
    let err = post_schema(&settings, "orders-value".into(), incompatible)
        .await
        .expect_err("incompatible schema is rejected");
    assert!(format!("{err:?}").contains("409"), "{err:?}");
    registry.stop().await;
}

#[tokio::test]
async fn registration_lookup_and_errors_follow_confluent() {
    let registry = TestRegistry::start().await;

    // Same schema twice (reformatted) -> same id, one version.
    let (status, first) = registry.register("orders-value", V1).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let id1 = first["id"].as_i64().unwrap();
    assert_eq!(
        registry.register("orders-value", V1_REFORMATTED).await.1["id"],
        id1
    );
    // The same schema under another subject keeps its global id.
    assert_eq!(registry.register("payments-value", V1).await.1["id"], id1);
    let (status, second) = registry.register("orders-value", V2).await;
    assert_eq!(status, StatusCode::OK);
    let id2 = second["id"].as_i64().unwrap();
    assert_ne!(id1, id2);

    let (status, kind, versions) = registry
        .call(Method::GET, "/subjects/orders-value/versions", None)
        .await;
    assert_eq!((status, versions), (StatusCode::OK, json!([1, 2])));
    assert_eq!(kind, "application/vnd.schemaregistry.v1+json");
    let (_, _, subjects) = registry.call(Method::GET, "/subjects", None).await;
    assert_eq!(subjects, json!(["orders-value", "payments-value"]));
    let (_, _, latest) = registry
        .call(Method::GET, "/subjects/orders-value/versions/latest", None)
        .await;
    assert_eq!(
        latest,
        json!({"subject": "orders-value", "version": 2, "id": id2, "schema": V2})
    );
    let (_, _, first_version) = registry
        .call(Method::GET, "/subjects/orders-value/versions/1", None)
        .await;
    assert_eq!(first_version["id"], id1);
    let (_, _, by_id) = registry
        .call(Method::GET, &format!("/schemas/ids/{id1}"), None)
        .await;
    assert_eq!(by_id, json!({ "schema": V1 }));
    let (_, _, users) = registry
        .call(Method::GET, &format!("/schemas/ids/{id1}/versions"), None)
        .await;
    assert_eq!(
        users,
        json!([{"subject": "orders-value", "version": 1}, {"subject": "payments-value", "version": 1}])
    );
    // Look up a schema under a subject, whitespace-insensitively.
    let (status, _, found) = registry
        .call(
            Method::POST,
            "/subjects/orders-value",
            Some(&schema_body(V1_REFORMATTED)),
        )
        .await;
    assert_eq!(
        (status, found["version"].clone(), found["id"].clone()),
        (StatusCode::OK, json!(1), json!(id1))
    );

    // Incompatible -> 409 with Confluent's body, and no version added.
    let (status, body) = registry.register("orders-value", V3_REQUIRED_FIELD).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error_code"], 409);
    assert!(
        body["message"].as_str().unwrap().contains("currency"),
        "{body}"
    );
    // Invalid Avro -> 422 / 42201 carrying the parser's message.
    let (status, body) = registry
        .register(
            "orders-value",
            r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"strng"}]}"#,
        )
        .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!(42201))
    );
    assert!(
        body["message"].as_str().unwrap().contains("strng"),
        "{body}"
    );
    // Malformed JSON -> 400; a missing field -> 422 naming it; wrong content type -> 415.
    let path = "/subjects/orders-value/versions";
    let (status, _, body) = registry
        .call(Method::POST, path, Some("{\"schema\": "))
        .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::BAD_REQUEST, json!(400))
    );
    let (status, _, body) = registry
        .call(Method::POST, path, Some(r#"{"schemaType":"AVRO"}"#))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"].as_str().unwrap().contains("`schema`"),
        "{body}"
    );
    let (status, _, _) = registry
        .call_as(Method::POST, path, Some(&schema_body(V1)), "text/plain")
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for accepted in ["application/json", "application/octet-stream"] {
        let (status, _, body) = registry
            .call_as(Method::POST, path, Some(&schema_body(V2)), accepted)
            .await;
        assert_eq!(
            (status, body["id"].clone()),
            (StatusCode::OK, json!(id2)),
            "{accepted}"
        );
    }
    assert_eq!(
        registry
            .call(Method::GET, "/subjects/orders-value/versions", None)
            .await
            .2,
        json!([1, 2])
    );

    // Not-found codes.
    let not_found = [
        ("/subjects/nope/versions", 40401),
        ("/subjects/nope/versions/latest", 40401),
        ("/subjects/orders-value/versions/9", 40402),
        ("/schemas/ids/999999", 40403),
    ];
    for (path, code) in not_found {
        let (status, kind, body) = registry.call(Method::GET, path, None).await;
        assert_eq!(
            (status, body["error_code"].clone()),
            (StatusCode::NOT_FOUND, json!(code)),
            "{path}"
        );
        assert_eq!(kind, "application/vnd.schemaregistry.v1+json");
    }
    let (status, _, body) = registry
        .call(Method::GET, "/subjects/orders-value/versions/zero", None)
        .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!(42202))
    );
    let (_, _, body) = registry
        .call(
            Method::POST,
            "/subjects/orders-value",
            Some(&schema_body(V3_REQUIRED_FIELD)),
        )
        .await;
    assert_eq!(body["error_code"], 40403);

    // Root, health, readiness and the registration counter.
    assert_eq!(registry.call(Method::GET, "/", None).await.2, json!({}));
    assert_eq!(
        registry.call(Method::GET, "/healthz", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        registry.call(Method::GET, "/readyz", None).await.0,
        StatusCode::OK
    );
    let (_, _, metrics) = registry.call(Method::GET, "/metrics", None).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains(r#"orderflow_registry_registrations_total{outcome="created"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"orderflow_registry_registrations_total{outcome="incompatible"} 1"#),
        "{metrics}"
    );
    registry.stop().await;
}

#[tokio::test]
async fn compatibility_checks_config_and_deletes() {
    let registry = TestRegistry::start().await;
    registry.register("orders-value", V1).await;
    registry.register("orders-value", V2).await;

    // Compatibility endpoint, with and without reasons.
    let check = "/compatibility/subjects/orders-value/versions/latest";
    let (status, _, answer) = registry
        .call(Method::POST, check, Some(&schema_body(V3_REQUIRED_FIELD)))
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"is_compatible": false}))
    );
    let (_, _, answer) = registry
        .call(
            Method::POST,
            &format!("{check}?verbose=true"),
            Some(&schema_body(V3_REQUIRED_FIELD)),
        )
        .await;
    assert!(
        answer["messages"][0].as_str().unwrap().contains("currency"),
        "{answer}"
    );
    let (_, _, answer) = registry
        .call(
            Method::POST,
            "/compatibility/subjects/orders-value/versions/1",
            Some(&schema_body(V2)),
        )
        .await;
    assert_eq!(answer, json!({"is_compatible": true}));
    let (_, _, answer) = registry
        .call(
            Method::POST,
            "/compatibility/subjects/new-subject/versions/latest",
            Some(&schema_body(V1)),
        )
        .await;
    assert_eq!(answer, json!({"is_compatible": true}));

    // Config: BACKWARD by default; GET answers compatibilityLevel, PUT takes compatibility.
    assert_eq!(
        registry.call(Method::GET, "/config", None).await.2,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    let (status, _, body) = registry
        .call(Method::GET, "/config/orders-value", None)
        .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(40408))
    );
    let (_, _, body) = registry
        .call(
            Method::GET,
            "/config/orders-value?defaultToGlobal=true",
            None,
        )
        .await;
    assert_eq!(body, json!({"compatibilityLevel": "BACKWARD"}));
    let (status, _, body) = registry
        .call(
            Method::PUT,
            "/config/orders-value",
            Some(r#"{"compatibility":"none"}"#),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"compatibility": "NONE"}))
    );
    assert_eq!(
        registry
            .call(Method::GET, "/config/orders-value", None)
            .await
            .2,
        json!({"compatibilityLevel": "NONE"})
    );
    let (status, body) = registry.register("orders-value", V3_REQUIRED_FIELD).await;
    assert_eq!(status, StatusCode::OK, "NONE accepts anything: {body}");
    let v3_id = body["id"].clone();
    let (status, _, body) = registry
        .call(Method::DELETE, "/config/orders-value", None)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"compatibilityLevel": "NONE"}))
    );
    let (status, _, body) = registry
        .call(
            Method::PUT,
            "/config",
            Some(r#"{"compatibility":"SIDEWAYS"}"#),
        )
        .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!(42203))
    );
    let (status, _, body) = registry
        .call(
            Method::PUT,
            "/config",
            Some(r#"{"compatibility":"FULL_TRANSITIVE"}"#),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"compatibility": "FULL_TRANSITIVE"}))
    );
    assert_eq!(
        registry.call(Method::GET, "/config", None).await.2,
        json!({"compatibilityLevel": "FULL_TRANSITIVE"})
    );

    // Soft delete: versions listed, subject hidden, schema still readable with deleted=true.
    let (status, _, body) = registry
        .call(Method::DELETE, "/subjects/orders-value", None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!([1, 2, 3])));
    assert_eq!(
        registry.call(Method::GET, "/subjects", None).await.2,
        json!([])
    );
    assert_eq!(
        registry
            .call(Method::GET, "/subjects?deleted=true", None)
            .await
            .2,
        json!(["orders-value"])
    );
    let by_id = format!("/schemas/ids/{v3_id}");
    assert_eq!(
        registry.call(Method::GET, &by_id, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        registry
            .call(Method::GET, &format!("{by_id}?deleted=true"), None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, _, body) = registry
        .call(Method::DELETE, "/subjects/orders-value", None)
        .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(40404))
    );

    // Registering again continues the numbering and keeps the id.
    let (_, body) = registry.register("orders-value", V3_REQUIRED_FIELD).await;
    assert_eq!(body["id"], v3_id);
    assert_eq!(
        registry
            .call(Method::GET, "/subjects/orders-value/versions", None)
            .await
            .2,
        json!([4])
    );

    // A permanent delete needs a soft delete first.
    let (status, _, body) = registry
        .call(
            Method::DELETE,
            "/subjects/orders-value?permanent=true",
            None,
        )
        .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(40405))
    );
    registry
        .call(Method::DELETE, "/subjects/orders-value", None)
        .await;
    let (status, _, body) = registry
        .call(
            Method::DELETE,
            "/subjects/orders-value?permanent=true",
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!([1, 2, 3, 4])));
    assert_eq!(
        registry
            .call(Method::GET, "/subjects?deleted=true", None)
            .await
            .2,
        json!([])
    );
    registry.stop().await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_new_schema_end_with_one_id() {
    let registry = TestRegistry::start().await;
    let registry = std::sync::Arc::new(registry);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let registry = registry.clone();
        // Half under one subject (one version must result), half under others.
        let subject = if i % 2 == 0 {
            "orders-value".to_string()
        } else {
            format!("copy-{i}-value")
        };
        tasks.push(tokio::spawn(async move {
            registry.register(&subject, V1).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.insert(body["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 1, "one schema, one id: {ids:?}");
    assert_eq!(
        registry
            .call(Method::GET, "/subjects/orders-value/versions", None)
            .await
            .2,
        json!([1])
    );
    let registry = std::sync::Arc::into_inner(registry).unwrap();
    registry.stop().await;
}
