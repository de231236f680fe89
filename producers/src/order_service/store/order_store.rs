//! The `orders` table and its state machine. Every change writes the order row and its
//! event's outbox row in one transaction: either both commit or neither does.
//!
//! Lifecycle: `created -> paid -> shipped`, and `created | paid -> cancelled`.
//!
//! Every order belongs to the client that placed it (`client_id`). Reads and changes name
//! the client, and an order of another client is [`StoreError::NotFound`], exactly as an
//! id nobody has: a client cannot even learn that another's order exists.

use chrono::{DateTime, Utc};
use orderflow_schemas::{
    OrderCreated, OrderEvent, OrderEventSerializer, OrderPayload, OrderStatus, ValidationError,
};
use serde::Serialize;
use sqlx::PgPool;
use thiserror::Error;
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use uuid::Uuid;

use crate::generator::generate::EVENT_TYPE_HEADER;
use crate::order_service::store::idempotency::{
    self, Claim, ClaimError, IdempotentRequest, StoredResponse,
};
use crate::trace_context::{TRACEPARENT_HEADER, TRACESTATE_HEADER};
use orderflow_outbox::{NewOutboxRow, queries as outbox};
use orderflow_runtime::telemetry::StoredTraceContext;
use tracing::Instrument;

const INSERT_ORDER: &str = include_str!("../../../sql/insert_order.sql");
const SELECT_ORDER: &str = include_str!("../../../sql/select_order.sql");
const SELECT_ORDER_FOR_UPDATE: &str = include_str!("../../../sql/select_order_for_update.sql");
const UPDATE_ORDER_STATUS: &str = include_str!("../../../sql/update_order_status.sql");

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Order {
    /// The order's id, also the Kafka key of its events.
    pub order_id: String,
    /// Lifecycle state.
    #[schema(schema_with = order_status_schema)]
    pub status: OrderStatus,
    /// The customer.
    pub customer_id: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Total in minor units.
    pub total_cents: i64,
    /// When the order was placed.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The schema of an order's `status`.
pub(crate) fn order_status_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["created", "paid", "shipped", "cancelled"]))
        .description(Some("Where the order is in its lifecycle"))
}

type OrderTuple = (
    String,
    String,
    String,
    String,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn order_from(row: OrderTuple) -> sqlx::Result<Order> {
    let (order_id, status, customer_id, currency, total_cents, created_at, updated_at) = row;
    Ok(Order {
        order_id,
        status: OrderStatus::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown order status {status:?}").into())
        })?,
        customer_id,
        currency,
        total_cents,
        created_at,
        updated_at,
    })
}

/// What a change's checks decided, inside its transaction.
enum Step {
    /// Write the change: its event goes to the outbox, its answer under the key.
    Write(Written),
    /// Answer without writing (an earlier answer replayed).
    Answered(Outcome),
}

/// Claims the context's idempotency key in `tx`; `Some` is the earlier answer to replay.
async fn claim(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    context: WriteContext<'_>,
) -> Result<Option<Outcome>, StoreError> {
    let Some(request) = context.idempotency else {
        return Ok(None);
    };
    match idempotency::claim(tx, request).await {
        Ok(Claim::Run) => Ok(None),
        Ok(Claim::Replay(stored)) => Ok(Some(Outcome::Replayed(stored))),
        Err(ClaimError::InProgress) => Err(StoreError::IdempotencyKeyInProgress),
        Err(ClaimError::Reused) => Err(StoreError::IdempotencyKeyReused),
        Err(ClaimError::Database(error)) => Err(StoreError::Database(error)),
    }
}

/// Why a change was refused.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No order with this id.
    #[error("order {0:?} not found")]
    NotFound(String),
    /// The change is not allowed from the order's current status.
    #[error("cannot {action} order {order_id:?}: it is {status}, and {action} needs {needs}")]
    TransitionNotAllowed {
        /// The order.
        order_id: String,
        /// `pay`, `ship` or `cancel`.
        action: &'static str,
        /// Its current status.
        status: &'static str,
        /// The statuses the action is allowed from.
        needs: &'static str,
    },
    /// A payment whose amount differs from the order total.
    #[error("amount_cents {amount_cents} does not match the order total {total_cents}")]
    AmountMismatch {
        /// The amount paid.
        amount_cents: i64,
        /// The order total.
        total_cents: i64,
    },
    /// Another request with the same idempotency key is still running.
    #[error("a request with this Idempotency-Key is still in progress; retry later")]
    IdempotencyKeyInProgress,
    /// The idempotency key was used with a different request.
    #[error(
        "this Idempotency-Key was already used with a different request (method, path or body)"
    )]
    IdempotencyKeyReused,
    /// The event's record would exceed the size Kafka accepts.
    #[error(
        "the order's event would be a {record_bytes}-byte Kafka record, above the limit of {limit} bytes (the producer's message.max.bytes or the topic's max.message.bytes)"
    )]
    EventTooLarge {
        /// The record's estimated size.
        record_bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The event breaks a business rule (see `OrderEvent::validate`).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The database failed; retrying may help.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A change written: the order row and its event's outbox row. Serialised, it is the
/// body of the API's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Written {
    /// The order.
    pub order_id: String,
    /// The event written to the outbox (and, soon after, to the topic).
    pub event_id: Uuid,
    /// The order's status after the change.
    #[schema(schema_with = order_status_schema)]
    pub status: OrderStatus,
}

/// The answer to a write: the change made now, or the stored answer of an earlier
/// request with the same idempotency key (nothing changed this time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The change was written.
    Written(Written),
    /// The earlier request's answer, replayed.
    Replayed(StoredResponse),
}

/// How a write is made: for which client, its trace, and the idempotency key whose
/// answer is stored in the write's transaction.
#[derive(Debug, Clone, Copy)]
pub struct WriteContext<'a> {
    /// The client the write acts for: a new order belongs to it, and only its own
    /// orders can be changed.
    pub client: &'a str,
    /// W3C `traceparent` of the event.
    pub traceparent: &'a str,
    /// The request's idempotency key, if it sent one.
    pub idempotency: Option<&'a IdempotentRequest>,
    /// The HTTP status the answer is stored with (201 for a new order, 200 otherwise).
    pub success_status: u16,
}

/// Room left in a record's size budget for Kafka's framing: the record batch header
/// (61 bytes), the record's own varints and attributes, and the headers' length fields.
pub const RECORD_OVERHEAD_BYTES: usize = 256;

/// An event checked and encoded as its record value (Confluent-framed Avro).
struct Encoded {
    event: OrderEvent,
    payload: Vec<u8>,
}

/// Writes orders and their outbox rows; events are encoded with `serializer` at write time.
#[derive(Debug, Clone)]
pub struct OrderStore {
    pool: PgPool,
    serializer: OrderEventSerializer,
    producer_name: String,
    max_record_bytes: usize,
}

impl OrderStore {
    /// A store on `pool` encoding events with `serializer`, `producer` = `producer_name`,
    /// refusing events whose record would exceed `max_record_bytes` (the smaller of the
    /// producer's `message.max.bytes` and the topic's `max.message.bytes`).
    pub fn new(
        pool: PgPool,
        serializer: OrderEventSerializer,
        producer_name: &str,
        max_record_bytes: usize,
    ) -> Self {
        Self {
            pool,
            serializer,
            producer_name: producer_name.to_string(),
            max_record_bytes,
        }
    }

    /// Inserts a new order (status `created`) with its `OrderCreated` event, after
    /// checking the event's business rules.
    pub async fn create(
        &self,
        order_id: &str,
        created: OrderCreated,
        context: WriteContext<'_>,
    ) -> Result<Outcome, StoreError> {
        let (customer_id, currency, total_cents) = (
            created.customer_id.clone(),
            created.currency.clone(),
            created.total_cents,
        );
        let encoded = self.event(
            order_id,
            OrderPayload::Created(created),
            context.traceparent,
        )?;
        async {
            let mut tx = self.pool.begin().await?;
            let step = async {
                if let Some(replayed) = claim(&mut tx, context).await? {
                    return Ok(Step::Answered(replayed));
                }
                sqlx::query(INSERT_ORDER)
                    .bind(order_id)
                    .bind(customer_id)
                    .bind(currency)
                    .bind(total_cents)
                    .bind(context.client)
                    .execute(&mut *tx)
                    .await?;
                Ok(Step::Write(Written {
                    order_id: order_id.to_string(),
                    event_id: encoded.event.event_id,
                    status: OrderStatus::Created,
                }))
            }
            .await;
            self.end(tx, &encoded, step, context).await
        }
        .instrument(transaction_span())
        .await
    }

    /// Applies a pay, ship or cancel `payload` to the order, if its status allows it.
    pub async fn transition(
        &self,
        order_id: &str,
        payload: OrderPayload,
        context: WriteContext<'_>,
    ) -> Result<Outcome, StoreError> {
        let encoded = self.event(order_id, payload, context.traceparent)?;
        let payload = &encoded.event.payload;
        async {
            let mut tx = self.pool.begin().await?;
            let step = self
                .transition_in(&mut tx, order_id, payload, &encoded, context)
                .await;
            self.end(tx, &encoded, step, context).await
        }
        .instrument(transaction_span())
        .await
    }

    /// The checks and the write of [`Self::transition`], inside `tx`.
    async fn transition_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        order_id: &str,
        payload: &OrderPayload,
        encoded: &Encoded,
        context: WriteContext<'_>,
    ) -> Result<Step, StoreError> {
        if let Some(replayed) = claim(tx, context).await? {
            return Ok(Step::Answered(replayed));
        }
        let row: Option<OrderTuple> = sqlx::query_as(SELECT_ORDER_FOR_UPDATE)
            .bind(order_id)
            .bind(context.client)
            .fetch_optional(&mut **tx)
            .await?;
        let order = order_from(row.ok_or_else(|| StoreError::NotFound(order_id.to_string()))?)?;
        let step = payload.lifecycle_step();
        let Some(next) = OrderStatus::after(Some(order.status), step) else {
            return Err(StoreError::TransitionNotAllowed {
                order_id: order_id.to_string(),
                action: step.verb(),
                status: order.status.as_str(),
                needs: step.requires(),
            });
        };
        if let OrderPayload::Paid(paid) = payload
            && paid.amount_cents != order.total_cents
        {
            return Err(StoreError::AmountMismatch {
                amount_cents: paid.amount_cents,
                total_cents: order.total_cents,
            });
        }
        sqlx::query(UPDATE_ORDER_STATUS)
            .bind(order_id)
            .bind(next.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(Step::Write(Written {
            order_id: order_id.to_string(),
            event_id: encoded.event.event_id,
            status: next,
        }))
    }

    /// Ends the transaction of a change. A change to write: appends its event to the
    /// outbox, stores the answer under the idempotency key, and commits (the change, its
    /// event and its stored answer exist together or not at all). Anything else (a
    /// replayed answer, a refusal, an error) rolls back before the answer leaves: a
    /// dropped transaction would roll back only later, keeping the idempotency key's lock,
    /// and a client's immediate retry would be told the key is still in progress.
    async fn end(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        encoded: &Encoded,
        step: Result<Step, StoreError>,
        context: WriteContext<'_>,
    ) -> Result<Outcome, StoreError> {
        let written = match step {
            Ok(Step::Write(written)) => written,
            Ok(Step::Answered(outcome)) => {
                tx.rollback().await?;
                return Ok(outcome);
            }
            Err(error) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::debug!(%rollback, "rollback after a refused change failed; the connection is discarded");
                }
                return Err(error);
            }
        };
        let committed = async {
            self.append(&mut tx, encoded, context.traceparent).await?;
            if let Some(request) = context.idempotency {
                let body = serde_json::to_vec(&written)
                    .map_err(|error| StoreError::Database(sqlx::Error::Encode(Box::new(error))))?;
                let response = StoredResponse {
                    status: context.success_status,
                    body,
                };
                idempotency::store(&mut tx, request, &response).await?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        match committed {
            Ok(()) => {
                tx.commit().await?;
                Ok(Outcome::Written(written))
            }
            Err(error) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::debug!(%rollback, "rollback after a failed write failed; the connection is discarded");
                }
                Err(error)
            }
        }
    }

    /// The order, if it exists and belongs to `client`.
    pub async fn get(&self, client: &str, order_id: &str) -> Result<Order, StoreError> {
        let row: Option<OrderTuple> = sqlx::query_as(SELECT_ORDER)
            .bind(order_id)
            .bind(client)
            .fetch_optional(&self.pool)
            .await?;
        Ok(order_from(row.ok_or_else(|| {
            StoreError::NotFound(order_id.to_string())
        })?)?)
    }

    /// The event of a change, checked against the business rules, and encoded: its
    /// record must fit the broker's and producer's size limit, or it could never leave
    /// the outbox.
    fn event(
        &self,
        order_id: &str,
        payload: OrderPayload,
        traceparent: &str,
    ) -> Result<Encoded, StoreError> {
        let event = OrderEvent::new(order_id, self.producer_name.as_str(), payload);
        event.validate()?;
        let payload = self.serializer.serialize(&event);
        // With spans exported, the row also stores the request's `tracestate` (the
        // insert span inherits it) and the relay writes it as a header: it counts too.
        let tracestate_bytes = StoredTraceContext::current()
            .and_then(|stored| stored.tracestate)
            .map_or(0, |state| TRACESTATE_HEADER.len() + state.len());
        let record_bytes = order_id.len()
            + payload.len()
            + TRACEPARENT_HEADER.len()
            + traceparent.len()
            + tracestate_bytes
            + EVENT_TYPE_HEADER.len()
            + event.event_type().len()
            + RECORD_OVERHEAD_BYTES;
        if record_bytes > self.max_record_bytes {
            return Err(StoreError::EventTooLarge {
                record_bytes,
                limit: self.max_record_bytes,
            });
        }
        Ok(Encoded { event, payload })
    }

    async fn append(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        encoded: &Encoded,
        traceparent: &str,
    ) -> sqlx::Result<()> {
        let event = &encoded.event;
        let span = tracing::info_span!(
            "outbox insert",
            otel.name = "INSERT order_service.outbox",
            otel.kind = "client",
            db.system.name = "postgresql",
            db.operation.name = "INSERT",
            db.collection.name = "order_service.outbox",
            order_id = %event.order_id,
        );
        // The row carries this span's context (when traces are exported): the relay's
        // publish span continues from the insert, in the request's trace. Without export,
        // the request's own traceparent (or a fresh one) travels as before.
        let stored = span.in_scope(StoredTraceContext::current);
        let (traceparent, tracestate) = match &stored {
            Some(stored) => (stored.traceparent.as_str(), stored.tracestate.as_deref()),
            None => (traceparent, None),
        };
        outbox::insert(
            tx,
            &NewOutboxRow {
                order_id: &event.order_id,
                event_id: event.event_id,
                event_type: event.event_type(),
                traceparent,
                tracestate,
                payload: &encoded.payload,
            },
        )
        .instrument(span)
        .await
    }
}

/// The span of a change's database transaction, the request span's child.
fn transaction_span() -> tracing::Span {
    tracing::info_span!(
        "order transaction",
        otel.name = "transaction order_service",
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = "transaction",
    )
}
