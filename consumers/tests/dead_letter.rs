//! Every kind of poison record lands in the dead-letter topic, on the same
//! partition with the same key, the original bytes and headers, and every
//! dlq-* header; the others are processed and the offsets move past all of them.
//! A poison record redelivered to a new owner of its partition is not written again;
//! replayed (a new offset), it is.

mod support;

use std::time::Duration;

use order_consumer::dead_letter::headers;
use orderflow_schemas::{OrderEvent, OrderPaid, OrderPayload, wire};
use rdkafka::Message;
use sqlx::{Connection, PgConnection, Row};
use support::{TestEnv, header, lifecycle, wait_until};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_poison_kind_is_dead_lettered_with_every_header() {
    let env = TestEnv::new("dlq-kinds", 3).await;
    let good = lifecycle("good-order", false);
    env.send_lifecycles(std::slice::from_ref(&good)).await;

    let other_schema = env
        .registry
        .register(
            &format!("{}-other-value", env.topic),
            r#"{"type":"string"}"#,
        )
        .await
        .expect("register unrelated schema");
    let mut invalid = lifecycle("invalid-order", false).remove(0);
    if let OrderPayload::Created(created) = &mut invalid.payload {
        created.total_cents += 1; // breaks the items-sum rule
    }
    let paid_first = OrderEvent::new(
        "never-created",
        "consumer-tests",
        OrderPayload::Paid(OrderPaid {
            payment_id: "p".into(),
            amount_cents: 10,
        }),
    );
    let poison: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not-avro", b"this is not avro".to_vec(), "deserialization"),
        ("unknown-id", wire::encode_frame(987_654, b"\x02"), "schema"),
        (
            "mismatch",
            wire::encode_frame(other_schema, b"\x06abc"),
            "schema",
        ),
        (
            "invalid-order",
            env.serializer.serialize(&invalid),
            "validation",
        ),
        (
            "never-created",
            env.serializer.serialize(&paid_first),
            "validation",
        ),
    ];
    let mut sent = Vec::new();
    for (key, value, category) in &poison {
        let (partition, offset) = env.send_raw(key.as_bytes(), value, "OrderCreated").await;
        sent.push((*key, value.clone(), *category, partition, offset));
    }

    let summary = env.run_until_idle(env.settings()).await;
    assert_eq!(summary.processed, 3, "{summary:?}");
    assert_eq!(summary.dead_lettered, 5, "{summary:?}");
    assert_eq!(env.orders().await["good-order"].0, "shipped");
    assert_eq!(
        env.committed_offsets(),
        env.non_empty_end_offsets(),
        "offsets moved past poison"
    );

    let dlq = env.dlq_records(5, Duration::from_secs(20));
    assert_eq!(dlq.len(), 5, "one DLQ record per poison record");
    for (key, value, category, partition, offset) in sent {
        let record = dlq
            .iter()
            .find(|r| r.key() == Some(key.as_bytes()))
            .unwrap_or_else(|| panic!("no DLQ record for {key}"));
        assert_eq!(
            record.payload(),
            Some(value.as_slice()),
            "{key}: original bytes"
        );
        assert_eq!(
            record.partition(),
            partition,
            "{key}: same partition number"
        );
        assert_eq!(
            header(record, "event-type").as_deref(),
            Some("OrderCreated")
        );
        assert!(
            header(record, "traceparent").is_some(),
            "{key}: original headers kept"
        );
        assert_eq!(
            header(record, headers::SOURCE_TOPIC),
            Some(env.topic.clone())
        );
        assert_eq!(
            header(record, headers::SOURCE_PARTITION),
            Some(partition.to_string())
        );
        assert_eq!(
            header(record, headers::SOURCE_OFFSET),
            Some(offset.to_string())
        );
        assert!(
            header(record, headers::SOURCE_TIMESTAMP).is_some_and(|t| t.parse::<i64>().is_ok())
        );
        assert_eq!(
            header(record, headers::CONSUMER_GROUP),
            Some(env.group.clone())
        );
        assert_eq!(
            header(record, headers::ERROR_CATEGORY).as_deref(),
            Some(category),
            "{key}"
        );
        assert!(header(record, headers::ERROR_MESSAGE).is_some_and(|m| !m.is_empty()));
        assert_eq!(header(record, headers::ATTEMPTS).as_deref(), Some("1"));
        for time in [headers::FIRST_FAILURE_AT, headers::LAST_FAILURE_AT] {
            let value = header(record, time).unwrap_or_default();
            assert!(
                chrono::DateTime::parse_from_rfc3339(&value).is_ok(),
                "{key} {time}: {value}"
            );
        }
        assert_eq!(
            header(record, headers::SERVICE_VERSION).as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handler_error_of_unknown_kind_is_retried_then_dead_lettered_without_blocking_others() {
    let env = TestEnv::new("dlq-retries", 2).await;
    // A handler bug stand-in: the database rejects one order with an error that
    // says nothing about whether retrying helps (SQLSTATE P0001).
    sqlx::raw_sql(
        "CREATE FUNCTION reject_cursed() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.order_id = 'cursed' THEN RAISE EXCEPTION 'cursed order'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER reject_cursed BEFORE INSERT OR UPDATE ON orders \
         FOR EACH ROW EXECUTE FUNCTION reject_cursed();",
    )
    .execute(&env.pool)
    .await
    .expect("install trigger");
    let mut lifecycles: Vec<_> = (0..20)
        .map(|i| lifecycle(&format!("fine-{i}"), false))
        .collect();
    lifecycles.push(lifecycle("cursed", false));
    env.send_lifecycles(&lifecycles).await;

    let mut settings = env.settings();
    settings.max_attempts = 3;
    let summary = env.run_until_idle(settings).await;
    assert_eq!(
        summary.processed, 60,
        "other orders are not held back: {summary:?}"
    );
    // created fails 3 times and is dead-lettered; paid and shipped then fail the
    // lifecycle rules (never created) and are dead-lettered as validation.
    assert_eq!(summary.dead_lettered, 3, "{summary:?}");
    assert_eq!(env.committed_offsets(), env.non_empty_end_offsets());

    let dlq = env.dlq_records(3, Duration::from_secs(20));
    let categories: Vec<(String, String)> = dlq
        .iter()
        .map(|r| {
            (
                header(r, headers::ERROR_CATEGORY).unwrap_or_default(),
                header(r, headers::ATTEMPTS).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(dlq.len(), 3, "{categories:?}");
    let exhausted = dlq
        .iter()
        .find(|r| header(r, headers::ERROR_CATEGORY).as_deref() == Some("retries-exhausted"))
        .unwrap_or_else(|| panic!("no retries-exhausted record: {categories:?}"));
    assert_eq!(header(exhausted, headers::ATTEMPTS).as_deref(), Some("3"));
    assert!(
        header(exhausted, headers::ERROR_MESSAGE)
            .unwrap_or_default()
            .contains("cursed order")
    );
    let first = header(exhausted, headers::FIRST_FAILURE_AT).unwrap();
    let last = header(exhausted, headers::LAST_FAILURE_AT).unwrap();
    assert!(
        first < last,
        "several attempts over time: {first} .. {last}"
    );
    assert_eq!(
        exhausted.payload(),
        Some(env.serializer.serialize(&lifecycles[20][0]).as_slice())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyless_record_is_dead_lettered_as_validation() {
    let env = TestEnv::new("dlq-keyless", 1).await;
    // A keyless creation would bypass the per-order gate and race the keyed one.
    let keyed = lifecycle("keyed-order", false);
    let keyless = lifecycle("keyless-order", false).remove(0);
    let value = env.serializer.serialize(&keyless);
    env.producer
        .send(
            rdkafka::producer::FutureRecord::<(), [u8]>::to(&env.topic).payload(&value),
            Duration::from_secs(10),
        )
        .await
        .expect("produce keyless record");
    env.send_lifecycles(std::slice::from_ref(&keyed)).await;

    let summary = env.run_until_idle(env.settings()).await;
    assert_eq!(summary.processed, 3, "{summary:?}");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    let orders = env.orders().await;
    assert!(!orders.contains_key("keyless-order"), "{orders:?}");
    assert_eq!(env.committed_offsets(), env.non_empty_end_offsets());

    let dlq = env.dlq_records(1, Duration::from_secs(20));
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].key(), None);
    assert_eq!(dlq[0].payload(), Some(value.as_slice()));
    assert_eq!(
        header(&dlq[0], headers::ERROR_CATEGORY).as_deref(),
        Some("validation")
    );
    let reason = header(&dlq[0], headers::ERROR_MESSAGE).unwrap_or_default();
    assert!(reason.contains("no key"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letter_write_that_can_never_succeed_stops_the_process_loudly() {
    let env = TestEnv::new("dlq-too-large", 1).await;
    // The DLQ accepts at most 64 bytes: not even the record's position fits once
    // its headers and value are cut. (A DLQ too small for the whole record only
    // cuts it: an_oversized_poison_record_is_dead_lettered_with_its_headers_cut.)
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        support::client_config(&env.brokers)
            .create()
            .expect("admin client");
    let config =
        rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic(&env.dlq_topic))
            .set("max.message.bytes", "64");
    let altered = admin
        .alter_configs(&[config], &rdkafka::admin::AdminOptions::new())
        .await
        .expect("alter DLQ config");
    assert!(altered.iter().all(|r| r.is_ok()), "{altered:?}");
    env.send_raw(b"too-large", &vec![b'x'; 8 * 1024], "OrderCreated")
        .await;

    let worker = env.start_worker("w", &[]);
    let log_path = worker.log_path.clone();
    let (status, _) = worker.wait(Duration::from_secs(60));
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert!(!status.success(), "non-zero exit: {status:?}\n{log}");
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.starts_with("order-consumer: ") && last.contains(&env.dlq_topic),
        "one line saying why: {last:?}\n{log}"
    );
    assert!(
        log.contains("dead-letter write can never succeed"),
        "the decision is logged:\n{log}"
    );
    assert!(
        env.committed_offsets().get(&0).is_none_or(|&o| o == 0),
        "nothing committed past the record"
    );
}

/// Poison records near the 1 MB limit fit their topic but not the dead-letter
/// write once the dlq-* headers are added. Neither may stop the group: one sent by
/// a producer at librdkafka's default limit is dead-lettered whole (the DLQ topic
/// takes what its broker takes); one that fills the topic's limit with a large
/// original header is dead-lettered with its value untouched, the original headers
/// cut and a category saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_poison_record_is_dead_lettered_with_its_headers_cut() {
    let env = TestEnv::new("dlq-oversized", 1).await;
    let near_limit = vec![b'x'; 999_800];
    let (_, near_offset) = env
        .send_raw(b"near-limit", &near_limit, "OrderCreated")
        .await;
    // Kafka's topic limit is 1048588 bytes a batch; a Java producer sends up to
    // 1 MiB. The original header fills the record up to that limit.
    let big_producer: rdkafka::producer::FutureProducer = support::client_config(&env.brokers)
        .set("message.max.bytes", "1048576")
        .create()
        .expect("producer");
    let filled = vec![b'y'; 1_007_000];
    let big_header = "z".repeat(41_300);
    let delivery = big_producer
        .send(
            rdkafka::producer::FutureRecord::to(&env.topic)
                .key(&b"filled"[..])
                .payload(&filled[..])
                .headers(
                    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                        key: "big",
                        value: Some(&big_header),
                    }),
                ),
            Duration::from_secs(10),
        )
        .await
        .expect("a record the topic takes");
    let good = lifecycle("after-oversized", false);
    env.send_lifecycles(std::slice::from_ref(&good)).await;

    let summary = env.run_until_idle(env.settings()).await;
    assert_eq!(summary.dead_lettered, 2, "{summary:?}");
    assert_eq!(summary.processed, 3, "{summary:?}");
    assert_eq!(env.committed_offsets(), env.non_empty_end_offsets());
    let dlq = env.dlq_records(2, Duration::from_secs(20));
    assert_eq!(dlq.len(), 2);
    // The two DLQ records may sit on different partitions: find each by its key.
    let by_key = |key: &[u8]| {
        dlq.iter()
            .find(|r| r.key() == Some(key))
            .unwrap_or_else(|| panic!("a DLQ record with key {:?}", String::from_utf8_lossy(key)))
    };
    let whole = by_key(b"near-limit");
    assert_eq!(whole.payload(), Some(&near_limit[..]), "value untouched");
    assert_eq!(
        header(whole, headers::ERROR_CATEGORY).as_deref(),
        Some("deserialization")
    );
    assert_eq!(
        header(whole, headers::SOURCE_OFFSET),
        Some(near_offset.to_string())
    );
    assert!(
        header(whole, "traceparent").is_some(),
        "original headers kept"
    );

    let cut = by_key(b"filled");
    assert_eq!(cut.payload(), Some(&filled[..]), "value untouched");
    assert_eq!(cut.key(), Some(&b"filled"[..]));
    assert_eq!(
        header(cut, headers::ERROR_CATEGORY).as_deref(),
        Some("oversized")
    );
    assert_eq!(
        header(cut, headers::SOURCE_OFFSET),
        Some(delivery.offset.to_string())
    );
    assert!(
        header(cut, headers::ERROR_MESSAGE).is_some_and(|m| m.starts_with("deserialization")),
        "the message keeps the original category: {:?}",
        header(cut, headers::ERROR_MESSAGE)
    );
    assert_eq!(header(cut, "big"), None, "original headers cut");
}

/// The chaos suite's DLQ duplicates, made deterministic: worker A dead-letters a
/// poison record (offset 1) while a record of another order below it (offset 0)
/// is stuck behind a row lock, so A's commit cannot pass offset 0. A stops; the
/// next owner, B, reads from offset 0 again and meets the poison record a second
/// time. The DLQ must still hold it once, and the stuck event is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_record_redelivered_to_the_next_owner_is_dead_lettered_once() {
    let env = TestEnv::new("dlq-once", 1).await;
    // The order exists; its paid event is the record that gets stuck.
    sqlx::query(
        "INSERT INTO orders (order_id, status, customer_id, currency, total_cents, item_count, \
         events_applied, last_event_id, last_event_at) \
         VALUES ('stuck-order', 'created', 'cust-stuck', 'EUR', 1500, 3, 1, 'seed', now())",
    )
    .execute(&env.pool)
    .await
    .expect("seed the order");
    let paid = lifecycle("stuck-order", false).remove(1);
    env.send_event(&paid).await;
    let (_, poison_offset) = env
        .send_raw(b"poison", b"this is not avro", "OrderCreated")
        .await;
    assert_eq!(
        poison_offset, 1,
        "the poison record sits above the stuck one"
    );

    // Hold the order's row: the engine locks it (FOR UPDATE) before applying.
    let mut blocker = PgConnection::connect(&env.db_url)
        .await
        .expect("blocker connection");
    sqlx::raw_sql("BEGIN; SELECT 1 FROM orders WHERE order_id = 'stuck-order' FOR UPDATE")
        .execute(&mut blocker)
        .await
        .expect("lock the order");

    let first = CancellationToken::new();
    let mut settings = env.settings();
    settings.batch_size = 1; // the two records in separate transactions
    settings.drain_timeout = Duration::from_secs(1);
    settings.exit_when_idle = None;
    let worker_a = env.spawn_engine(settings, first.clone());
    wait_until(
        Duration::from_secs(60),
        "worker A dead-letters the poison record",
        || async { env.dlq_record_count() >= 1 },
    )
    .await;
    wait_until(
        Duration::from_secs(60),
        "worker A's transaction waits for the order's lock",
        || async {
            sqlx::query(
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&env.pool)
            .await
            .expect("pg_stat_activity")
            .get::<i64, _>("n")
                >= 1
        },
    )
    .await;

    // A graceful stop: the drain gives up on offset 0, so nothing is committed past it.
    first.cancel();
    let summary_a = tokio::time::timeout(Duration::from_secs(60), worker_a)
        .await
        .expect("worker A stops")
        .expect("worker A task")
        .expect("worker A run");
    assert_eq!(summary_a.dead_lettered, 1, "{summary_a:?}");
    assert_eq!(summary_a.processed, 0, "{summary_a:?}");
    assert!(
        env.committed_offsets().get(&0).is_none_or(|&o| o == 0),
        "A committed nothing past the stuck record: {:?}",
        env.committed_offsets()
    );

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("release the order");
    let summary_b = env.run_until_idle(env.settings()).await;

    // B has stopped and A before it: the DLQ's end offset is final.
    assert_eq!(
        env.dlq_record_count(),
        1,
        "the poison record is in the DLQ once: {summary_b:?}"
    );
    assert_eq!(summary_b.dead_lettered, 0, "{summary_b:?}");
    assert_eq!(summary_b.dead_letter_skipped, 1, "{summary_b:?}");
    let dlq = env.dlq_records(1, Duration::from_secs(20));
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].key(), Some(&b"poison"[..]));
    assert_eq!(
        header(&dlq[0], headers::SOURCE_OFFSET).as_deref(),
        Some("1")
    );
    let orders = env.orders().await;
    assert_eq!(
        orders["stuck-order"],
        ("paid".to_owned(), 2),
        "applied once"
    );
    assert_eq!(env.processed_count().await, 1);
    assert_eq!(env.committed_offsets(), env.non_empty_end_offsets());
}

/// What `orderflow dlq redrive` does, seen from the consumer: the replayed record
/// has a new offset, so the ledger does not hold it, and a record that still
/// fails is dead-lettered again (where the redrive count stops the loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_poison_record_is_dead_lettered_again() {
    let env = TestEnv::new("dlq-replayed", 1).await;
    env.send_raw(b"poison", b"this is not avro", "OrderCreated")
        .await;
    let first = env.run_until_idle(env.settings()).await;
    assert_eq!(first.dead_lettered, 1, "{first:?}");
    env.send_raw(b"poison", b"this is not avro", "OrderCreated")
        .await;
    let second = env.run_until_idle(env.settings()).await;
    assert_eq!(second.dead_lettered, 1, "{second:?}");
    assert_eq!(second.dead_letter_skipped, 0, "{second:?}");

    assert_eq!(env.dlq_record_count(), 2);
    let dlq = env.dlq_records(2, Duration::from_secs(20));
    let offsets: Vec<Option<String>> = dlq
        .iter()
        .map(|record| header(record, headers::SOURCE_OFFSET))
        .collect();
    assert_eq!(offsets, vec![Some("0".to_owned()), Some("1".to_owned())]);
}
