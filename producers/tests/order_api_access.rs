//! Access control and fairness of the order API against a real service: bearer tokens
//! from a file, a token bucket per client, the request timeout, security headers on
//! every answer, and the OpenAPI document agreeing with the routes served.

mod support;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use order_producer::order_service::http::security_headers::SECURITY_HEADERS;
use orderflow_testkit as testkit;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use support::{Answer, ORDER, Service};

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";

/// A token file naming two clients, in a fresh directory.
fn token_file() -> PathBuf {
    let dir = std::env::temp_dir().join(testkit::unique_name("order-api-tokens"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(
        &file,
        format!("# order API clients\nalice:{ALICE}\nbob:{BOB}  # the second client\n"),
    )
    .unwrap();
    file
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn assert_security_headers(what: &str, headers: &HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            headers.get(&name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: header {name}"
        );
    }
}

/// A client whose connections come from `local` (any address of 127.0.0.0/8 works).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_admit_named_clients_each_with_its_own_rate_limit() {
    // One request per 1000 s refills the buckets: nothing refills while the test runs.
    let service = Service::start(|args| {
        args.api_tokens_file = Some(token_file());
        args.rate_limit_per_second = 0.001;
        args.rate_limit_burst = 3;
    })
    .await;
    let get = |client: &reqwest::Client, token: Option<&str>, path: &str| {
        let request = client.get(format!("{}{path}", service.base));
        match token {
            Some(token) => request.header("authorization", bearer(token)),
            None => request,
        }
    };

    // Without a token, or with a wrong one: 401 with the Bearer challenge, nothing written.
    let missing = service.post("/orders", ORDER, &[]).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{}", missing.body);
    assert_eq!(
        missing.headers["www-authenticate"],
        r#"Bearer realm="orderflow""#
    );
    assert_eq!(missing.body["field"], "Authorization");
    assert_security_headers("401", &missing.headers);
    let wrong = service
        .post(
            "/orders",
            ORDER,
            &[("authorization", &bearer("x".repeat(20).as_str()))],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    assert_eq!(service.order_count().await, 0);

    // Alice: her burst of 3, then 429 with Retry-After and a JSON body.
    let created = service
        .post("/orders", ORDER, &[("authorization", &bearer(ALICE))])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_security_headers("201", &created.headers);
    let order = format!("/orders/{}", created.body["order_id"].as_str().unwrap());
    for _ in 0..2 {
        let read = service
            .send(get(&service.client, Some(ALICE), &order))
            .await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    }
    let limited = service
        .send(get(&service.client, Some(ALICE), &order))
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(retry_after >= 1);
    assert!(
        limited.body["error"]
            .as_str()
            .unwrap()
            .contains("rate limit")
    );
    assert_security_headers("429", &limited.headers);
    assert_eq!(
        service.metric(r#"orderflow_order_api_rate_limited_total{client="alice"}"#),
        Some(1.0)
    );

    // Bob, the file's second client, has his own bucket: not 429 but 404, since Alice's
    // order is not his.
    let bob = service.send(get(&service.client, Some(BOB), &order)).await;
    assert_eq!(bob.status, StatusCode::NOT_FOUND, "{}", bob.body);

    // Without a valid token a caller counts by address: 127.0.0.1 spent 2 of its 3 on
    // the refusals above, so its third guess is its last; 127.0.0.2 is another caller.
    let third = service.send(get(&service.client, None, &order)).await;
    assert_eq!(third.status, StatusCode::UNAUTHORIZED);
    let guessing = service
        .send(get(
            &service.client,
            Some(BOB.trim_end_matches('f')),
            &order,
        ))
        .await;
    assert_eq!(guessing.status, StatusCode::TOO_MANY_REQUESTS);
    let elsewhere = service
        .send(get(&client_from("127.0.0.2"), None, &order))
        .await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);

    // An unknown route is 404 JSON, with the headers too.
    let unknown = service
        .send(service.client.get(format!("{}/nope", service.base)))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body["error"].is_string());
    assert_security_headers("404", &unknown.headers);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_is_503_and_has_no_effect() {
    let service = Service::start(|args| args.request_timeout = Duration::from_secs(2)).await;
    let created = service.post("/orders", ORDER, &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order_id = created.body["order_id"].as_str().unwrap().to_string();
    let pay = format!("/orders/{order_id}/pay");
    let pay_body = r#"{"payment_id": "p-1", "amount_cents": 1000}"#;

    // The test holds the order's row lock: the pay waits inside its transaction until
    // the service gives up on it.
    let mut blocker = service.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM order_service.orders WHERE order_id = $1 FOR UPDATE")
        .bind(&order_id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let timed_out = service.post(&pay, pay_body, &[]).await;
    assert_eq!(
        timed_out.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        timed_out.body
    );
    assert_eq!(timed_out.headers["retry-after"], "1");
    assert!(
        timed_out.body["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 2 s"),
        "{}",
        timed_out.body
    );
    assert_security_headers("503", &timed_out.headers);
    blocker.rollback().await.unwrap();

    // The abandoned pay rolled back; the retry pays the order once.
    let order = service
        .send(
            service
                .client
                .get(format!("{}/orders/{order_id}", service.base)),
        )
        .await;
    assert_eq!(order.body["status"], "created", "{}", order.body);
    let paid = service.post(&pay, pay_body, &[]).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(
        service.outbox_rows(&order_id).await,
        2,
        "created + paid, once"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_exactly_the_routes_served() {
    let service =
        Service::start(|args| args.api_tokens = Some(format!("alice:{ALICE}").parse().unwrap()))
            .await;
    let document: Answer = service
        .send(service.client.get(format!("{}/openapi.json", service.base)))
        .await;
    assert_eq!(document.status, StatusCode::OK, "open without a token");
    let paths = document.body["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/orders/{id}/pay"), "{paths:?}");

    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut operations = 0;
    for (path, item) in paths {
        let url = format!("{}{}", service.base, path.replace("{id}", "ord-x"));
        for method in &methods {
            let documented = item.get(method.as_str().to_lowercase()).is_some();
            // No token: a served /orders route answers 401 without touching anything.
            let answer = service
                .send(service.client.request(method.clone(), &url))
                .await;
            if documented {
                operations += 1;
                assert!(
                    answer.status != StatusCode::NOT_FOUND
                        && answer.status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is documented but answers {}",
                    answer.status
                );
                for code in ["401", "429", "503"] {
                    if path.starts_with("/orders") {
                        assert!(
                            item[method.as_str().to_lowercase()]["responses"][code].is_object(),
                            "{method} {path} does not document {code}"
                        );
                    }
                }
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not documented but is served"
                );
            }
        }
    }
    assert_eq!(operations, 6, "5 order routes and the document");
    service.stop().await;
}

/// `order-producer serve` on `listen` with a database that cannot be reached (so it
/// stops at start-up) and no metrics port, tokens from neither the environment nor a
/// file unless the caller sets them.
fn serve_without_database(listen: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_order-producer"));
    command
        .args(["serve", "--listen", listen])
        .args(["--database-url", "postgres://nobody@127.0.0.1:1/none"])
        .args(["--database-connect-timeout", "1s", "--metrics-addr", ""])
        .env_remove("ORDERFLOW_API_TOKENS")
        .env_remove("ORDER_API_TOKENS_FILE");
    command
}

#[test]
fn serving_beyond_loopback_without_tokens_is_refused_in_one_line() {
    let output = serve_without_database("0.0.0.0:0")
        .env_remove("ORDER_API_ALLOW_UNAUTHENTICATED")
        .output()
        .expect("run order-producer");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--listen 0.0.0.0:0") && stderr.contains("--api-tokens-file"),
        "{stderr}"
    );
}

#[test]
fn start_up_logs_name_the_clients_never_the_tokens() {
    let output = serve_without_database("127.0.0.1:0")
        .arg("--api-tokens-file")
        .arg(token_file())
        .env("ORDERFLOW_API_TOKENS", format!("ci:ci-{ALICE}"))
        .env("LOG_LEVEL", "debug")
        .output()
        .expect("run order-producer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "no database, no service: {stderr}"
    );
    assert!(stderr.contains("clients=alice,bob,ci"), "{stderr}");
    for token in [ALICE, BOB] {
        assert!(!stderr.contains(token), "a token reached the log: {stderr}");
    }
}

#[test]
fn example_weak_and_unnamed_tokens_are_refused_at_start_up_in_one_line() {
    for (tokens, complaint) in [
        // .env.example's placeholder (runtime's EXAMPLE_SECRETS).
        ("dev:change-me-order-api-token", ".env.example"),
        // 20 hex digits: 80 bits.
        ("dev:0123456789abcdef0123", "128 bits"),
        // One character over and over.
        (
            "dev:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "128 bits",
        ),
        // The old form without a client name.
        ("3f9c1a7be2d84c05a61e9b7d2c4f8e10", "name:token"),
    ] {
        let output = serve_without_database("127.0.0.1:0")
            .env("ORDERFLOW_API_TOKENS", tokens)
            .output()
            .expect("run order-producer");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{tokens}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{tokens}: {stderr}");
        assert!(stderr.contains(complaint), "{tokens}: {stderr}");
        let secret = tokens.rsplit(':').next().unwrap();
        assert!(!stderr.contains(secret), "the token was echoed: {stderr}");
    }
}
