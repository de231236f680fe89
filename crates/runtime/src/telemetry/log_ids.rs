//! `trace_id` and `span_id` on JSON log lines, so a log line found by order_id leads to
//! its trace in Jaeger and back.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Layer;
use tracing_subscriber::registry::LookupSpan;

/// Where the subscriber's dispatcher is kept once it is registered: the OpenTelemetry
/// context of a span is read through it.
#[derive(Debug, Clone, Default)]
pub(crate) struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

/// A layer that does nothing but remember the dispatcher it is registered with.
#[derive(Debug, Clone)]
pub(crate) struct DispatchCapture(pub(crate) DispatchSlot);

impl<S: Subscriber> Layer<S> for DispatchCapture {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.0.set(subscriber.downgrade());
    }
}

/// Wraps a JSON event formatter: when the event happens inside an exported span, the
/// object gets `trace_id` and `span_id` members.
#[derive(Debug)]
pub(crate) struct WithTraceIds<E> {
    pub(crate) inner: E,
    pub(crate) dispatch: DispatchSlot,
}

impl<E> WithTraceIds<E> {
    fn ids<S>(
        &self,
        ctx: &FmtContext<'_, S, impl for<'a> FormatFields<'a> + 'static>,
    ) -> Option<(String, String)>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = ctx.lookup_current()?;
        let dispatch = self.dispatch.0.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
        let otel_span = cx.span();
        let span_context = otel_span.span_context();
        span_context.is_valid().then(|| {
            (
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
            )
        })
    }
}

impl<S, N, E> FormatEvent<S, N> for WithTraceIds<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = self.ids(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // The JSON formatter writes one object and a newline: add the members before the
        // closing brace.
        match line.trim_end().strip_suffix('}') {
            Some(body) => {
                let separator = if body.trim_end().ends_with('{') {
                    ""
                } else {
                    ","
                };
                writeln!(
                    writer,
                    "{body}{separator}\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
                )
            }
            None => writer.write_str(&line),
        }
    }
}
