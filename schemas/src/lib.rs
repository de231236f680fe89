//! Order events for orderflow: the Avro schemas (the `.avsc` files under `schemas/avro/` are the
//! source of truth), the Rust types, the Confluent wire-format codec and a schema registry client.
//!
//! Producing:
//! ```no_run
//! # async fn demo() -> Result<(), orderflow_schemas::Error> {
//! use orderflow_schemas::{OrderEvent, OrderEventSerializer, OrderPayload, OrderCancelled, RegistryClient};
//! let client = RegistryClient::new("http://127.0.0.1:8081/apis/ccompat/v7")?;
//! let serializer = OrderEventSerializer::new(&client, "orders").await?;
//! let event = OrderEvent::new("order-1", "demo", OrderPayload::Cancelled(OrderCancelled {
//!     reason: "customer request".into(),
//! }));
//! event.validate()?;
//! let mut buf = Vec::new();
//! serializer.serialize_into(&event, &mut buf);
//! # Ok(()) }
//! ```
//!
//! Consuming: [`OrderEventDeserializer::deserialize`] returns a [`DecodeError`] whose
//! [`DecodeError::is_transient`] says whether to retry (registry down) or dead-letter at once
//! (under [`DecodeError::category`]).

mod avro_binary;
mod avro_schema;
mod avro_value;
mod deserializer;
mod error;
mod error_category;
mod order_event;
mod order_status;
mod reader_check;
mod registry_args;
mod registry_client;
mod registry_settings;
mod resolution;
mod serializer;
mod validation;
pub mod wire;

pub use avro_schema::{
    CURRENT_SCHEMA_JSON, SCHEMA_HISTORY, SCHEMA_V1_JSON, SCHEMA_V2_JSON, current_schema, schema_v1,
    schema_v2, value_subject,
};
pub use deserializer::DEFAULT_NOT_FOUND_GRACE;
pub use deserializer::{OrderEventDeserializer, decode_body};
pub use error::{DecodeError, Error, ErrorCategory, RegistryError, Result, RetryAdvice};
pub use order_event::{
    EVENT_TYPES, LineItem, OrderCancelled, OrderCreated, OrderEvent, OrderPaid, OrderPayload,
    OrderShipped,
};
pub use order_status::{LifecycleStep, OrderStatus};
pub use reader_check::reader_problems;
pub use registry_args::RegistryArgs;
pub use registry_client::{DEFAULT_REGISTRY_URL, RegistryClient};
pub use registry_settings::{DEFAULT_REQUEST_TIMEOUT, RegistryAuth, RegistrySettings};
pub use serializer::{DEFAULT_STARTUP_TIMEOUT, OrderEventSerializer};
pub use validation::ValidationError;
