//! The order service's HTTP layer: the API's handlers, the requests they accept and the
//! answers they give, admission and load limits, and the OpenAPI document. It calls the
//! [`store`](super::store); the store never calls it.

pub(crate) mod admission;
pub(crate) mod answers;
pub mod api_error;
pub(crate) mod api_tokens;
pub(crate) mod client_rate_limit;
pub(crate) mod load_limits;
pub mod openapi;
pub(crate) mod order_api;
pub(crate) mod request_span;
pub mod requests;
pub(crate) mod router;
pub mod security_headers;
pub(crate) mod token_strength;
