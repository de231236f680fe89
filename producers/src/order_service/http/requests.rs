//! The bodies of the order API's write requests and the limits they must keep.
//!
//! Every limit is checked before anything is written, and a breach names the field:
//! text PostgreSQL cannot store (a NUL character) is 400, a value out of bounds is 422.
//! Unknown fields are refused (422), so a misspelt field is never silently dropped.
//! The limits keep any valid order's event far below Kafka's record size; the service
//! still checks each encoded event against it (see `OrderStore`).

use orderflow_schemas::{
    LineItem, OrderCancelled, OrderCreated, OrderPaid, OrderPayload, OrderShipped,
};
use serde::Deserialize;
use serde::de::{Deserializer, Error as _, Unexpected};

use crate::order_service::http::api_error::ApiError;

/// Most characters of `customer_id`.
pub const MAX_CUSTOMER_ID_CHARS: usize = 128;
/// Most characters of a line's `sku`.
pub const MAX_SKU_CHARS: usize = 64;
/// Most lines of an order.
pub const MAX_ITEMS: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: i32 = 10_000;
/// Highest unit price, in minor units (10 million in major units).
pub const MAX_UNIT_PRICE_CENTS: i64 = 1_000_000_000;
/// Most characters of `payment_id`, `carrier` and `tracking_number`.
pub const MAX_REFERENCE_CHARS: usize = 128;
/// Most characters of a cancellation `reason`.
pub const MAX_REASON_CHARS: usize = 500;
/// Most characters of an order id in a path; longer ids cannot exist.
pub const MAX_ORDER_ID_CHARS: usize = 128;

/// Body of `POST /orders`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// The customer placing the order; 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub customer_id: String,
    /// ISO 4217 currency code (three capital letters).
    #[schema(min_length = 3, max_length = 3, pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// The lines; 1 to 100.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineItemRequest>,
}

/// One line of [`CreateOrderRequest`].
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineItemRequest {
    /// The product; 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub sku: String,
    /// Units; 1 to 10 000.
    #[schema(minimum = 1, maximum = 10_000)]
    #[serde(deserialize_with = "whole_number")]
    pub quantity: i32,
    /// Price of one unit in minor units; 0 to 1 000 000 000.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "whole_number")]
    pub unit_price_cents: i64,
}

/// Body of `POST /orders/{id}/pay`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// The payment provider's id; 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub payment_id: String,
    /// Must equal the order total (422 otherwise).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "whole_number")]
    pub amount_cents: i64,
}

/// Body of `POST /orders/{id}/ship`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    /// The carrier; 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub carrier: String,
    /// The carrier's tracking number; 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub tracking_number: String,
}

/// Body of `POST /orders/{id}/cancel`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why; 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

impl CreateOrderRequest {
    /// Checks the limits (emptiness and the business rules are the event's own checks).
    pub fn check(&self) -> Result<(), ApiError> {
        check_text("customer_id", &self.customer_id, MAX_CUSTOMER_ID_CHARS)?;
        check_text("currency", &self.currency, 3)?;
        if self.items.len() > MAX_ITEMS {
            return Err(ApiError::invalid(
                "items",
                format!(
                    "at most {MAX_ITEMS} items per order (got {})",
                    self.items.len()
                ),
            ));
        }
        for (index, item) in self.items.iter().enumerate() {
            check_text(&format!("items[{index}].sku"), &item.sku, MAX_SKU_CHARS)?;
            if item.quantity > MAX_QUANTITY {
                return Err(ApiError::invalid(
                    format!("items[{index}].quantity"),
                    format!("quantity must be at most {MAX_QUANTITY}"),
                ));
            }
            if item.unit_price_cents > MAX_UNIT_PRICE_CENTS {
                return Err(ApiError::invalid(
                    format!("items[{index}].unit_price_cents"),
                    format!("unit_price_cents must be at most {MAX_UNIT_PRICE_CENTS}"),
                ));
            }
        }
        Ok(())
    }
}

impl CreateOrderRequest {
    /// The order's `OrderCreated` payload, its total computed from the lines, after the
    /// limits (the event's business rules are checked when the event is written).
    pub fn into_created(self) -> Result<OrderCreated, ApiError> {
        self.check()?;
        let mut total_cents: i64 = 0;
        for (index, item) in self.items.iter().enumerate() {
            total_cents = item
                .unit_price_cents
                .checked_mul(i64::from(item.quantity))
                .and_then(|line| total_cents.checked_add(line))
                .ok_or_else(|| {
                    ApiError::invalid(
                        format!("items[{index}]"),
                        "the order total overflows a 64-bit cent amount",
                    )
                })?;
        }
        Ok(OrderCreated {
            customer_id: self.customer_id,
            currency: self.currency,
            items: self
                .items
                .into_iter()
                .map(|item| LineItem {
                    sku: item.sku,
                    quantity: item.quantity,
                    unit_price_cents: item.unit_price_cents,
                })
                .collect(),
            total_cents,
        })
    }
}

/// A request body that changes an order's status (pay, ship, cancel): one handler
/// serves them all, and the body says which event the change writes.
pub(crate) trait TransitionBody {
    /// The event's payload, after the body's limits.
    fn into_payload(self) -> Result<OrderPayload, ApiError>;
}

impl TransitionBody for PayRequest {
    fn into_payload(self) -> Result<OrderPayload, ApiError> {
        PayRequest::into_payload(self)
    }
}

impl TransitionBody for ShipRequest {
    fn into_payload(self) -> Result<OrderPayload, ApiError> {
        ShipRequest::into_payload(self)
    }
}

impl TransitionBody for CancelRequest {
    fn into_payload(self) -> Result<OrderPayload, ApiError> {
        CancelRequest::into_payload(self)
    }
}

impl PayRequest {
    /// Checks the limits.
    pub fn check(&self) -> Result<(), ApiError> {
        check_text("payment_id", &self.payment_id, MAX_REFERENCE_CHARS)
    }

    /// The `OrderPaid` payload, after the limits.
    pub fn into_payload(self) -> Result<OrderPayload, ApiError> {
        self.check()?;
        Ok(OrderPayload::Paid(OrderPaid {
            payment_id: self.payment_id,
            amount_cents: self.amount_cents,
        }))
    }
}

impl ShipRequest {
    /// Checks the limits.
    pub fn check(&self) -> Result<(), ApiError> {
        check_text("carrier", &self.carrier, MAX_REFERENCE_CHARS)?;
        check_text(
            "tracking_number",
            &self.tracking_number,
            MAX_REFERENCE_CHARS,
        )
    }

    /// The `OrderShipped` payload, after the limits.
    pub fn into_payload(self) -> Result<OrderPayload, ApiError> {
        self.check()?;
        Ok(OrderPayload::Shipped(OrderShipped {
            carrier: self.carrier,
            tracking_number: self.tracking_number,
        }))
    }
}

impl CancelRequest {
    /// Checks the limits.
    pub fn check(&self) -> Result<(), ApiError> {
        check_text("reason", &self.reason, MAX_REASON_CHARS)
    }

    /// The `OrderCancelled` payload, after the limits.
    pub fn into_payload(self) -> Result<OrderPayload, ApiError> {
        self.check()?;
        Ok(OrderPayload::Cancelled(OrderCancelled {
            reason: self.reason,
        }))
    }
}

/// An integer field: a JSON integer, or a number with no fractional part (`4045.0`),
/// which JSON Schema's `integer` (the OpenAPI document's type) also counts as one.
fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match (number.as_i64(), number.as_f64()) {
        (Some(whole), _) => Some(whole),
        // i64::MAX as f64 rounds up to 2^63, which is out of range.
        (None, Some(float))
            if float.fract() == 0.0 && float >= -(2f64.powi(63)) && float < 2f64.powi(63) =>
        {
            // In range and whole: the cast is exact.
            Some(float as i64)
        }
        _ => None,
    };
    let expected = &"a whole number in range";
    let Some(whole) = whole else {
        return Err(match number.as_f64() {
            Some(float) => D::Error::invalid_value(Unexpected::Float(float), expected),
            None => D::Error::invalid_value(Unexpected::Other("a number"), expected),
        });
    };
    T::try_from(whole).map_err(|_| D::Error::invalid_value(Unexpected::Signed(whole), expected))
}

/// Whether `order_id` can name a stored order: blank ids (which no event may carry), ids
/// with a NUL or beyond the length limit cannot, and are answered 404 without asking
/// the database.
pub fn is_possible_order_id(order_id: &str) -> bool {
    !order_id.trim().is_empty()
        && !order_id.contains('\0')
        && order_id.chars().count() <= MAX_ORDER_ID_CHARS
}

/// `value` holds no NUL (400: PostgreSQL text cannot store it) and at most `max` characters (422).
fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            format!("{field} must not contain the NUL character (\\u0000)"),
            Some(field.to_string()),
        ));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {max} characters (got {chars})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order_service::http::api_error::parse_json;
    use axum::http::StatusCode;

    #[test]
    fn limits_name_the_field() {
        let cancel = CancelRequest {
            reason: "r".repeat(MAX_REASON_CHARS),
        };
        assert!(cancel.check().is_ok());
        let cancel = CancelRequest {
            reason: "é".repeat(MAX_REASON_CHARS + 1),
        };
        let error = cancel.check().unwrap_err();
        assert_eq!(
            (error.status, error.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
        );
        let ship = ShipRequest {
            carrier: "DHL".into(),
            tracking_number: "T\0".into(),
        };
        let error = ship.check().unwrap_err();
        assert_eq!(
            (error.status, error.field.as_deref()),
            (StatusCode::BAD_REQUEST, Some("tracking_number"))
        );
        assert!(!is_possible_order_id("a\0"));
        assert!(!is_possible_order_id(&"a".repeat(MAX_ORDER_ID_CHARS + 1)));
        assert!(is_possible_order_id("ord-1"));
        // Schemathesis (ST202) asked to cancel order "%0C" (a form feed) and got 422
        // "order_id must not be empty" from the event's rules: no order has that id.
        assert!(!is_possible_order_id("\x0c"));
        assert!(!is_possible_order_id(""));
    }

    /// Schemathesis (ST202) sent `"quantity": 4045.0`: an integer to JSON Schema, refused
    /// (422) by serde's i32. Whole numbers written with a fraction are integers here too.
    #[test]
    fn whole_numbers_with_a_fraction_are_integers() {
        let body = br#"{"customer_id": "0", "currency": "AAA", "items": [
            {"quantity": 434, "unit_price_cents": 47206, "sku": "h"},
            {"quantity": 4045.0, "unit_price_cents": 1000000000.0, "sku": "x"}]}"#;
        let created = parse_json::<CreateOrderRequest>(body)
            .unwrap()
            .into_created()
            .unwrap();
        assert_eq!(created.items[1].quantity, 4045);
        assert_eq!(created.items[1].unit_price_cents, 1_000_000_000);
        assert_eq!(created.total_cents, 434 * 47206 + 4_045_000_000_000);
        let pay = parse_json::<PayRequest>(br#"{"payment_id": "p", "amount_cents": 2.0}"#).unwrap();
        assert_eq!(pay.amount_cents, 2);
        for (body, field) in [
            (
                &br#"{"payment_id": "p", "amount_cents": 2.5}"#[..],
                "amount_cents",
            ),
            (
                br#"{"payment_id": "p", "amount_cents": 1e19}"#,
                "amount_cents",
            ),
            (
                br#"{"payment_id": "p", "amount_cents": 18446744073709551615}"#,
                "amount_cents",
            ),
            (
                br#"{"payment_id": "p", "amount_cents": "2"}"#,
                "amount_cents",
            ),
        ] {
            let error = parse_json::<PayRequest>(body).unwrap_err();
            assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{error:?}");
            assert_eq!(error.field.as_deref(), Some(field), "{error:?}");
        }
        let body = br#"{"sku": "s", "quantity": 3000000000, "unit_price_cents": 1}"#;
        let error = parse_json::<LineItemRequest>(body).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("quantity"), "{error:?}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let error =
            parse_json::<PayRequest>(br#"{"payment_id": "p", "amount_cents": 1, "tip": 2}"#)
                .unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.field.as_deref(), Some("tip"), "{error:?}");
    }
}
