//! Against the real schema registry (`SCHEMA_REGISTRY_URL`): an id the registry does not
//! know (yet: a follower that has not caught up, a registry restored from an older backup)
//! is retried for the deserializer's grace period before it is poison, and the error says
//! how retrying can help.

use std::time::Duration;

use orderflow_schemas::{DecodeError, OrderEventDeserializer, RegistryClient, RetryAdvice, wire};
use orderflow_testkit as testkit;

fn client() -> RegistryClient {
    RegistryClient::new(testkit::registry_url()).expect("SCHEMA_REGISTRY_URL is a usable URL")
}

#[tokio::test]
async fn an_unknown_id_within_the_grace_period_is_transient() {
    let deserializer =
        OrderEventDeserializer::new(client()).with_not_found_grace(Duration::from_secs(3600));
    let frame = wire::encode_frame(1_999_999_941, &[0]);
    for _ in 0..2 {
        let error = deserializer.deserialize(&frame).await.unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert_eq!(error.retry_advice(), RetryAdvice::UntilItAnswers, "{error}");
        assert!(error.to_string().contains("1999999941"), "{error}");
    }
}

#[tokio::test]
async fn past_the_grace_period_an_unknown_id_is_poison() {
    let deserializer = OrderEventDeserializer::new(client()).with_not_found_grace(Duration::ZERO);
    let error = deserializer
        .deserialize(&wire::encode_frame(1_999_999_943, &[0]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DecodeError::UnknownSchemaId(1_999_999_943)),
        "{error}"
    );
    assert_eq!(error.retry_advice(), RetryAdvice::Never);
}

#[tokio::test]
async fn refused_credentials_are_retried_within_a_budget_not_forever() {
    // The test registry has no auth and cannot be made to answer 401: the refusal is
    // built as the client builds it from one (registry_tls.rs drives a real 401).
    let refused = DecodeError::RegistryUnavailable {
        schema_id: 7,
        source: orderflow_schemas::RegistryError::Unauthorized {
            url: testkit::registry_url(),
            what: "schema id 7".into(),
            status: 401,
            message: String::new(),
        },
    };
    assert_eq!(refused.retry_advice(), RetryAdvice::WithinBudget);
}
