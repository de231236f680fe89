//! Limits and validation of the order API: client mistakes are 4xx naming the field,
//! never a retryable 503, and nothing is written for them.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{ORDER, Service};

/// The producer's `message.max.bytes` in this test: small enough that an order within
/// every field limit can still encode to a larger event.
const MESSAGE_MAX_BYTES: &str = "4000";

fn order_with_items(items: usize, sku_len: usize) -> String {
    let items: Vec<_> = (0..items)
        .map(|i| json!({"sku": format!("{i:0>width$}", width = sku_len), "quantity": 1, "unit_price_cents": 100}))
        .collect();
    json!({"customer_id": "c-1", "currency": "EUR", "items": items}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_are_refused_with_the_field_named_and_nothing_written() {
    let service = Service::start(|args| {
        args.kafka
            .options
            .push(("message.max.bytes".into(), MESSAGE_MAX_BYTES.into()));
    })
    .await;

    // A 1.5 MB body: the service answers 413 from the Content-Length alone, without
    // reading the body, and closes the connection. A client still sending may then see
    // the connection reset before it reads the answer (hyper: IncompleteMessage): both
    // are a refusal. What must never happen is a 2xx, or a 503 telling it to retry.
    let huge_sku = ORDER.replace("\"A\"", &format!("\"{}\"", "x".repeat(1_500_000)));
    // Its own client: the connection the service closes must not go back to the pool
    // the other cases use.
    let sent = reqwest::Client::new()
        .post(format!("{}/orders", service.base))
        .header("content-type", "application/json")
        .body(huge_sku)
        .send()
        .await;
    match sent {
        Ok(response) => {
            assert_eq!(
                response.status(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large"
            );
            let body: serde_json::Value = response.json().await.expect("JSON error body");
            assert_eq!(body["field"], "body", "body too large: {body}");
        }
        Err(err) => assert!(
            err.is_request() && !err.is_timeout(),
            "body too large: the service neither answered 413 nor closed the connection: {err}"
        ),
    }

    let cases: Vec<(&str, String, StatusCode, Option<&str>)> = vec![
        (
            "sku too long",
            ORDER.replace("\"A\"", &format!("\"{}\"", "x".repeat(65))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].sku"),
        ),
        (
            "customer_id too long",
            ORDER.replace("c-1", &"c".repeat(129)),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("customer_id"),
        ),
        (
            "too many items",
            order_with_items(101, 2),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items"),
        ),
        (
            "quantity too large",
            ORDER.replace("\"quantity\": 2", "\"quantity\": 10001"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].quantity"),
        ),
        (
            "unit price too large",
            ORDER.replace("500", "1000000000001"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].unit_price_cents"),
        ),
        (
            "NUL in text",
            ORDER.replace("c-1", "c\\u0000-1"),
            StatusCode::BAD_REQUEST,
            Some("customer_id"),
        ),
        (
            "unknown field",
            ORDER.replace("{\"customer_id\"", "{\"coupon\": \"FREE\", \"customer_id\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("coupon"),
        ),
        (
            "unknown field in an item",
            ORDER.replace("\"sku\"", "\"discount\": 5, \"sku\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].discount"),
        ),
        (
            "event above message.max.bytes",
            order_with_items(60, 60),
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("body"),
        ),
    ];
    for (case, body, status, field) in cases {
        let answer = service.post("/orders", &body, &[]).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.body);
        assert!(
            answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{case}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["field"].as_str(),
            field,
            "{case}: {}",
            answer.body
        );
    }

    // Only JSON is accepted: a cross-site text/plain POST cannot create orders.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = service
            .client
            .post(format!("{}/orders", service.base))
            .body(ORDER);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let answer = service.send(request).await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {}",
            answer.body
        );
        assert_eq!(answer.body["field"], "Content-Type");
    }
    let charset = service
        .send(
            service
                .client
                .post(format!("{}/orders", service.base))
                .header("content-type", "application/json; charset=utf-8")
                .body(ORDER),
        )
        .await;
    assert_eq!(charset.status, StatusCode::CREATED, "{}", charset.body);
    let order_id = charset.body["order_id"].as_str().unwrap().to_string();

    // Text PostgreSQL cannot store, in later writes and in the path: 400 or 404, not 503.
    let nul_reason = service
        .post(
            &format!("/orders/{order_id}/cancel"),
            r#"{"reason": "oops\u0000"}"#,
            &[],
        )
        .await;
    assert_eq!(
        nul_reason.status,
        StatusCode::BAD_REQUEST,
        "{}",
        nul_reason.body
    );
    assert_eq!(nul_reason.body["field"], "reason");
    let nul_id = service
        .post(
            "/orders/ord%00x/pay",
            r#"{"payment_id": "p", "amount_cents": 1}"#,
            &[],
        )
        .await;
    assert_eq!(nul_id.status, StatusCode::NOT_FOUND, "{}", nul_id.body);
    let nul_get = service
        .send(
            service
                .client
                .get(format!("{}/orders/ord%00x", service.base)),
        )
        .await;
    assert_eq!(nul_get.status, StatusCode::NOT_FOUND, "{}", nul_get.body);

    // Unknown routes and methods answer JSON too.
    let unknown_route = service
        .send(service.client.get(format!("{}/nope", service.base)))
        .await;
    assert_eq!(unknown_route.status, StatusCode::NOT_FOUND);
    assert!(
        unknown_route.body["error"].is_string(),
        "{}",
        unknown_route.body
    );
    let wrong_method = service
        .send(service.client.delete(format!("{}/orders", service.base)))
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        wrong_method.body["error"].is_string(),
        "{}",
        wrong_method.body
    );
    assert_eq!(wrong_method.headers["allow"], "POST");

    assert_eq!(
        service.order_count().await,
        1,
        "only the valid order was written"
    );
    service.stop().await;
}
