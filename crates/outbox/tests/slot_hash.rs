//! A row's slot (`migrations/0009`) is Kafka's murmur2 of its order id, made positive,
//! modulo 64: computed by PostgreSQL, it must agree with the Java client's partitioner
//! for every length of key (the hash treats the last 1 to 3 bytes apart) and for
//! non-ASCII ids, or the relays' docs lie about which orders share a slot.

use orderflow_outbox::queries::SLOTS;
use orderflow_outbox::schema;
use orderflow_runtime::partitioner::partition_for_key;
use orderflow_testkit as testkit;

#[tokio::test]
async fn the_slot_is_kafkas_murmur2_partition_of_the_order_id() {
    let (_url, pool) = testkit::fresh_database().await;
    schema::migrator().run(&pool).await.expect("migrations");
    let mut order_ids: Vec<String> = (0..40).map(|n| "x".repeat(n)).collect();
    order_ids.extend((0..200).map(|_| uuid::Uuid::new_v4().to_string()));
    order_ids.extend(["ord-ü", "ordre-é-1", "注文-42", "ord-big"].map(String::from));
    for order_id in &order_ids {
        let slot: Option<i16> = sqlx::query_scalar("SELECT order_service.outbox_slot($1)")
            .bind(order_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        let expected = partition_for_key(order_id.as_bytes(), SLOTS as u32);
        assert_eq!(slot.map(i32::from), Some(expected), "{order_id:?}");
    }
}
