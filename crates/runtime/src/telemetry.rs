//! Logging and tracing set-up: human-readable logs by default, JSON lines with
//! `--log-format json` (with `trace_id` and `span_id` inside exported spans), and
//! OpenTelemetry traces over OTLP when the standard `OTEL_*` variables ask for them.

mod export;
mod log_filter;
mod log_ids;
mod otel_config;
pub mod propagation;
mod sampling;
pub mod span_context;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_log::AsLog;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::{EnvFilter, Registry};

pub use export::{TraceExportMetrics, build_provider, provider_with_exporter};
pub use otel_config::{OtelConfig, SamplerConfig};
pub use propagation::StoredTraceContext;
pub use sampling::{RootSpan, root_span};

use crate::Result;
use log_filter::LogOrExportFilter;
use log_ids::{DispatchCapture, DispatchSlot, WithTraceIds};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging flags shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format: human or json.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `info,order_consumer=debug` (tracing EnvFilter syntax).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
}

/// Installs the global tracing subscriber for logs only (no trace export). Logs go to
/// stderr so stdout stays free for machine-readable output (JSON summaries, tables).
/// Colours only when stderr is a terminal (and `NO_COLOR` is unset), so log files and log
/// shippers get plain text. Calling it twice is harmless.
pub fn init_logging(args: &LogArgs) {
    install(args, None);
}

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans: code that would build spans only for export
/// (a span per generated record) asks first.
pub fn is_exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What [`init_telemetry`] installed; flushes the spans still queued when dropped.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    metrics: TraceExportMetrics,
}

impl Telemetry {
    /// Whether spans are exported (an OTLP endpoint is configured).
    pub fn is_tracing(&self) -> bool {
        self.provider.is_some()
    }

    /// Registers the span export counters in the binary's metrics registry.
    pub fn register_metrics(&self, registry: &prometheus::Registry) -> Result<()> {
        self.metrics.register(registry)
    }

    /// Exports what is still queued and stops the exporter; later spans are not exported.
    pub fn shutdown(&mut self) {
        EXPORTING.store(false, Ordering::Relaxed);
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("trace export did not shut down cleanly: {error}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Installs logging as [`init_logging`] does and, when the `OTEL_*` environment asks for
/// it (an OTLP endpoint, see [`OtelConfig`]), a `tracing-opentelemetry` layer so the
/// binary's `tracing` spans are exported. `default_service_name` is `service.name` unless
/// `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` say otherwise. A bad `OTEL_*` value is
/// a start-up error.
pub fn init_telemetry(args: &LogArgs, default_service_name: &str) -> Result<Telemetry> {
    let metrics = TraceExportMetrics::new();
    let export = match OtelConfig::from_env(default_service_name)? {
        Some(config) => Some((
            build_provider(&config, &metrics)?,
            export::sampler(config.sampler),
        )),
        None => None,
    };
    install(
        args,
        export
            .as_ref()
            .map(|(provider, sampler)| (provider, sampler.clone())),
    );
    let provider = export.map(|(provider, _)| provider);
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(Telemetry { provider, metrics })
}

/// What the subscriber exports spans with: the provider and the configured sampler.
type Export<'a> = (&'a SdkTracerProvider, Sampler);

fn install(args: &LogArgs, export: Option<Export<'_>>) {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let filter = log_filter(&args.log_level);
    // Records of crates that log through `log` (librdkafka's, Avro's) come in through the
    // bridge, capped at the log level: records below it are not even built.
    let log_max = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(log_max.as_log())
        .init();
    let _ = tracing::subscriber::set_global_default(subscriber(
        args,
        filter,
        export,
        BoxMakeWriter::new(std::io::stderr),
        colour,
    ));
}

/// The log lines' filter from `--log-level`; an invalid one says so and falls back to
/// `info`.
fn log_filter(log_level: &str) -> EnvFilter {
    EnvFilter::try_new(log_level).unwrap_or_else(|err| {
        eprintln!("invalid --log-level {log_level:?} ({err}); using info");
        EnvFilter::new("info")
    })
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The subscriber: the log formatter and, with `export`, the span export, under one
/// filter (`log_filter`: the log level, and the exported spans whatever it says unless
/// their trace is sampled out), and the layer that hands the formatter the dispatcher,
/// which must sit outside the `Vec` (a `Vec` of layers does not pass the dispatcher on).
fn subscriber(
    args: &LogArgs,
    filter: EnvFilter,
    export: Option<Export<'_>>,
    writer: BoxMakeWriter,
    colour: bool,
) -> impl tracing::Subscriber + Send + Sync {
    let slot = DispatchSlot::default();
    let mut layers: Vec<BoxedLayer> = vec![match args.log_format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .event_format(WithTraceIds {
                inner: tracing_subscriber::fmt::format().json().flatten_event(true),
                dispatch: slot.clone(),
            })
            .boxed(),
    }];
    let sampler = export.as_ref().map(|(_, sampler)| sampler.clone());
    if let Some((provider, _)) = export {
        // Only what the spans' own fields say: source locations, thread ids and busy/idle
        // times would cost on every span and tell an operator little.
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("orderflow"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_tracked_inactivity(false);
        layers.push(otel.boxed());
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(DispatchCapture(slot))
        .with(LogOrExportFilter::new(filter, sampler))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::InMemorySpanExporter;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn json_lines(with_provider: bool, body: impl FnOnce()) -> Vec<serde_json::Value> {
        logged_and_exported("info", with_provider, body).0
    }

    /// The JSON lines written and the names of the spans exported while `body` runs
    /// under `log_level`.
    fn logged_and_exported(
        log_level: &str,
        with_provider: bool,
        body: impl FnOnce(),
    ) -> (Vec<serde_json::Value>, Vec<String>) {
        logged_and_sampled(log_level, with_provider, SamplerConfig::AlwaysOn, body)
    }

    /// Like [`logged_and_exported`], with `sampler` deciding.
    fn logged_and_sampled(
        log_level: &str,
        with_provider: bool,
        sampler: SamplerConfig,
        body: impl FnOnce(),
    ) -> (Vec<serde_json::Value>, Vec<String>) {
        let captured = Captured::default();
        let exporter = InMemorySpanExporter::default();
        let config = OtelConfig {
            traces_endpoint: "http://127.0.0.1:1/v1/traces".into(),
            service_name: "test".into(),
            resource_attributes: Vec::new(),
            sampler,
            max_queue_size: 16,
        };
        let provider =
            provider_with_exporter(&config, &TraceExportMetrics::new(), exporter.clone());
        let args = LogArgs {
            log_format: LogFormat::Json,
            log_level: log_level.into(),
        };
        let writer = captured.clone();
        let subscriber = subscriber(
            &args,
            log_filter(&args.log_level),
            with_provider.then(|| (&provider, export::sampler(config.sampler))),
            BoxMakeWriter::new(move || writer.clone()),
            false,
        );
        tracing::subscriber::with_default(subscriber, body);
        let _ = provider.force_flush();
        let exported = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .map(|span| span.name.to_string())
            .collect();
        let _ = provider.shutdown();
        let bytes = captured.0.lock().unwrap().clone();
        let lines = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect();
        (lines, exported)
    }

    #[test]
    fn spans_are_exported_whatever_the_log_level() {
        let (lines, exported) = logged_and_exported("warn", true, || {
            let span = tracing::info_span!("work", order_id = "ord-1");
            let _entered = span.enter();
            tracing::info!("below the level");
        });
        assert_eq!(lines, Vec::<serde_json::Value>::new());
        assert_eq!(
            exported,
            ["work"],
            "an info span is exported at --log-level warn"
        );
    }

    #[test]
    fn json_lines_inside_an_exported_span_carry_its_ids() {
        let mut expected = None;
        let lines = json_lines(true, || {
            tracing::info!("outside any span");
            let span = tracing::info_span!("work", order_id = "ord-1");
            let _entered = span.enter();
            let cx = span.context();
            let otel_span = cx.span();
            let ids = otel_span.span_context();
            expected = Some((ids.trace_id().to_string(), ids.span_id().to_string()));
            tracing::info!(order_id = "ord-1", "inside");
        });
        let (trace_id, span_id) = expected.unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
        assert_eq!(lines[1]["message"], "inside");
        assert_eq!(lines[1]["order_id"], "ord-1");
        assert_eq!(lines[1]["trace_id"], trace_id.as_str());
        assert_eq!(lines[1]["span_id"], span_id.as_str());
    }

    #[test]
    fn events_below_the_log_level_are_not_written() {
        for with_provider in [false, true] {
            let lines = json_lines(with_provider, || {
                tracing::debug!("below the level");
                tracing::info!("at the level");
            });
            assert_eq!(lines.len(), 1, "export {with_provider}: {lines:?}");
            assert_eq!(lines[0]["message"], "at the level");
        }
    }

    #[test]
    fn without_export_json_lines_have_no_ids() {
        let lines = json_lines(false, || {
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            tracing::info!("inside");
        });
        assert_eq!(lines.len(), 1);
        assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
    }

    /// A remote context of a trace its caller sampled (or not).
    fn caller_context(sampled: bool) -> opentelemetry::Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            flags,
            true,
            TraceState::default(),
        ))
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn no_exported_span_is_built_inside_a_sampled_out_trace() {
        let (_, exported) = logged_and_exported("warn", true, || {
            let _attached = caller_context(false).attach();
            let span = tracing::info_span!("insert");
            assert!(span.is_disabled(), "a span only to be dropped is not built");
        });
        assert!(exported.is_empty(), "{exported:?}");
    }

    #[test]
    fn a_trace_sampled_out_at_its_root_builds_no_span_and_hands_on_the_flag_off() {
        let sampler = SamplerConfig::ParentBasedTraceIdRatio(0.0);
        let (_, exported) = logged_and_sampled("warn", true, sampler, || {
            let root = root_span(opentelemetry::Context::new, || {
                tracing::info_span!("request")
            });
            assert!(!root.is_sampled());
            assert!(root.span.is_disabled());
            let carried = root.carried().expect("a trace to hand on");
            assert!(carried.traceparent.ends_with("-00"), "{carried:?}");
            block_on(root.in_trace(async {
                let insert = tracing::info_span!("insert");
                assert!(insert.is_disabled());
                // What the work stores or sends is the sampled-out trace.
                assert_eq!(insert.in_scope(StoredTraceContext::current), Some(carried));
            }));
        });
        assert!(exported.is_empty(), "{exported:?}");
    }

    #[test]
    fn a_trace_its_caller_sampled_is_exported_under_a_zero_ratio() {
        let sampler = SamplerConfig::ParentBasedTraceIdRatio(0.0);
        let mut carried = None;
        let (_, exported) = logged_and_sampled("warn", true, sampler, || {
            let root = root_span(|| caller_context(true), || tracing::info_span!("request"));
            assert!(root.is_sampled());
            carried = block_on(root.in_trace(async {
                tracing::info_span!("insert").in_scope(StoredTraceContext::current)
            }));
        });
        assert_eq!(exported, ["insert", "request"]);
        let carried = carried.expect("the insert span's context").traceparent;
        assert!(
            carried.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
                && carried.ends_with("-01")
                && !carried.contains("00f067aa0ba902b7"),
            "{carried}"
        );
    }

    #[test]
    fn a_new_trace_sampled_at_its_root_is_not_drawn_again() {
        // Ratio 1 at the head; the provider's sampler must keep that decision.
        let sampler = SamplerConfig::ParentBasedTraceIdRatio(1.0);
        let (_, exported) = logged_and_sampled("warn", true, sampler, || {
            let root = root_span(opentelemetry::Context::new, || {
                tracing::info_span!("request")
            });
            assert!(root.is_sampled());
            let carried = root.carried().expect("the root span's context");
            assert!(carried.traceparent.ends_with("-01"), "{carried:?}");
        });
        assert_eq!(exported, ["request"]);
    }

    #[test]
    fn at_info_a_sampled_out_span_still_reaches_the_log_but_is_not_exported() {
        let sampler = SamplerConfig::ParentBasedTraceIdRatio(0.0);
        let (lines, exported) = logged_and_sampled("info", true, sampler, || {
            let root = root_span(opentelemetry::Context::new, || {
                tracing::info_span!("request", order_id = "ord-1")
            });
            assert!(!root.span.is_disabled(), "the log level wants it");
            root.span.in_scope(|| tracing::info!("inside"));
        });
        assert!(exported.is_empty(), "{exported:?}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["span"]["order_id"], "ord-1", "{}", lines[0]);
    }

    #[test]
    fn without_export_the_root_span_is_the_log_span_and_hands_on_nothing() {
        let (_, exported) = logged_and_exported("info", false, || {
            let root = root_span(
                || panic!("not read without export"),
                || tracing::info_span!("request"),
            );
            assert!(!root.is_sampled());
            assert!(!root.span.is_disabled());
            assert_eq!(root.carried(), None);
        });
        assert!(exported.is_empty());
    }
}
