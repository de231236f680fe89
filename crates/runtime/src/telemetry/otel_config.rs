//! The trace exporter's settings, read from OpenTelemetry's standard environment
//! variables so an operator configures orderflow like any other instrumented service.
//! Tracing is off unless an OTLP endpoint is given.

use crate::{Error, Result};

/// How new traces are sampled (`OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerConfig {
    /// Every span, whatever the parent decided.
    AlwaysOn,
    /// No span.
    AlwaysOff,
    /// This fraction of trace ids, whatever the parent decided.
    TraceIdRatio(f64),
    /// The parent's decision when there is a parent; for a root span, always on.
    ParentBasedAlwaysOn,
    /// The parent's decision when there is a parent; for a root span, off.
    ParentBasedAlwaysOff,
    /// The parent's decision when there is a parent; for a root span, this fraction.
    ParentBasedTraceIdRatio(f64),
}

/// Settings of the OTLP trace export.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// The full URL spans are POSTed to (OTLP/HTTP, protobuf), e.g.
    /// `http://127.0.0.1:4318/v1/traces`.
    pub traces_endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Further resource attributes (`OTEL_RESOURCE_ATTRIBUTES`), service.name excluded.
    pub resource_attributes: Vec<(String, String)>,
    /// How root spans are sampled.
    pub sampler: SamplerConfig,
    /// Spans waiting for export at most; past it new spans are dropped and counted.
    pub max_queue_size: usize,
}

const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;

impl OtelConfig {
    /// Reads the settings from the process environment; `None` when tracing is off.
    /// `default_service_name` names the binary when neither `OTEL_SERVICE_NAME` nor a
    /// `service.name` resource attribute does.
    pub fn from_env(default_service_name: &str) -> Result<Option<Self>> {
        Self::from_lookup(default_service_name, |name| std::env::var(name).ok())
    }

    /// Like [`OtelConfig::from_env`], with `lookup` standing for the environment.
    pub fn from_lookup(
        default_service_name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match get("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(config(format!(
                    "OTEL_TRACES_EXPORTER={other:?} is not supported (otlp or none)"
                )));
            }
        }
        let endpoint = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            // The per-signal variable is the full URL; the general one is a base to
            // which the signal's path is appended (OTLP exporter specification).
            (Some(full), _) => full.trim().to_string(),
            (None, Some(base)) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(config(format!(
                "the OTLP traces endpoint {endpoint:?} is not an http:// or https:// URL"
            )));
        }
        let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(protocol) = protocol.as_deref().map(str::trim)
            && protocol != "http/protobuf"
        {
            return Err(config(format!(
                "OTLP protocol {protocol:?} is not supported: orderflow exports http/protobuf \
                 (point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port, 4318)"
            )));
        }
        let mut resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(raw) => parse_resource_attributes(&raw)?,
            None => Vec::new(),
        };
        let from_resource = resource_attributes
            .iter()
            .position(|(key, _)| key == "service.name")
            .map(|index| resource_attributes.remove(index).1);
        let service_name = get("OTEL_SERVICE_NAME")
            .map(|name| name.trim().to_string())
            .or(from_resource)
            .unwrap_or_else(|| default_service_name.to_string());
        let sampler = parse_sampler(
            get("OTEL_TRACES_SAMPLER").as_deref(),
            get("OTEL_TRACES_SAMPLER_ARG").as_deref(),
        )?;
        let max_queue_size = match get("OTEL_BSP_MAX_QUEUE_SIZE") {
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|size| *size > 0)
                .ok_or_else(|| {
                    config(format!(
                        "OTEL_BSP_MAX_QUEUE_SIZE={raw:?} is not a positive integer"
                    ))
                })?,
            None => DEFAULT_MAX_QUEUE_SIZE,
        };
        Ok(Some(Self {
            traces_endpoint: endpoint,
            service_name,
            resource_attributes,
            sampler,
            max_queue_size,
        }))
    }
}

/// `key1=value1,key2=value2`, values percent-decoded (W3C Baggage octet rules).
fn parse_resource_attributes(raw: &str) -> Result<Vec<(String, String)>> {
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                config(format!(
                    "OTEL_RESOURCE_ATTRIBUTES: {pair:?} is not key=value"
                ))
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(config(format!(
                    "OTEL_RESOURCE_ATTRIBUTES: {pair:?} has an empty key"
                )));
            }
            let value = percent_decode(value.trim()).ok_or_else(|| {
                config(format!(
                    "OTEL_RESOURCE_ATTRIBUTES: the value of {key:?} is not valid percent-encoded UTF-8"
                ))
            })?;
            Ok((key.to_string(), value))
        })
        .collect()
}

fn percent_decode(value: &str) -> Option<String> {
    // `%zz` is not an escape: reject it rather than pass it through silently.
    let bytes = value.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(index, byte)| {
        *byte == b'%'
            && !value
                .get(index + 1..index + 3)
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if malformed {
        return None;
    }
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

fn parse_sampler(name: Option<&str>, arg: Option<&str>) -> Result<SamplerConfig> {
    let ratio = || -> Result<f64> {
        match arg {
            None => Ok(1.0),
            Some(raw) => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|ratio| (0.0..=1.0).contains(ratio))
                .ok_or_else(|| {
                    config(format!(
                        "OTEL_TRACES_SAMPLER_ARG={raw:?} is not a ratio between 0 and 1"
                    ))
                }),
        }
    };
    Ok(match name.map(str::trim) {
        None | Some("parentbased_always_on") => SamplerConfig::ParentBasedAlwaysOn,
        Some("always_on") => SamplerConfig::AlwaysOn,
        Some("always_off") => SamplerConfig::AlwaysOff,
        Some("traceidratio") => SamplerConfig::TraceIdRatio(ratio()?),
        Some("parentbased_always_off") => SamplerConfig::ParentBasedAlwaysOff,
        Some("parentbased_traceidratio") => SamplerConfig::ParentBasedTraceIdRatio(ratio()?),
        Some(other) => {
            return Err(config(format!(
                "OTEL_TRACES_SAMPLER={other:?} is not supported (always_on, always_off, \
                 traceidratio, parentbased_always_on, parentbased_always_off, \
                 parentbased_traceidratio)"
            )));
        }
    })
}

fn config(message: String) -> Error {
    Error::Config(message)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Option<OtelConfig>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtelConfig::from_lookup("order-consumer", |name| map.get(name).cloned())
    }

    #[test]
    fn off_unless_an_endpoint_is_given() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[("OTEL_SERVICE_NAME", "x")]).unwrap(), None);
        assert_eq!(
            parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]).unwrap(),
            None
        );
    }

    #[test]
    fn disabled_or_exporter_none_wins_over_an_endpoint() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(
            parse(&[endpoint, ("OTEL_SDK_DISABLED", "true")]).unwrap(),
            None
        );
        assert_eq!(
            parse(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).unwrap(),
            None
        );
        assert!(parse(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]).is_err());
    }

    #[test]
    fn base_endpoint_gets_the_traces_path_and_the_signal_endpoint_is_used_as_is() {
        let base = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(base.traces_endpoint, "http://127.0.0.1:4318/v1/traces");
        let full = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:9/custom"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(full.traces_endpoint, "http://h:9/custom");
        assert!(parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318")]).is_err());
    }

    #[test]
    fn grpc_protocol_is_refused_with_the_reason() {
        let err = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("http/protobuf"), "{err}");
    }

    #[test]
    fn service_name_from_variable_then_resource_then_default() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        let default = parse(&[endpoint]).unwrap().unwrap();
        assert_eq!(default.service_name, "order-consumer");
        let resource = parse(&[
            endpoint,
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=from-resource,deployment.environment=dev%20lab",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(resource.service_name, "from-resource");
        assert_eq!(
            resource.resource_attributes,
            vec![("deployment.environment".into(), "dev lab".into())]
        );
        let named = parse(&[
            endpoint,
            ("OTEL_SERVICE_NAME", "worker-7"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(named.service_name, "worker-7");
        assert!(parse(&[endpoint, ("OTEL_RESOURCE_ATTRIBUTES", "novalue")]).is_err());
        assert!(parse(&[endpoint, ("OTEL_RESOURCE_ATTRIBUTES", "k=%zz")]).is_err());
    }

    #[test]
    fn sampler_defaults_to_parent_based_always_on() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        let sampler = |vars: &[(&str, &str)]| {
            let mut all = vec![endpoint];
            all.extend_from_slice(vars);
            parse(&all).map(|config| config.unwrap().sampler)
        };
        assert_eq!(sampler(&[]).unwrap(), SamplerConfig::ParentBasedAlwaysOn);
        assert_eq!(
            sampler(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ])
            .unwrap(),
            SamplerConfig::ParentBasedTraceIdRatio(0.01)
        );
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "traceidratio")]).unwrap(),
            SamplerConfig::TraceIdRatio(1.0)
        );
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "always_off")]).unwrap(),
            SamplerConfig::AlwaysOff
        );
        assert!(
            sampler(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ])
            .is_err()
        );
        assert!(sampler(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]).is_err());
    }

    #[test]
    fn queue_size_is_bounded_and_positive() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(parse(&[endpoint]).unwrap().unwrap().max_queue_size, 2048);
        let small = parse(&[endpoint, ("OTEL_BSP_MAX_QUEUE_SIZE", "16")]).unwrap();
        assert_eq!(small.unwrap().max_queue_size, 16);
        assert!(parse(&[endpoint, ("OTEL_BSP_MAX_QUEUE_SIZE", "0")]).is_err());
    }
}
