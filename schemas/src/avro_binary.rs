//! Direct Avro binary codec for [`OrderEvent`] under the current schema.
//!
//! Encoding writes the datum straight into a caller's buffer: no intermediate `Value`, no
//! per-record maps, no schema walk. Decoding is the strict mirror, used when the writer schema
//! is the current one: apache-avro 0.22 reads a string or union index cut off by the end of the
//! body as null instead of failing, which would let a truncated or mislabelled body through.
//! The unit tests prove both directions agree byte for byte with apache-avro, so a schema change
//! this module does not follow fails the tests.

use chrono::DateTime;
use uuid::Uuid;

use crate::avro_value::{PayloadKind, payload_branches};
use crate::order_event::{
    LineItem, OrderCancelled, OrderCreated, OrderEvent, OrderPaid, OrderPayload, OrderShipped,
};

/// Appends the Avro binary encoding of `event` (current schema) to `buf`.
pub(crate) fn encode_event(event: &OrderEvent, buf: &mut Vec<u8>) {
    // Field order of avro/order_event.v2.avsc.
    let mut uuid_text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    write_str(
        event.event_id.hyphenated().encode_lower(&mut uuid_text),
        buf,
    );
    write_str(&event.order_id, buf);
    write_long(event.occurred_at.timestamp_millis(), buf);
    write_str(&event.producer, buf);
    write_long(i64::from(payload_branches().index_of(&event.payload)), buf);
    match &event.payload {
        OrderPayload::Created(created) => {
            write_str(&created.customer_id, buf);
            write_items(&created.items, buf);
            write_str(&created.currency, buf);
            write_long(created.total_cents, buf);
        }
        OrderPayload::Paid(paid) => {
            write_str(&paid.payment_id, buf);
            write_long(paid.amount_cents, buf);
        }
        OrderPayload::Shipped(shipped) => {
            write_str(&shipped.carrier, buf);
            write_str(&shipped.tracking_number, buf);
        }
        OrderPayload::Cancelled(cancelled) => write_str(&cancelled.reason, buf),
    }
    // ["null", "string"]
    match &event.sales_channel {
        None => write_long(0, buf),
        Some(channel) => {
            write_long(1, buf);
            write_str(channel, buf);
        }
    }
}

fn write_items(items: &[LineItem], buf: &mut Vec<u8>) {
    // One block holding every item, then the empty block that ends the array.
    if !items.is_empty() {
        write_long(items.len() as i64, buf);
        for item in items {
            write_str(&item.sku, buf);
            write_long(i64::from(item.quantity), buf);
            write_long(item.unit_price_cents, buf);
        }
    }
    write_long(0, buf);
}

fn write_str(text: &str, buf: &mut Vec<u8>) {
    write_long(text.len() as i64, buf);
    buf.extend_from_slice(text.as_bytes());
}

/// Zig-zag variable-length encoding (Avro `int` and `long` share it).
fn write_long(n: i64, buf: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Decodes one datum written with the current schema; the whole of `body` must be used. The
/// error says what is wrong and at which byte.
pub(crate) fn decode_event(body: &[u8]) -> Result<OrderEvent, String> {
    let mut input = Input { body, pos: 0 };
    let event = input
        .event()
        .map_err(|e| format!("{e} (at byte {} of {})", input.pos, body.len()))?;
    if input.pos != body.len() {
        return Err(format!(
            "{} trailing bytes after the Avro datum",
            body.len() - input.pos
        ));
    }
    Ok(event)
}

struct Input<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn event(&mut self) -> Result<OrderEvent, String> {
        let event_id = self.string("event_id")?;
        let event_id =
            Uuid::parse_str(&event_id).map_err(|e| format!("event_id {event_id:?}: {e}"))?;
        let order_id = self.string("order_id")?;
        let millis = self.long("occurred_at")?;
        let occurred_at = DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| format!("occurred_at {millis} ms is out of range"))?;
        let producer = self.string("producer")?;
        let branch = self.long("payload branch")?;
        let kind = u32::try_from(branch)
            .ok()
            .and_then(|b| payload_branches().kind_at(b))
            .ok_or_else(|| format!("payload: union branch {branch} is not a known event type"))?;
        let payload = match kind {
            PayloadKind::Created => OrderPayload::Created(OrderCreated {
                customer_id: self.string("customer_id")?,
                items: self.items()?,
                currency: self.string("currency")?,
                total_cents: self.long("total_cents")?,
            }),
            PayloadKind::Paid => OrderPayload::Paid(OrderPaid {
                payment_id: self.string("payment_id")?,
                amount_cents: self.long("amount_cents")?,
            }),
            PayloadKind::Shipped => OrderPayload::Shipped(OrderShipped {
                carrier: self.string("carrier")?,
                tracking_number: self.string("tracking_number")?,
            }),
            PayloadKind::Cancelled => OrderPayload::Cancelled(OrderCancelled {
                reason: self.string("reason")?,
            }),
        };
        let sales_channel = match self.long("sales_channel branch")? {
            0 => None,
            1 => Some(self.string("sales_channel")?),
            other => {
                return Err(format!(
                    "sales_channel: union branch {other} does not exist"
                ));
            }
        };
        Ok(OrderEvent {
            event_id,
            order_id,
            occurred_at,
            producer,
            sales_channel,
            payload,
        })
    }

    fn items(&mut self) -> Result<Vec<LineItem>, String> {
        let mut items = Vec::new();
        loop {
            let count = self.long("items block count")?;
            if count == 0 {
                return Ok(items);
            }
            if count < 0 {
                // A negative count is followed by the block's size in bytes, which we do not need.
                self.long("items block size")?;
            }
            let count = count.unsigned_abs();
            // Each item takes at least 3 bytes: a count beyond that is corrupt, not a reason to allocate.
            if count > (self.body.len() - self.pos) as u64 / 3 {
                return Err(format!(
                    "items: block of {count} items is longer than the body"
                ));
            }
            for _ in 0..count {
                let sku = self.string("sku")?;
                let quantity = self.long("quantity")?;
                let quantity = i32::try_from(quantity)
                    .map_err(|_| format!("quantity {quantity} overflows an Avro int"))?;
                items.push(LineItem {
                    sku,
                    quantity,
                    unit_price_cents: self.long("unit_price_cents")?,
                });
            }
        }
    }

    fn string(&mut self, field: &str) -> Result<String, String> {
        let len = self.long(field)?;
        let len = usize::try_from(len).map_err(|_| format!("{field}: negative length {len}"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.body.len())
            .ok_or_else(|| format!("{field}: {len} bytes announced, body ends first"))?;
        let text = std::str::from_utf8(&self.body[self.pos..end])
            .map_err(|e| format!("{field}: not UTF-8: {e}"))?;
        self.pos = end;
        Ok(text.to_owned())
    }

    /// Zig-zag varint of at most 10 bytes.
    fn long(&mut self, field: &str) -> Result<i64, String> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.body.get(self.pos) else {
                return Err(format!("{field}: body ends inside a number"));
            };
            self.pos += 1;
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(format!("{field}: number longer than 10 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro_schema::current_schema;
    use crate::avro_value::event_to_value;
    use crate::avro_value::tests::sample_events;
    use crate::order_event::{OrderCreated, OrderPayload};
    use apache_avro::writer::datum::GenericDatumWriter;

    fn reference_encoding(event: &OrderEvent) -> Vec<u8> {
        GenericDatumWriter::builder(current_schema())
            .build()
            .unwrap()
            .write_value_to_vec(event_to_value(event))
            .unwrap()
    }

    #[test]
    fn bytes_equal_apache_avro_for_every_payload() {
        let mut events = sample_events();
        let mut empty = events[0].clone();
        empty.payload = OrderPayload::Created(OrderCreated {
            customer_id: String::new(),
            items: vec![],
            currency: "EUR".into(),
            total_cents: i64::MIN,
        });
        empty.producer = "p".repeat(300); // multi-byte length
        events.push(empty);
        for event in events {
            let mut buf = vec![9];
            encode_event(&event, &mut buf);
            assert_eq!(buf[1..], reference_encoding(&event), "{event:?}");
        }
    }

    #[test]
    fn decodes_what_apache_avro_writes() {
        for event in sample_events() {
            assert_eq!(decode_event(&reference_encoding(&event)).unwrap(), event);
        }
    }

    #[test]
    fn decodes_multi_block_and_negative_count_arrays() {
        let event = &sample_events()[0];
        let OrderPayload::Created(created) = &event.payload else {
            unreachable!()
        };
        let mut single = Vec::new();
        encode_event(event, &mut single);
        // Re-encode the items array as two blocks, the second with a negative count and a size.
        let mut items = Vec::new();
        write_items(&created.items, &mut items);
        let start = single
            .windows(items.len())
            .position(|w| w == items)
            .unwrap();
        let mut two_blocks = single[..start].to_vec();
        let (first, second) = created.items.split_at(1);
        let mut second_body = Vec::new();
        for item in second {
            write_str(&item.sku, &mut second_body);
            write_long(i64::from(item.quantity), &mut second_body);
            write_long(item.unit_price_cents, &mut second_body);
        }
        write_items(first, &mut two_blocks);
        two_blocks.pop(); // drop the end-of-array marker of the first block
        write_long(-(second.len() as i64), &mut two_blocks);
        write_long(second_body.len() as i64, &mut two_blocks);
        two_blocks.extend_from_slice(&second_body);
        write_long(0, &mut two_blocks);
        two_blocks.extend_from_slice(&single[start + items.len()..]);
        assert_eq!(decode_event(&two_blocks).unwrap(), *event);
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_refused() {
        for event in sample_events() {
            let mut body = Vec::new();
            encode_event(&event, &mut body);
            for len in 0..body.len() {
                assert!(
                    decode_event(&body[..len]).is_err(),
                    "{} cut to {len} bytes decoded",
                    event.event_type()
                );
            }
            body.push(0);
            assert!(decode_event(&body).unwrap_err().contains("trailing"));
        }
    }

    #[test]
    fn corrupt_fields_are_named() {
        let mut body = Vec::new();
        encode_event(&sample_events()[3], &mut body);
        let mut bad_uuid = body.clone();
        bad_uuid[1] = b'x';
        assert!(decode_event(&bad_uuid).unwrap_err().starts_with("event_id"));
        let mut negative_len = body.clone();
        negative_len[0] = 0x01;
        assert!(
            decode_event(&negative_len)
                .unwrap_err()
                .contains("negative length")
        );
        assert!(
            decode_event(&[0xff; 12])
                .unwrap_err()
                .contains("longer than 10 bytes")
        );
    }

    #[test]
    fn zig_zag_matches_the_spec_examples() {
        for (n, bytes) in [
            (0, &[0x00][..]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
        ] {
            let mut buf = Vec::new();
            write_long(n, &mut buf);
            assert_eq!(buf, bytes, "{n}");
        }
        let mut buf = Vec::new();
        write_long(i64::MIN, &mut buf);
        assert_eq!(
            buf,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }
}
