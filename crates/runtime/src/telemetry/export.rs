//! The span export pipeline: OpenTelemetry's batch processor and OTLP/HTTP exporter, with
//! a bound in front. A span that ends while the bound is full is dropped and counted
//! (`orderflow_trace_spans_dropped_total`) instead of queued: tracing must never slow or
//! grow the process that is traced. The batch processor exports from its own thread, so
//! ending a span on the hot path only costs a channel send that never waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};
use prometheus::{IntCounter, Registry};

use super::otel_config::{OtelConfig, SamplerConfig};
use super::sampling::HeadSampler;
use crate::{Error, Result};

/// Counters of the span export, registered in the binary's metrics registry.
#[derive(Debug, Clone)]
pub struct TraceExportMetrics {
    /// Spans dropped because the export queue was full.
    pub dropped: IntCounter,
    /// Spans the collector accepted.
    pub exported: IntCounter,
    /// Spans whose export failed (collector down, timeout); they are not retried.
    pub failed: IntCounter,
}

impl TraceExportMetrics {
    /// Unregistered counters.
    pub fn new() -> Self {
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help).expect("metric names and help are valid")
        };
        Self {
            dropped: counter(
                "orderflow_trace_spans_dropped_total",
                "Spans dropped because the export queue was full",
            ),
            exported: counter(
                "orderflow_trace_spans_exported_total",
                "Spans the OTLP collector accepted",
            ),
            failed: counter(
                "orderflow_trace_spans_export_failed_total",
                "Spans whose OTLP export failed (not retried)",
            ),
        }
    }

    /// Registers the counters in `registry`.
    pub fn register(&self, registry: &Registry) -> Result<()> {
        for counter in [&self.dropped, &self.exported, &self.failed] {
            registry
                .register(Box::new(counter.clone()))
                .map_err(|error| Error::Config(format!("trace export metrics: {error}")))?;
        }
        Ok(())
    }
}

impl Default for TraceExportMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds the tracer provider: OTLP/HTTP exporter, bounded batch processor, sampler and
/// resource from `config`.
pub fn build_provider(
    config: &OtelConfig,
    metrics: &TraceExportMetrics,
) -> Result<SdkTracerProvider> {
    let otlp = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(config.traces_endpoint.clone())
        .build()
        .map_err(|error| Error::Config(format!("OTLP span exporter: {error}")))?;
    Ok(provider_with_exporter(config, metrics, otlp))
}

/// The provider around any exporter (the tests use an in-memory one).
pub fn provider_with_exporter<E: SpanExporter + 'static>(
    config: &OtelConfig,
    metrics: &TraceExportMetrics,
    exporter: E,
) -> SdkTracerProvider {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let counting = CountingExporter {
        inner: exporter,
        in_flight: Arc::clone(&in_flight),
        metrics: metrics.clone(),
    };
    // The batch processor reads OTEL_BSP_SCHEDULE_DELAY and friends itself; its queue is
    // as large as the bound, so the bound is what drops.
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue_size)
        .build();
    let processor = BoundedProcessor {
        inner: BatchSpanProcessor::builder(counting)
            .with_batch_config(batch)
            .build(),
        in_flight,
        capacity: config.max_queue_size,
        dropped: metrics.dropped.clone(),
    };
    let resource = Resource::builder_empty()
        .with_service_name(config.service_name.clone())
        .with_attributes(
            config
                .resource_attributes
                .iter()
                .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
        )
        .build();
    SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(HeadSampler(sampler(config.sampler)))
        .with_resource(resource)
        .build()
}

/// The configured sampler (the provider's wraps it in [`HeadSampler`]).
pub(crate) fn sampler(config: SamplerConfig) -> Sampler {
    match config {
        SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
        SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
        SamplerConfig::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
        SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerConfig::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerConfig::ParentBasedTraceIdRatio(ratio) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
    }
}

/// Admits a finished span to the batch processor only while fewer than `capacity` spans
/// wait for export (queued or in an export under way).
#[derive(Debug)]
struct BoundedProcessor {
    inner: BatchSpanProcessor,
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
    dropped: IntCounter,
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < self.capacity).then_some(waiting + 1)
            })
            .is_ok();
        if admitted {
            self.inner.on_end(span);
        } else {
            self.dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts what the exporter accepted or lost and releases the spans from the bound.
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    in_flight: Arc<AtomicUsize>,
    metrics: TraceExportMetrics,
}

/// Releases `count` spans from the bound when dropped, also when the batch processor
/// abandons an export that timed out.
struct Release<'a>(&'a AtomicUsize, usize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::AcqRel);
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let _release = Release(&self.in_flight, count);
        let result = self.inner.export(batch).await;
        let counter = if result.is_ok() {
            &self.metrics.exported
        } else {
            &self.metrics.failed
        };
        counter.inc_by(count as u64);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Tracer, TracerProvider};
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;

    fn config(max_queue_size: usize, sampler: SamplerConfig) -> OtelConfig {
        OtelConfig {
            traces_endpoint: "http://127.0.0.1:1/v1/traces".into(),
            service_name: "test".into(),
            resource_attributes: vec![("deployment.environment".into(), "test".into())],
            sampler,
            max_queue_size,
        }
    }

    #[test]
    fn spans_are_exported_with_the_resource() {
        let exporter = InMemorySpanExporter::default();
        let metrics = TraceExportMetrics::new();
        let provider = provider_with_exporter(
            &config(16, SamplerConfig::ParentBasedAlwaysOn),
            &metrics,
            exporter.clone(),
        );
        provider.tracer("t").in_span("one", |_| {});
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(metrics.exported.get(), 1);
        assert_eq!(metrics.dropped.get(), 0);
        let _ = provider.shutdown();
    }

    /// An exporter that never finishes until told to: holds the batch processor's
    /// export so the bound fills up.
    #[derive(Debug, Clone)]
    struct StuckExporter(Arc<std::sync::Mutex<bool>>);

    impl SpanExporter for StuckExporter {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            while !*self.0.lock().unwrap() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let release = Arc::new(std::sync::Mutex::new(false));
        let metrics = TraceExportMetrics::new();
        let provider = provider_with_exporter(
            &config(4, SamplerConfig::AlwaysOn),
            &metrics,
            StuckExporter(Arc::clone(&release)),
        );
        let tracer = provider.tracer("t");
        for _ in 0..50 {
            tracer.in_span("span", |_| {});
        }
        // At most the bound waits; every other span was dropped and counted.
        assert!(
            metrics.dropped.get() >= 46,
            "dropped {}",
            metrics.dropped.get()
        );
        *release.lock().unwrap() = true;
        let _ = provider.force_flush();
        assert_eq!(metrics.dropped.get() + metrics.exported.get(), 50);
        let _ = provider.shutdown();
    }

    #[test]
    fn unsampled_spans_are_not_exported() {
        let exporter = InMemorySpanExporter::default();
        let metrics = TraceExportMetrics::new();
        let provider = provider_with_exporter(
            &config(16, SamplerConfig::ParentBasedAlwaysOff),
            &metrics,
            exporter.clone(),
        );
        provider.tracer("t").in_span("root", |_| {});
        provider.force_flush().unwrap();
        assert!(exporter.get_finished_spans().unwrap().is_empty());
        assert_eq!(metrics.dropped.get(), 0);
        let _ = provider.shutdown();
    }
}
