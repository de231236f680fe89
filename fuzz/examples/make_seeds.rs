//! Writes the seed corpora: real encoded events (v1 and v2 frames of a generated order
//! lifecycle, and the generator's poison records) for `decode_record`, and the request
//! bodies those orders were placed and moved with for `order_request`.
//!
//! `cargo run --example make_seeds -- <corpus dir>` (scripts/fuzz.sh runs it when a
//! target has no corpus yet).

use std::path::{Path, PathBuf};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use order_producer::generator::lifecycle::LifecycleGenerator;
use order_producer::generator::poison::{PoisonKind, poison_record};
use orderflow_fuzz::decode_record::{self, V1_ID, V2_ID};
use orderflow_fuzz::order_request;
use orderflow_schemas::{
    OrderEvent, OrderEventSerializer, OrderPayload, current_schema, schema_v1, wire,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

const SEED: u64 = 0x5eed;
const EVENTS: usize = 16;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let records = root.join("decode_record");
    let requests = root.join("order_request");
    std::fs::create_dir_all(&records)?;
    std::fs::create_dir_all(&requests)?;

    let v2 = OrderEventSerializer::from_schema_id(V2_ID, "orders-value");
    let mut generator = LifecycleGenerator::new(3, SEED, "fuzz-seeds");
    for n in 0..EVENTS {
        let event = generator.next_event();
        let kind = event.event_type();
        let key = Some(event.order_id.as_bytes());
        let frame = v2.serialize(&event);
        write(
            &records,
            &format!("v2-{n:02}-{kind}"),
            &decode_record::input(key, &frame),
        )?;
        if n % 2 == 0 {
            let v1 = v1_frame(&frame);
            write(
                &records,
                &format!("v1-{n:02}-{kind}"),
                &decode_record::input(key, &v1),
            )?;
        }
        let (route, body) = request_body(&event);
        write(
            &requests,
            &format!("{n:02}-{kind}"),
            &order_request::input(route, body.as_bytes()),
        )?;
    }
    let event = generator.next_event();
    let frame = v2.serialize(&event);
    write(&records, "key-missing", &decode_record::input(None, &frame))?;
    write(
        &records,
        "key-not-order-id",
        &decode_record::input(Some(b"ord-other"), &frame),
    )?;
    write(
        &records,
        "empty-value",
        &decode_record::input(Some(b"k"), &[]),
    )?;

    let mut rng = StdRng::seed_from_u64(SEED);
    for (n, kind) in PoisonKind::ALL.iter().enumerate() {
        let n = u64::try_from(n).expect("three kinds");
        let poison = poison_record(n, SEED, "fuzz-seeds", &v2, &mut rng);
        let name = format!("poison-{}", kind.as_str());
        write(
            &records,
            &name,
            &decode_record::input(Some(poison.key.as_bytes()), &poison.value),
        )?;
    }
    Ok(())
}

/// The v2 `frame`'s event as a v1 producer writes it: read with v1 as the reader
/// schema (dropping `sales_channel`), written with v1.
fn v1_frame(frame: &[u8]) -> Vec<u8> {
    let (_, body) = wire::split_frame(frame).expect("a frame");
    let value = GenericDatumReader::builder(current_schema())
        .reader_schema(schema_v1())
        .build()
        .expect("v2 resolves to v1")
        .read_value(&mut &body[..])
        .expect("a v2 body");
    let body = GenericDatumWriter::builder(schema_v1())
        .build()
        .expect("v1 writer")
        .write_value_to_vec(value)
        .expect("a v1 value");
    wire::encode_frame(V1_ID, &body)
}

/// The route and JSON body of the API request that makes `event`.
fn request_body(event: &OrderEvent) -> (usize, String) {
    let (route, body) = match &event.payload {
        OrderPayload::Created(created) => (
            0,
            json!({
                "customer_id": created.customer_id,
                "currency": created.currency,
                "items": created.items.iter().map(|item| json!({
                    "sku": item.sku,
                    "quantity": item.quantity,
                    "unit_price_cents": item.unit_price_cents,
                })).collect::<Vec<_>>(),
            }),
        ),
        OrderPayload::Paid(paid) => (
            1,
            json!({"payment_id": paid.payment_id, "amount_cents": paid.amount_cents}),
        ),
        OrderPayload::Shipped(shipped) => (
            2,
            json!({"carrier": shipped.carrier, "tracking_number": shipped.tracking_number}),
        ),
        OrderPayload::Cancelled(cancelled) => (3, json!({"reason": cancelled.reason})),
    };
    (route, body.to_string())
}

fn write(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(dir.join(name), data)
}
