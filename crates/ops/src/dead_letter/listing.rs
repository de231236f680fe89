//! How `dlq list` shows one record: a text line for people, a JSON object for scripts.

use serde_json::{Map, Value, json};

use super::record::DlqRecord;
use super::redrive_plan::{is_bookkeeping, redrive_count};
use orderflow_contracts::dead_letter::headers;

/// Longest error message shown on a text line, in characters.
pub const MESSAGE_WIDTH: usize = 80;

/// `text` cut to `width` characters, with `…` when something was cut.
pub fn truncate(text: &str, width: usize) -> String {
    let flat = text.replace(['\n', '\r'], " ");
    match flat.char_indices().nth(width) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// One line: DLQ position, source position, category, attempts, redrives, error.
pub fn render_line(record: &DlqRecord) -> String {
    let redrives = match redrive_count(record) {
        Ok(count) => count.to_string(),
        Err(raw) => format!("{raw:?}"),
    };
    format!(
        "dlq[{partition}]@{offset}\tsource={topic}[{source_partition}]@{source_offset}\t\
         category={category}\tattempts={attempts}\tredrives={redrives}\terror={message}",
        partition = record.partition,
        offset = record.offset,
        topic = or_dash(record.source_topic()),
        source_partition = or_dash(record.source_partition()),
        source_offset = or_dash(record.source_offset()),
        category = or_dash(record.category()),
        attempts = or_dash(record.attempts()),
        message = truncate(&record.error_message().unwrap_or_default(), MESSAGE_WIDTH),
    )
}

/// One JSON object with every DLQ header decoded, the original headers (as lossy
/// UTF-8, null for null values) and the value size; the full error message.
pub fn record_json(record: &DlqRecord) -> Value {
    let original: Map<String, Value> = record
        .headers
        .iter()
        .filter(|header| !is_bookkeeping(&header.key))
        .map(|header| {
            let value = header.value.as_deref().map_or(Value::Null, |v| {
                Value::String(String::from_utf8_lossy(v).into_owned())
            });
            (header.key.clone(), value)
        })
        .collect();
    json!({
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key_text(),
        "value_bytes": record.value.as_ref().map(Vec::len),
        "source_topic": record.source_topic(),
        "source_partition": record.source_partition(),
        "source_offset": record.source_offset(),
        "source_timestamp": record.header(headers::SOURCE_TIMESTAMP),
        "consumer_group": record.header(headers::CONSUMER_GROUP),
        "category": record.category(),
        "error_message": record.error_message(),
        "attempts": record.attempts(),
        "first_failure_at": record.header(headers::FIRST_FAILURE_AT),
        "last_failure_at": record.header(headers::LAST_FAILURE_AT),
        "service_version": record.header(headers::SERVICE_VERSION),
        "redrive_count": redrive_count(record).ok(),
        "headers": original,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::record::RecordHeader;
    use crate::dead_letter::redrive_plan::REDRIVE_COUNT_HEADER;

    fn record() -> DlqRecord {
        DlqRecord {
            partition: 1,
            offset: 5,
            key: Some(b"order-9".to_vec()),
            value: Some(vec![1, 2, 3]),
            headers: vec![
                RecordHeader::text("traceparent", "00-a-b-01"),
                RecordHeader::text(REDRIVE_COUNT_HEADER, "1"),
                RecordHeader::text(headers::SOURCE_TOPIC, "orders"),
                RecordHeader::text(headers::SOURCE_PARTITION, "1"),
                RecordHeader::text(headers::SOURCE_OFFSET, "40"),
                RecordHeader::text(headers::ERROR_CATEGORY, "validation"),
                RecordHeader::text(headers::ERROR_MESSAGE, "x".repeat(100)),
                RecordHeader::text(headers::ATTEMPTS, "1"),
            ],
        }
    }

    #[test]
    fn a_text_line_names_both_positions_and_cuts_the_message() {
        let line = render_line(&record());
        assert!(
            line.starts_with(
                "dlq[1]@5\tsource=orders[1]@40\tcategory=validation\tattempts=1\tredrives=1\t"
            ),
            "{line}"
        );
        assert!(
            line.ends_with(&format!("error={}…", "x".repeat(MESSAGE_WIDTH))),
            "{line}"
        );
        assert_eq!(truncate("é\nb", 5), "é b");
    }

    #[test]
    fn json_carries_decoded_headers_and_only_original_headers_under_headers() {
        let value = record_json(&record());
        assert_eq!(value["source_offset"], 40);
        assert_eq!(value["redrive_count"], 1);
        assert_eq!(value["key"], "order-9");
        assert_eq!(value["value_bytes"], 3);
        assert_eq!(value["headers"], json!({"traceparent": "00-a-b-01"}));
    }
}
