//! The subscriber's one filter: what `--log-level` enables, and, when spans are exported,
//! every span at info or above whatever the log level says, except under a trace that is
//! sampled out (see [`super::sampling`]): a span there would be built only to be dropped.
//!
//! One filter for the whole subscriber rather than a filter per layer: tracing's per-layer
//! filters keep their verdict in a thread-local between `enabled` and the event, and an
//! `enabled` query that no event follows (librdkafka's `log_enabled!`, asked whenever a
//! client config is made) left a verdict behind that dropped the thread's next log line
//! (the start-up settings line, a consumer's one line per unknown schema id). Spans reach
//! the log formatter too, which prints events only; events are filtered by the log level.

use opentelemetry_sdk::trace::Sampler;
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata, Subscriber, subscriber::Interest};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::sampling::in_unsampled_trace;

/// The level of the spans exported, whatever `--log-level` says: an operator who quiets
/// the logs to `warn` still gets whole traces.
pub(crate) const EXPORT_LEVEL: Level = Level::INFO;

/// `--log-level`'s filter, widened to the exported spans when spans are exported (with
/// `sampler`, which the head sampling decisions use too).
pub(crate) struct LogOrExportFilter {
    log: EnvFilter,
    sampler: Option<Sampler>,
}

impl LogOrExportFilter {
    pub(crate) fn new(log: EnvFilter, sampler: Option<Sampler>) -> Self {
        Self { log, sampler }
    }

    /// The configured sampler, when spans are exported.
    pub(crate) fn sampler(&self) -> Option<&Sampler> {
        self.sampler.as_ref()
    }

    /// A span the export wants, whatever the trace it would belong to.
    fn exported_callsite(&self, metadata: &Metadata<'_>) -> bool {
        self.sampler.is_some() && metadata.is_span() && *metadata.level() <= EXPORT_LEVEL
    }

    fn exported(&self, metadata: &Metadata<'_>) -> bool {
        self.exported_callsite(metadata) && !in_unsampled_trace()
    }
}

impl<S> Layer<S> for LogOrExportFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        let log = <EnvFilter as Layer<S>>::register_callsite(&self.log, metadata);
        if self.exported_callsite(metadata) && !log.is_always() {
            // Whether it is built depends on the trace it is created in: asked each time.
            Interest::sometimes()
        } else {
            log
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.exported(metadata) || <EnvFilter as Layer<S>>::enabled(&self.log, metadata, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let log = <EnvFilter as Layer<S>>::max_level_hint(&self.log);
        if self.sampler.is_some() {
            log.map(|level| level.max(LevelFilter::from_level(EXPORT_LEVEL)))
        } else {
            log
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.log.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.log.on_record(id, values, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.log.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.log.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.log.on_close(id, ctx);
    }
}
