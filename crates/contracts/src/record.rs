//! The key and headers of an order event record, as the outbox relay and the load
//! generator write them and the consumer, the DLQ tools and the dashboard read them.

use rdkafka::message::{Header, OwnedHeaders};

/// Header carrying the W3C trace context (`00-<trace id>-<span id>-01`).
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Header carrying the W3C trace state that goes with `traceparent` (only when the
/// trace has one).
pub const TRACESTATE_HEADER: &str = "tracestate";
/// Header carrying the payload's record name (`OrderCreated`, `OrderPaid`, ...).
pub const EVENT_TYPE_HEADER: &str = "event-type";
/// Header carrying the value's media type.
pub const CONTENT_TYPE_HEADER: &str = "content-type";
/// The media type of an order event value (Avro in the Confluent wire format).
pub const CONTENT_TYPE: &str = "application/vnd.orderflow.order-event+avro";

/// The record key of an order's events: its order id as UTF-8, so Java's murmur2
/// partitioner puts every event of an order on the same partition.
pub fn record_key(order_id: &str) -> &[u8] {
    order_id.as_bytes()
}

/// The headers of every order event record: W3C `traceparent` (and `tracestate` when
/// the trace has one), `event-type` and `content-type`.
pub fn record_headers(
    traceparent: &str,
    tracestate: Option<&str>,
    event_type: &str,
) -> OwnedHeaders {
    let headers = OwnedHeaders::new_with_capacity(4).insert(Header {
        key: TRACEPARENT_HEADER,
        value: Some(traceparent),
    });
    let headers = match tracestate {
        Some(state) => headers.insert(Header {
            key: TRACESTATE_HEADER,
            value: Some(state),
        }),
        None => headers,
    };
    headers
        .insert(Header {
            key: EVENT_TYPE_HEADER,
            value: Some(event_type),
        })
        .insert(Header {
            key: CONTENT_TYPE_HEADER,
            value: Some(CONTENT_TYPE),
        })
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;

    #[test]
    fn every_record_carries_the_three_headers_in_order() {
        let headers = record_headers("00-a-b-01", None, "OrderPaid");
        let pairs: Vec<(&str, Option<&[u8]>)> = headers.iter().map(|h| (h.key, h.value)).collect();
        assert_eq!(
            pairs,
            [
                ("traceparent", Some(&b"00-a-b-01"[..])),
                ("event-type", Some(&b"OrderPaid"[..])),
                ("content-type", Some(CONTENT_TYPE.as_bytes())),
            ]
        );
        assert_eq!(record_key("order-1"), b"order-1");
    }
}
