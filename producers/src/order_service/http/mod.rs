//! The order service's HTTP layer: the API's handlers, the requests they accept and the
//! answers they give, admission and load limits, and the OpenAPI document. It calls the
//! [`store`](super::store); the store never calls it.

pub mod admission;
pub mod answers;
pub mod api_error;
pub mod api_tokens;
pub mod client_rate_limit;
pub mod load_limits;
pub mod openapi;
pub mod order_api;
pub mod requests;
pub mod router;
pub mod security_headers;
