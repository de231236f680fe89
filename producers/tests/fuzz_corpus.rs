//! Replays the committed corpus of the `order_request` fuzz target
//! (`fuzz/corpus/order_request/`: the seeds, and every input a fuzzer found to crash)
//! through what the order API's write handlers do before the database: the JSON body
//! parser, the request limits and payload, and the event's business rules.
//!
//! Input layout (see `fuzz/src/order_request.rs`): byte 0 picks the route (`% 4`:
//! create, pay, ship, cancel), the rest is the body. Seeds are named `NN-<event type>`
//! and are requests a client really sends; every other file is bad input.

use order_producer::order_service::http::api_error::{ApiError, parse_json};
use order_producer::order_service::http::requests::{
    CancelRequest, CreateOrderRequest, PayRequest, ShipRequest,
};
use orderflow_schemas::{
    OrderEvent, OrderEventSerializer, OrderPayload, current_schema, decode_body, wire,
};

/// The event the handler would write for `body` on `route`, or its answer.
fn event_of(route: u8, body: &[u8]) -> Result<OrderEvent, ApiError> {
    let payload = match route % 4 {
        0 => parse_json::<CreateOrderRequest>(body)?
            .into_created()
            .map(OrderPayload::Created),
        1 => parse_json::<PayRequest>(body)?.into_payload(),
        2 => parse_json::<ShipRequest>(body)?.into_payload(),
        _ => parse_json::<CancelRequest>(body)?.into_payload(),
    }?;
    let event = OrderEvent::new("ord-corpus", "corpus", payload);
    event.validate()?;
    Ok(event)
}

#[test]
fn seeds_are_accepted_and_bad_bodies_are_client_errors() {
    let corpus = orderflow_testkit::fuzz_corpus("order_request");
    assert!(
        corpus.len() >= 16,
        "the seeds are committed: {}",
        corpus.len()
    );
    let serializer = OrderEventSerializer::from_schema_id(2, "orders-value");
    let mut accepted = 0;
    for (name, data) in &corpus {
        let Some((&route, body)) = data.split_first() else {
            continue;
        };
        let is_seed = name.starts_with(|c: char| c.is_ascii_digit());
        match event_of(route, body) {
            Ok(event) => {
                assert!(is_seed, "{name}: bad input accepted: {event:?}");
                let frame = serializer.serialize(&event);
                let (schema_id, avro) = wire::split_frame(&frame).unwrap();
                let decoded = decode_body(schema_id, current_schema(), avro).unwrap();
                assert_eq!(decoded, event, "{name}: the event survives Avro");
                accepted += 1;
            }
            Err(error) => {
                assert!(!is_seed, "{name}: a real request refused: {error:?}");
                assert!(
                    error.status.is_client_error(),
                    "{name}: bad input answered {}: {error:?}",
                    error.status
                );
                assert!(!error.error.is_empty(), "{name}: no message");
            }
        }
    }
    assert!(accepted >= 16, "real requests are accepted: {accepted}");
}
