//! Business rules an [`OrderEvent`] must satisfy that need no state: checked by producers before
//! sending and by consumers after decoding (a breach is dead-lettered as `validation`).

use thiserror::Error;

use crate::error_category::ErrorCategory;
use crate::order_event::{OrderCreated, OrderEvent, OrderPayload};

/// The first business rule an event breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// A required text field is empty (or only whitespace).
    #[error("{field} must not be empty")]
    EmptyField {
        /// Path of the field, e.g. `order_id` or `payload.items[2].sku`.
        field: String,
    },
    /// `event_id` is the nil UUID.
    #[error("event_id must not be the nil UUID")]
    NilEventId,
    /// An `OrderCreated` without line items.
    #[error("an OrderCreated event needs at least one line item")]
    NoLineItems,
    /// A line with a quantity of zero or less.
    #[error("payload.items[{index}] (sku {sku:?}): quantity must be > 0, got {quantity}")]
    NonPositiveQuantity {
        /// Index of the line.
        index: usize,
        /// Its SKU.
        sku: String,
        /// The quantity found.
        quantity: i32,
    },
    /// A line with a negative unit price.
    #[error(
        "payload.items[{index}] (sku {sku:?}): unit_price_cents must be >= 0, got {unit_price_cents}"
    )]
    NegativeUnitPrice {
        /// Index of the line.
        index: usize,
        /// Its SKU.
        sku: String,
        /// The price found.
        unit_price_cents: i64,
    },
    /// `total_cents` differs from the sum over the lines.
    #[error("payload.total_cents is {total_cents} but the line items sum to {items_sum}")]
    TotalMismatch {
        /// The total stated.
        total_cents: i64,
        /// The sum of quantity * unit price.
        items_sum: i64,
    },
    /// The line items sum to more than an i64 holds.
    #[error("the line items of the order overflow a 64-bit cent amount")]
    TotalOverflow,
    /// Currency is not three upper-case ASCII letters.
    #[error("payload.currency must be three upper-case letters (ISO 4217), got {currency:?}")]
    InvalidCurrency {
        /// The currency found.
        currency: String,
    },
    /// A payment of zero or less.
    #[error("payload.amount_cents must be > 0, got {amount_cents}")]
    NonPositiveAmount {
        /// The amount found.
        amount_cents: i64,
    },
}

impl ValidationError {
    /// Always [`ErrorCategory::Validation`]; never transient.
    pub fn category(&self) -> ErrorCategory {
        ErrorCategory::Validation
    }
}

impl OrderEvent {
    /// Checks the business rules that need no state: non-empty ids, quantity > 0, unit price >= 0,
    /// `total_cents` equal to the sum of the lines, a three-letter upper-case currency, payment
    /// amounts > 0, and a non-empty `sales_channel` when one is set.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.event_id.is_nil() {
            return Err(ValidationError::NilEventId);
        }
        require_text("order_id", &self.order_id)?;
        require_text("producer", &self.producer)?;
        if let Some(channel) = &self.sales_channel {
            require_text("sales_channel", channel)?;
        }
        match &self.payload {
            OrderPayload::Created(created) => validate_created(created),
            OrderPayload::Paid(paid) => {
                require_text("payload.payment_id", &paid.payment_id)?;
                if paid.amount_cents <= 0 {
                    return Err(ValidationError::NonPositiveAmount {
                        amount_cents: paid.amount_cents,
                    });
                }
                Ok(())
            }
            OrderPayload::Shipped(shipped) => {
                require_text("payload.carrier", &shipped.carrier)?;
                require_text("payload.tracking_number", &shipped.tracking_number)
            }
            OrderPayload::Cancelled(cancelled) => require_text("payload.reason", &cancelled.reason),
        }
    }
}

fn validate_created(created: &OrderCreated) -> Result<(), ValidationError> {
    require_text("payload.customer_id", &created.customer_id)?;
    let currency = &created.currency;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ValidationError::InvalidCurrency {
            currency: currency.clone(),
        });
    }
    if created.items.is_empty() {
        return Err(ValidationError::NoLineItems);
    }
    let mut items_sum: i64 = 0;
    for (index, item) in created.items.iter().enumerate() {
        if item.sku.trim().is_empty() {
            return Err(ValidationError::EmptyField {
                field: format!("payload.items[{index}].sku"),
            });
        }
        if item.quantity <= 0 {
            return Err(ValidationError::NonPositiveQuantity {
                index,
                sku: item.sku.clone(),
                quantity: item.quantity,
            });
        }
        if item.unit_price_cents < 0 {
            return Err(ValidationError::NegativeUnitPrice {
                index,
                sku: item.sku.clone(),
                unit_price_cents: item.unit_price_cents,
            });
        }
        items_sum = item
            .unit_price_cents
            .checked_mul(i64::from(item.quantity))
            .and_then(|line| items_sum.checked_add(line))
            .ok_or(ValidationError::TotalOverflow)?;
    }
    if items_sum != created.total_cents {
        return Err(ValidationError::TotalMismatch {
            total_cents: created.total_cents,
            items_sum,
        });
    }
    Ok(())
}

fn require_text(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::EmptyField {
            field: field.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order_event::{LineItem, OrderCancelled, OrderPaid, OrderShipped};

    fn created(items: Vec<LineItem>, currency: &str, total_cents: i64) -> OrderEvent {
        let payload = OrderCreated {
            customer_id: "c-1".into(),
            items,
            currency: currency.into(),
            total_cents,
        };
        OrderEvent::new("o-1", "test", OrderPayload::Created(payload))
    }

    fn line(sku: &str, quantity: i32, unit_price_cents: i64) -> LineItem {
        LineItem {
            sku: sku.into(),
            quantity,
            unit_price_cents,
        }
    }

    #[test]
    fn a_consistent_order_is_valid() {
        let event = created(vec![line("a", 2, 150), line("b", 1, 0)], "EUR", 300);
        assert_eq!(event.validate(), Ok(()));
    }

    #[test]
    fn line_item_rules() {
        let zero_qty = created(vec![line("a", 0, 150)], "EUR", 0);
        assert!(matches!(
            zero_qty.validate(),
            Err(ValidationError::NonPositiveQuantity {
                index: 0,
                quantity: 0,
                ..
            })
        ));
        let negative_price = created(vec![line("a", 1, 1), line("b", 1, -5)], "EUR", -4);
        assert!(matches!(
            negative_price.validate(),
            Err(ValidationError::NegativeUnitPrice { index: 1, .. })
        ));
        let no_sku = created(vec![line(" ", 1, 1)], "EUR", 1);
        assert_eq!(
            no_sku.validate(),
            Err(ValidationError::EmptyField {
                field: "payload.items[0].sku".into()
            })
        );
        assert_eq!(
            created(vec![], "EUR", 0).validate(),
            Err(ValidationError::NoLineItems)
        );
    }

    #[test]
    fn total_must_match_the_lines() {
        let event = created(vec![line("a", 3, 100)], "EUR", 299);
        assert_eq!(
            event.validate(),
            Err(ValidationError::TotalMismatch {
                total_cents: 299,
                items_sum: 300
            })
        );
        let huge = created(vec![line("a", i32::MAX, i64::MAX / 2)], "EUR", 0);
        assert_eq!(huge.validate(), Err(ValidationError::TotalOverflow));
    }

    #[test]
    fn currency_is_three_upper_case_letters() {
        for bad in ["eur", "EU", "EURO", "E1R", "ÉUR"] {
            let event = created(vec![line("a", 1, 1)], bad, 1);
            assert_eq!(
                event.validate(),
                Err(ValidationError::InvalidCurrency {
                    currency: bad.into()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_and_amounts() {
        let mut event = created(vec![line("a", 1, 1)], "USD", 1);
        event.order_id = String::new();
        assert_eq!(
            event.validate(),
            Err(ValidationError::EmptyField {
                field: "order_id".into()
            })
        );

        let mut event = created(vec![line("a", 1, 1)], "USD", 1);
        event.event_id = uuid::Uuid::nil();
        assert_eq!(event.validate(), Err(ValidationError::NilEventId));

        let mut event = created(vec![line("a", 1, 1)], "USD", 1);
        event.sales_channel = Some(String::new());
        assert_eq!(
            event.validate(),
            Err(ValidationError::EmptyField {
                field: "sales_channel".into()
            })
        );

        let paid = |amount_cents| {
            OrderEvent::new(
                "o",
                "t",
                OrderPayload::Paid(OrderPaid {
                    payment_id: "p".into(),
                    amount_cents,
                }),
            )
        };
        assert_eq!(
            paid(0).validate(),
            Err(ValidationError::NonPositiveAmount { amount_cents: 0 })
        );
        assert_eq!(paid(1).validate(), Ok(()));

        let shipped = OrderPayload::Shipped(OrderShipped {
            carrier: "dhl".into(),
            tracking_number: "".into(),
        });
        assert_eq!(
            OrderEvent::new("o", "t", shipped).validate(),
            Err(ValidationError::EmptyField {
                field: "payload.tracking_number".into()
            })
        );
        let cancelled = OrderPayload::Cancelled(OrderCancelled { reason: "".into() });
        let error = OrderEvent::new("o", "t", cancelled).validate().unwrap_err();
        assert_eq!(error.category(), ErrorCategory::Validation);
    }
}
