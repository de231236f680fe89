//! Target `order_request`: one request body through what the order API's write handlers
//! do before touching the database: JSON parsing (`parse_json`, as the `JsonBody`
//! extractor), the request limits and payload (`into_created` / `into_payload`), and the
//! event's business rules (`OrderEvent::validate`, as `OrderStore` checks them).
//!
//! Input layout: byte 0 picks the route (`% 4`: create, pay, ship, cancel), the rest is
//! the body. An accepted body's event must survive the producer's Avro encoding and the
//! consumer's decoding unchanged.

use order_producer::order_service::http::api_error::{ApiError, parse_json};
use order_producer::order_service::http::requests::{
    CancelRequest, CreateOrderRequest, PayRequest, ShipRequest,
};
use orderflow_schemas::{
    OrderEvent, OrderEventSerializer, OrderPayload, current_schema, decode_body, wire,
};

/// The write routes, in the order of the selector byte.
pub const ROUTES: [&str; 4] = ["create", "pay", "ship", "cancel"];

/// Builds an input for `route` (an index into [`ROUTES`]) and `body`.
pub fn input(route: usize, body: &[u8]) -> Vec<u8> {
    let selector = u8::try_from(route % ROUTES.len()).expect("four routes");
    let mut data = vec![selector];
    data.extend_from_slice(body);
    data
}

/// The payload a write route makes of `body`, or the API error it answers.
pub fn payload_of(route: usize, body: &[u8]) -> Result<OrderPayload, ApiError> {
    match route % ROUTES.len() {
        0 => parse_json::<CreateOrderRequest>(body)?
            .into_created()
            .map(OrderPayload::Created),
        1 => parse_json::<PayRequest>(body)?.into_payload(),
        2 => parse_json::<ShipRequest>(body)?.into_payload(),
        _ => parse_json::<CancelRequest>(body)?.into_payload(),
    }
}

fn assert_client_error(error: &ApiError) {
    assert!(
        error.status.is_client_error(),
        "bad input answered {}: {error:?}",
        error.status
    );
    assert!(!error.error.is_empty(), "an error without a message");
}

/// Runs one input. Panics (a finding) when bad input is not a 4xx with a message, or an
/// accepted order's event does not decode back to itself.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let payload = match payload_of(usize::from(selector), body) {
        Ok(payload) => payload,
        Err(error) => return assert_client_error(&error),
    };
    let event = OrderEvent::new("ord-fuzz", "fuzz", payload);
    if let Err(invalid) = event.validate() {
        return assert_client_error(&ApiError::from(invalid));
    }
    let frame = OrderEventSerializer::from_schema_id(2, "orders-value").serialize(&event);
    let (schema_id, avro) = wire::split_frame(&frame).expect("the serializer frames");
    let decoded = decode_body(schema_id, current_schema(), avro).expect("accepted events decode");
    assert_eq!(decoded, event, "an accepted event survives Avro unchanged");
}
