//! The order projection: the lifecycle rules (created -> paid -> shipped |
//! cancelled) applied in memory, and the SQL that loads and stores order rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use orderflow_schemas::{LifecycleStep, OrderStatus};
use sqlx::{Postgres, Row, Transaction};

/// What an event does to its order, independent of the wire schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The order was placed.
    Created {
        /// Customer who placed it.
        customer_id: String,
        /// ISO currency code.
        currency: String,
        /// Order total in cents.
        total_cents: i64,
        /// Sum of item quantities.
        item_count: i32,
    },
    /// Payment received.
    Paid {
        /// Amount paid in cents; must equal the order total.
        amount_cents: i64,
    },
    /// Handed to the carrier.
    Shipped,
    /// Cancelled by the customer or the shop.
    Cancelled,
}

impl Effect {
    /// The lifecycle step this effect takes.
    pub fn step(&self) -> LifecycleStep {
        match self {
            Effect::Created { .. } => LifecycleStep::Create,
            Effect::Paid { .. } => LifecycleStep::Pay,
            Effect::Shipped => LifecycleStep::Ship,
            Effect::Cancelled => LifecycleStep::Cancel,
        }
    }
}

/// A decoded event as the projection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionEvent {
    /// Unique id of the event (dedup key).
    pub event_id: String,
    /// The order it belongs to.
    pub order_id: String,
    /// When it happened at the source.
    pub occurred_at: DateTime<Utc>,
    /// What it does.
    pub effect: Effect,
}

/// One row of the `orders` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Order id (primary key).
    pub order_id: String,
    /// Lifecycle state.
    pub status: OrderStatus,
    /// Customer id.
    pub customer_id: String,
    /// Currency code.
    pub currency: String,
    /// Order total in cents.
    pub total_cents: i64,
    /// Number of items.
    pub item_count: i32,
    /// Distinct events applied to this order.
    pub events_applied: i32,
    /// Last event applied.
    pub last_event_id: String,
    /// When the last applied event happened.
    pub last_event_at: DateTime<Utc>,
}

/// Applies one event to the current state of its order (`None`: no row yet).
/// An event that makes no sense for the state is a validation error (the
/// message says why), which the engine dead-letters.
pub fn apply(current: Option<&OrderRow>, event: &ProjectionEvent) -> Result<OrderRow, String> {
    let Some(next_status) = OrderStatus::after(current.map(|row| row.status), event.effect.step())
    else {
        return Err(match (current, &event.effect) {
            (Some(row), Effect::Created { .. }) => format!(
                "order {} created twice (already {})",
                row.order_id,
                row.status.as_str()
            ),
            (None, effect) => format!(
                "{} event for order {} that was never created",
                effect_name(effect),
                event.order_id
            ),
            (Some(row), effect) => transition_error(row, effect),
        });
    };
    if let (Effect::Paid { amount_cents }, Some(row)) = (&event.effect, current)
        && *amount_cents != row.total_cents
    {
        return Err(format!(
            "order {} paid {} cents but its total is {} cents",
            row.order_id, amount_cents, row.total_cents
        ));
    }
    Ok(match (current, &event.effect) {
        (
            None,
            Effect::Created {
                customer_id,
                currency,
                total_cents,
                item_count,
            },
        ) => OrderRow {
            order_id: event.order_id.clone(),
            status: next_status,
            customer_id: customer_id.clone(),
            currency: currency.clone(),
            total_cents: *total_cents,
            item_count: *item_count,
            events_applied: 1,
            last_event_id: event.event_id.clone(),
            last_event_at: event.occurred_at,
        },
        (Some(row), _) => OrderRow {
            status: next_status,
            events_applied: row.events_applied + 1,
            last_event_id: event.event_id.clone(),
            last_event_at: event.occurred_at,
            ..row.clone()
        },
        (None, _) => unreachable!("only a created event reaches here without a row"),
    })
}

fn effect_name(effect: &Effect) -> &'static str {
    match effect {
        Effect::Created { .. } => "created",
        Effect::Paid { .. } => "paid",
        Effect::Shipped => "shipped",
        Effect::Cancelled => "cancelled",
    }
}

fn transition_error(row: &OrderRow, effect: &Effect) -> String {
    format!(
        "{} event not allowed for order {} in state {}",
        effect_name(effect),
        row.order_id,
        row.status.as_str()
    )
}

/// Loads and row-locks the given orders (sorted, to avoid lock-order deadlocks).
pub async fn lock_orders(
    tx: &mut Transaction<'_, Postgres>,
    order_ids: &[String],
) -> Result<HashMap<String, OrderRow>, sqlx::Error> {
    let rows = sqlx::query(include_str!("../../sql/lock_orders.sql"))
        .bind(order_ids)
        .fetch_all(&mut **tx)
        .await?;
    let mut orders = HashMap::with_capacity(rows.len());
    for row in rows {
        let status: String = row.try_get("status")?;
        let status = OrderStatus::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown order status {status:?}").into())
        })?;
        let order = OrderRow {
            order_id: row.try_get("order_id")?,
            status,
            customer_id: row.try_get("customer_id")?,
            currency: row.try_get("currency")?,
            total_cents: row.try_get("total_cents")?,
            item_count: row.try_get("item_count")?,
            events_applied: row.try_get("events_applied")?,
            last_event_id: row.try_get("last_event_id")?,
            last_event_at: row.try_get("last_event_at")?,
        };
        orders.insert(order.order_id.clone(), order);
    }
    Ok(orders)
}

/// Writes the changed orders in one statement. `read_applied` is each order's
/// `events_applied` as [`lock_orders`] read it (`None`: there was no row). A row
/// that changed since (a concurrent creation of a new order) is not overwritten;
/// the result is false and the caller must roll back and retry.
pub async fn store_orders(
    tx: &mut Transaction<'_, Postgres>,
    orders: &[&OrderRow],
    read_applied: impl Fn(&str) -> Option<i32>,
) -> Result<bool, sqlx::Error> {
    if orders.is_empty() {
        return Ok(true);
    }
    // Rows have at least one event applied, so 0 never matches an existing row.
    let expected: Vec<i32> = orders
        .iter()
        .map(|o| read_applied(&o.order_id).unwrap_or(0))
        .collect();
    let column = |f: fn(&OrderRow) -> String| orders.iter().map(|o| f(o)).collect::<Vec<_>>();
    let written = sqlx::query(include_str!("../../sql/upsert_orders.sql"))
        .bind(column(|o| o.order_id.clone()))
        .bind(column(|o| o.status.as_str().to_owned()))
        .bind(column(|o| o.customer_id.clone()))
        .bind(column(|o| o.currency.clone()))
        .bind(orders.iter().map(|o| o.total_cents).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.item_count).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.events_applied).collect::<Vec<_>>())
        .bind(column(|o| o.last_event_id.clone()))
        .bind(orders.iter().map(|o| o.last_event_at).collect::<Vec<_>>())
        .bind(expected)
        .execute(&mut **tx)
        .await?;
    Ok(written.rows_affected() == orders.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(effect: Effect) -> ProjectionEvent {
        ProjectionEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            order_id: "o-1".into(),
            occurred_at: Utc::now(),
            effect,
        }
    }

    fn created() -> Effect {
        Effect::Created {
            customer_id: "c-1".into(),
            currency: "EUR".into(),
            total_cents: 1500,
            item_count: 2,
        }
    }

    #[test]
    fn full_lifecycle_counts_events() {
        let row = apply(None, &event(created())).unwrap();
        let row = apply(Some(&row), &event(Effect::Paid { amount_cents: 1500 })).unwrap();
        let row = apply(Some(&row), &event(Effect::Shipped)).unwrap();
        assert_eq!(row.status, OrderStatus::Shipped);
        assert_eq!(row.events_applied, 3);
        assert_eq!(row.total_cents, 1500);
    }

    #[test]
    fn cancel_from_created_or_paid() {
        let row = apply(None, &event(created())).unwrap();
        assert_eq!(
            apply(Some(&row), &event(Effect::Cancelled)).unwrap().status,
            OrderStatus::Cancelled
        );
        let paid = apply(Some(&row), &event(Effect::Paid { amount_cents: 1500 })).unwrap();
        assert_eq!(
            apply(Some(&paid), &event(Effect::Cancelled))
                .unwrap()
                .status,
            OrderStatus::Cancelled
        );
    }

    #[test]
    fn nonsense_transitions_are_validation_errors() {
        let err = apply(None, &event(Effect::Paid { amount_cents: 1 })).unwrap_err();
        assert!(err.contains("never created"), "{err}");
        let row = apply(None, &event(created())).unwrap();
        let err = apply(Some(&row), &event(Effect::Paid { amount_cents: 1499 })).unwrap_err();
        assert!(err.contains("total is 1500"), "{err}");
        let err = apply(Some(&row), &event(Effect::Shipped)).unwrap_err();
        assert!(err.contains("state created"), "{err}");
        let cancelled = apply(Some(&row), &event(Effect::Cancelled)).unwrap();
        let err = apply(Some(&cancelled), &event(Effect::Shipped)).unwrap_err();
        assert!(err.contains("state cancelled"), "{err}");
        assert!(apply(Some(&row), &event(created())).is_err());
    }
}
