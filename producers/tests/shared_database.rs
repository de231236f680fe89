//! One PostgreSQL database can host the order service and the order consumer: each keeps
//! its own migration history and its own tables, so neither refuses the other's.

use orderflow_outbox::schema as migrations;
use orderflow_testkit as testkit;

/// The consumer's migrations exactly as `order-consumer` embeds them (sqlx's defaults).
static CONSUMER_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../consumers/migrations");

#[tokio::test]
async fn producer_and_consumer_migrations_share_one_database_in_either_order() {
    for producer_first in [true, false] {
        let (_url, pool) = testkit::fresh_database().await;
        let producer = migrations::migrator();
        if producer_first {
            producer.run(&pool).await.expect("producer migrations");
            CONSUMER_MIGRATOR
                .run(&pool)
                .await
                .expect("consumer migrations after the producer's");
        } else {
            CONSUMER_MIGRATOR
                .run(&pool)
                .await
                .expect("consumer migrations");
            producer
                .run(&pool)
                .await
                .expect("producer migrations after the consumer's");
        }
        // A restart of either service finds its history intact.
        producer
            .run(&pool)
            .await
            .expect("producer migrations again");
        CONSUMER_MIGRATOR
            .run(&pool)
            .await
            .expect("consumer migrations again");

        // Both `orders` tables exist, each with its own columns.
        sqlx::query(
            "INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
             VALUES ('o-1', 'created', 'c-1', 'EUR', 100)",
        )
        .execute(&pool)
        .await
        .expect("the order service's orders table");
        sqlx::query(
            "INSERT INTO order_service.outbox (order_id, event_id, event_type, traceparent, payload)
             VALUES ('o-1', gen_random_uuid(), 'OrderCreated', '', '\\x00')",
        )
        .execute(&pool)
        .await
        .expect("the order service's outbox table");
        sqlx::query(
            "INSERT INTO orders (order_id, status, customer_id, currency, total_cents, item_count,
                                 events_applied, last_event_id, last_event_at)
             VALUES ('o-1', 'created', 'c-1', 'EUR', 100, 1, 1, 'e-1', now())",
        )
        .execute(&pool)
        .await
        .expect("the consumer's orders projection");
    }
}
