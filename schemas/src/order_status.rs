//! The order lifecycle, shared by the order service (which refuses a step the order's
//! status does not allow) and the consumer's projection (which dead-letters such an
//! event): created → paid → shipped, or cancelled from created or paid.

use serde::Serialize;

use crate::OrderPayload;

/// Where an order is in its lifecycle (the `status` column of both `orders` tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Placed, not paid.
    Created,
    /// Paid, not shipped.
    Paid,
    /// Shipped (final).
    Shipped,
    /// Cancelled (final).
    Cancelled,
}

/// What an event does to an order's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStep {
    /// OrderCreated.
    Create,
    /// OrderPaid.
    Pay,
    /// OrderShipped.
    Ship,
    /// OrderCancelled.
    Cancel,
}

impl OrderStatus {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored value; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "created" => OrderStatus::Created,
            "paid" => OrderStatus::Paid,
            "shipped" => OrderStatus::Shipped,
            "cancelled" => OrderStatus::Cancelled,
            _ => return None,
        })
    }

    /// The status after `step` is applied to an order in `current` (`None`: the order
    /// does not exist yet), or `None` when the lifecycle does not allow the step.
    pub fn after(current: Option<OrderStatus>, step: LifecycleStep) -> Option<OrderStatus> {
        use LifecycleStep::*;
        use OrderStatus::*;
        match (current, step) {
            (None, Create) => Some(Created),
            (Some(Created), Pay) => Some(Paid),
            (Some(Paid), Ship) => Some(Shipped),
            (Some(Created | Paid), Cancel) => Some(Cancelled),
            _ => None,
        }
    }
}

impl LifecycleStep {
    /// The verb, for messages ("pay").
    pub fn verb(self) -> &'static str {
        match self {
            LifecycleStep::Create => "create",
            LifecycleStep::Pay => "pay",
            LifecycleStep::Ship => "ship",
            LifecycleStep::Cancel => "cancel",
        }
    }

    /// The statuses the step needs, for messages ("created or paid").
    pub fn requires(self) -> &'static str {
        match self {
            LifecycleStep::Create => "no order",
            LifecycleStep::Pay => "created",
            LifecycleStep::Ship => "paid",
            LifecycleStep::Cancel => "created or paid",
        }
    }
}

impl OrderPayload {
    /// The lifecycle step this payload takes.
    pub fn lifecycle_step(&self) -> LifecycleStep {
        match self {
            OrderPayload::Created(_) => LifecycleStep::Create,
            OrderPayload::Paid(_) => LifecycleStep::Pay,
            OrderPayload::Shipped(_) => LifecycleStep::Ship,
            OrderPayload::Cancelled(_) => LifecycleStep::Cancel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LifecycleStep::*;
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn lifecycle_allows_only_its_steps() {
        let statuses = [
            None,
            Some(Created),
            Some(Paid),
            Some(Shipped),
            Some(Cancelled),
        ];
        let mut allowed = Vec::new();
        for current in statuses {
            for step in [Create, Pay, Ship, Cancel] {
                if let Some(next) = OrderStatus::after(current, step) {
                    allowed.push((current, step, next));
                }
            }
        }
        assert_eq!(
            allowed,
            vec![
                (None, Create, Created),
                (Some(Created), Pay, Paid),
                (Some(Created), Cancel, Cancelled),
                (Some(Paid), Ship, Shipped),
                (Some(Paid), Cancel, Cancelled),
            ]
        );
    }

    #[test]
    fn stored_values_round_trip() {
        for status in [Created, Paid, Shipped, Cancelled] {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("lost"), None);
    }
}
