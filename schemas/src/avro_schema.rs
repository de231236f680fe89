//! The Avro schemas of [`crate::OrderEvent`], embedded from `schemas/avro/*.avsc` and parsed once.

use std::sync::OnceLock;

use apache_avro::Schema;

/// Version 1 of the `OrderEvent` schema, as registered (text of `avro/order_event.v1.avsc`).
pub const SCHEMA_V1_JSON: &str = include_str!("../avro/order_event.v1.avsc");

/// Version 2 of the `OrderEvent` schema: v1 plus the optional `sales_channel` (default null).
pub const SCHEMA_V2_JSON: &str = include_str!("../avro/order_event.v2.avsc");

/// The schema producers write with and consumers read with (v2).
pub const CURRENT_SCHEMA_JSON: &str = SCHEMA_V2_JSON;

/// Every version in registration order, oldest first: seeding a subject with these in turn
/// proves each step is BACKWARD compatible.
pub const SCHEMA_HISTORY: [&str; 2] = [SCHEMA_V1_JSON, SCHEMA_V2_JSON];

/// The parsed v1 schema.
pub fn schema_v1() -> &'static Schema {
    static PARSED: OnceLock<Schema> = OnceLock::new();
    PARSED.get_or_init(|| parse_embedded(SCHEMA_V1_JSON, "order_event.v1.avsc"))
}

/// The parsed v2 schema.
pub fn schema_v2() -> &'static Schema {
    static PARSED: OnceLock<Schema> = OnceLock::new();
    PARSED.get_or_init(|| parse_embedded(SCHEMA_V2_JSON, "order_event.v2.avsc"))
}

/// The parsed current schema ([`CURRENT_SCHEMA_JSON`]), the writer and reader schema of this build.
pub fn current_schema() -> &'static Schema {
    schema_v2()
}

/// The registry subject of a topic's values (Confluent's TopicNameStrategy): `<topic>-value`.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

fn parse_embedded(json: &str, file: &str) -> Schema {
    // The files are compiled in and covered by unit tests: a parse failure is a build defect.
    Schema::parse_str(json).unwrap_or_else(|e| panic!("embedded schema {file} does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::schema_compatibility::SchemaCompatibility;

    #[test]
    fn embedded_schemas_parse_and_name_the_envelope() {
        for schema in [schema_v1(), schema_v2()] {
            let Schema::Record(record) = schema else {
                panic!("envelope is not a record: {schema:?}");
            };
            assert_eq!(record.name.fullname(None), "io.orderflow.orders.OrderEvent");
        }
        assert!(std::ptr::eq(current_schema(), schema_v2()));
    }

    #[test]
    fn v2_is_backward_and_forward_compatible_with_v1() {
        // BACKWARD: a v2 reader reads v1 data; FORWARD: a v1 reader reads v2 data.
        SchemaCompatibility::can_read(schema_v1(), schema_v2()).expect("v2 reads v1");
        SchemaCompatibility::can_read(schema_v2(), schema_v1()).expect("v1 reads v2");
    }

    #[test]
    fn subject_follows_topic_name_strategy() {
        assert_eq!(value_subject("orders"), "orders-value");
    }
}
