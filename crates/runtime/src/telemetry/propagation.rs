//! W3C trace context (`traceparent`, `tracestate`) in and out of the two places a trace
//! crosses a process boundary here: Kafka record headers, and the text stored with an
//! outbox row (the request's context, picked up later by the relay). One propagator, so
//! every hop reads and writes the same format.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rdkafka::message::{Header, Headers, OwnedHeaders};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// A trace context as text, the way it is stored next to an outbox row and written into
/// a record's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTraceContext {
    /// The W3C `traceparent` value (`00-<trace id>-<span id>-<flags>`).
    pub traceparent: String,
    /// The W3C `tracestate` value, when the trace carries vendor state.
    pub tracestate: Option<String>,
}

impl StoredTraceContext {
    /// The context of `cx`'s span, or `None` when it has no valid span (tracing off).
    pub fn capture(cx: &Context) -> Option<Self> {
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let mut fields = HashMap::new();
        TraceContextPropagator::new().inject_context(cx, &mut MapInjector(&mut fields));
        Some(Self {
            traceparent: fields.remove(TRACEPARENT)?,
            tracestate: fields.remove(TRACESTATE).filter(|state| !state.is_empty()),
        })
    }

    /// The current OpenTelemetry context's (an entered exported span's, or the
    /// sampled-out trace the work runs in), or `None` when tracing is off.
    pub fn current() -> Option<Self> {
        Context::map_current(Self::capture)
    }

    /// A context whose remote parent is the stored span; an empty context when the text
    /// is not a valid `traceparent` (a malformed header starts a new trace rather than
    /// failing the record).
    pub fn context(&self) -> Context {
        Self::parse(&self.traceparent, self.tracestate.as_deref())
    }

    /// Like [`StoredTraceContext::context`] from the two texts.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Context {
        let fields = Fields {
            traceparent: Some(traceparent),
            tracestate,
        };
        TraceContextPropagator::new().extract(&fields)
    }
}

/// Appends the W3C headers of `cx` to `headers` (nothing when `cx` has no valid span).
pub fn inject_kafka_headers(cx: &Context, headers: OwnedHeaders) -> OwnedHeaders {
    match StoredTraceContext::capture(cx) {
        Some(stored) => append_stored(&stored, headers),
        None => headers,
    }
}

/// Appends `stored`'s `traceparent` and (when present) `tracestate` to `headers`.
pub fn append_stored(stored: &StoredTraceContext, headers: OwnedHeaders) -> OwnedHeaders {
    let headers = headers.insert(Header {
        key: TRACEPARENT,
        value: Some(stored.traceparent.as_bytes()),
    });
    match &stored.tracestate {
        Some(state) => headers.insert(Header {
            key: TRACESTATE,
            value: Some(state.as_bytes()),
        }),
        None => headers,
    }
}

/// The trace context a record carries in its headers (an empty context when it carries
/// none or a malformed one). When a header repeats, the last one wins, as for any Kafka
/// header read as a single value.
pub fn extract_kafka_headers<H: Headers>(headers: &H) -> Context {
    let text = |name: &str| {
        headers
            .iter()
            .filter(|header| header.key.eq_ignore_ascii_case(name))
            .filter_map(|header| header.value)
            .filter_map(|value| std::str::from_utf8(value).ok())
            .last()
    };
    let fields = Fields {
        traceparent: text(TRACEPARENT),
        tracestate: text(TRACESTATE),
    };
    TraceContextPropagator::new().extract(&fields)
}

/// The trace context an HTTP request carries in its `traceparent`/`tracestate` headers
/// (an empty context when none or a malformed one).
pub fn extract_http_headers(headers: &axum::http::HeaderMap) -> Context {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let fields = Fields {
        traceparent: text(TRACEPARENT),
        tracestate: text(TRACESTATE),
    };
    TraceContextPropagator::new().extract(&fields)
}

/// The stored form of the context a record carries, if it carries a valid one.
pub fn stored_from_kafka_headers<H: Headers>(headers: &H) -> Option<StoredTraceContext> {
    StoredTraceContext::capture(&extract_kafka_headers(headers))
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

struct Fields<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for Fields<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent,
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn remote(sampled: bool, state: &str) -> Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            flags,
            true,
            state.parse::<TraceState>().unwrap(),
        );
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn stored_context_round_trips_with_flags_and_state() {
        let stored = StoredTraceContext::capture(&remote(true, "vendor=abc")).unwrap();
        assert_eq!(stored.traceparent, PARENT);
        assert_eq!(stored.tracestate.as_deref(), Some("vendor=abc"));
        let back = stored.context();
        let span = back.span();
        let span_context = span.span_context();
        assert!(span_context.is_remote());
        assert!(span_context.is_sampled());
        assert_eq!(span_context.trace_state().header(), "vendor=abc");
        assert_eq!(StoredTraceContext::capture(&back), Some(stored));
    }

    #[test]
    fn unsampled_flag_survives_so_downstream_keeps_the_decision() {
        let stored = StoredTraceContext::capture(&remote(false, "")).unwrap();
        assert!(
            stored.traceparent.ends_with("-00"),
            "{}",
            stored.traceparent
        );
        assert_eq!(stored.tracestate, None);
        assert!(!stored.context().span().span_context().is_sampled());
    }

    #[test]
    fn no_valid_span_means_nothing_to_store() {
        assert_eq!(StoredTraceContext::capture(&Context::new()), None);
        let malformed = StoredTraceContext::parse("00-zz-yy-01", None);
        assert!(!malformed.span().span_context().is_valid());
    }

    #[test]
    fn kafka_headers_round_trip_and_the_last_traceparent_wins() {
        let headers = OwnedHeaders::new().insert(Header {
            key: "event-type",
            value: Some("OrderPlaced".as_bytes()),
        });
        let headers = inject_kafka_headers(&remote(true, "k=v"), headers);
        assert_eq!(headers.count(), 3);
        let stored = stored_from_kafka_headers(&headers).unwrap();
        assert_eq!(stored.traceparent, PARENT);
        assert_eq!(stored.tracestate.as_deref(), Some("k=v"));

        let newer = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let headers = headers.insert(Header {
            key: "traceparent",
            value: Some(newer.as_bytes()),
        });
        assert_eq!(
            stored_from_kafka_headers(&headers).unwrap().traceparent,
            newer
        );
    }

    #[test]
    fn http_headers_are_read_like_record_headers() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("traceparent", PARENT.parse().unwrap());
        headers.insert("tracestate", "a=1".parse().unwrap());
        let stored = StoredTraceContext::capture(&extract_http_headers(&headers)).unwrap();
        assert_eq!(stored.traceparent, PARENT);
        assert_eq!(stored.tracestate.as_deref(), Some("a=1"));
        headers.insert("traceparent", "garbage".parse().unwrap());
        assert!(StoredTraceContext::capture(&extract_http_headers(&headers)).is_none());
    }

    #[test]
    fn records_without_context_extract_an_empty_one() {
        let headers = OwnedHeaders::new();
        assert!(
            !extract_kafka_headers(&headers)
                .span()
                .span_context()
                .is_valid()
        );
        let headers = inject_kafka_headers(&Context::new(), OwnedHeaders::new());
        assert_eq!(headers.count(), 0);
    }
}
