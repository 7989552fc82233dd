//! Trigger metadata (`scalerMetadata` of a KEDA ScaledObject trigger): a pure parser from the
//! string map KEDA sends to a typed [`TriggerMetadata`]. Every error names the key and what was
//! expected; unknown keys are ignored because KEDA also forwards its own keys (`scalerAddress`,
//! TLS settings) to external scalers.

use std::collections::HashMap;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use reqwest::Url;

use crate::error::{Error, Result};

/// Where allocation counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// PromQL against a Prometheus-compatible API (Prometheus, Mimir, Thanos, VictoriaMetrics).
    Prometheus,
    /// Each dataplane pod's `/status`, pods found through the Kubernetes API or static endpoints.
    Direct,
}

/// The Gateway whose dataplane is scaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRef {
    /// Namespace of the Gateway (defaults to the ScaledObject's namespace).
    pub namespace: String,
    /// Name of the Gateway, which is also the name of its dataplane Deployment.
    pub name: String,
}

/// Parsed, validated trigger metadata of one ScaledObject.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerMetadata {
    /// `source`: `prometheus` (default) or `direct`.
    pub source: SourceKind,
    /// `serverAddress`: Prometheus API base URL, trailing `/` removed (so Mimir's `/prometheus`
    /// prefix never yields `//api/v1/query`). Required for the prometheus source.
    pub server_address: Option<Url>,
    /// `query`: a custom PromQL query replacing the default one.
    pub query: Option<String>,
    /// `customHeaders`: `K=v,K2=v2`, sent with every Prometheus request.
    pub custom_headers: Vec<(HeaderName, HeaderValue)>,
    /// `queryParameters`: `k=v,k2=v2`, added to every Prometheus query URL.
    pub query_parameters: Vec<(String, String)>,
    /// `timeout`: upstream request timeout (milliseconds, or with an `ms`/`s` suffix).
    pub timeout: Duration,
    /// `unsafeSsl`: skip TLS certificate verification of the Prometheus server.
    pub unsafe_ssl: bool,
    /// `ignoreNullValues`: an empty query result counts as 0 allocations instead of an error.
    pub ignore_null_values: bool,
    /// `gateway`: `namespace/name` or `name`.
    pub gateway: Option<GatewayRef>,
    /// `podSelector`: label selector of the dataplane pods (direct source).
    pub pod_selector: Option<String>,
    /// `statusPort`: port of stunnerd's health/admin server serving `/status` (default 8086).
    pub status_port: u16,
    /// `targetAllocationsPerPod`: allocations one dataplane pod should carry (> 0, required).
    pub target_allocations_per_pod: f64,
    /// `activationThreshold`: the gateway is active when allocations exceed this (default 0).
    pub activation_threshold: f64,
    /// `scaleInStep`: at most this many pods removed per decision (>= 1, default 1).
    pub scale_in_step: u32,
    /// `minReplicas`: lower clamp of the desired replica count (default 1).
    pub min_replicas: u32,
    /// `maxReplicas`: upper clamp of the desired replica count (default 100).
    pub max_replicas: u32,
    /// `hpaTolerance`: the tolerance of the HPA that KEDA creates (0 <= t < 1, default 0.1, the
    /// Kubernetes default); the reported metric is moved outside it. Set it to the
    /// ScaledObject's `behavior.scaleUp/scaleDown.tolerance` when those are rendered.
    pub hpa_tolerance: f64,
    /// `drainSteering`: patch `controller.kubernetes.io/pod-deletion-cost` before a scale-in.
    pub drain_steering: bool,
}

/// Default upstream timeout when `timeout` is absent.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default port of stunnerd's health/admin server.
pub const DEFAULT_STATUS_PORT: u16 = 8086;

impl TriggerMetadata {
    /// Parses KEDA's `scalerMetadata`; `namespace` is the ScaledObject's namespace, the
    /// default namespace of `gateway`.
    pub fn parse(namespace: &str, map: &HashMap<String, String>) -> Result<Self> {
        let get = |key: &str| map.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let source = match get("source") {
            None | Some("prometheus") => SourceKind::Prometheus,
            Some("direct") => SourceKind::Direct,
            Some(other) => {
                return Err(Error::metadata(
                    "source",
                    format!("expected `prometheus` or `direct`, got `{other}`"),
                ));
            }
        };
        let min_replicas = parse_num(get("minReplicas"), "minReplicas", 1u32)?;
        let max_replicas = parse_num(get("maxReplicas"), "maxReplicas", 100u32)?;
        if max_replicas < min_replicas.max(1) {
            return Err(Error::metadata(
                "maxReplicas",
                format!("must be >= max(minReplicas, 1) = {}", min_replicas.max(1)),
            ));
        }
        let md = Self {
            source,
            server_address: get("serverAddress").map(parse_url).transpose()?,
            query: get("query").map(str::to_owned),
            custom_headers: parse_headers(get("customHeaders"))?,
            query_parameters: parse_pairs(get("queryParameters"), "queryParameters")?,
            timeout: get("timeout")
                .map(parse_timeout)
                .transpose()?
                .unwrap_or(DEFAULT_TIMEOUT),
            unsafe_ssl: parse_bool(get("unsafeSsl"), "unsafeSsl", false)?,
            ignore_null_values: parse_bool(get("ignoreNullValues"), "ignoreNullValues", false)?,
            gateway: get("gateway")
                .map(|g| parse_gateway(namespace, g))
                .transpose()?,
            pod_selector: get("podSelector").map(str::to_owned),
            status_port: parse_num(get("statusPort"), "statusPort", DEFAULT_STATUS_PORT)?,
            target_allocations_per_pod: parse_target(get("targetAllocationsPerPod"))?,
            activation_threshold: parse_float(get("activationThreshold"), "activationThreshold")?,
            scale_in_step: parse_num(get("scaleInStep"), "scaleInStep", 1u32)?,
            min_replicas,
            max_replicas,
            drain_steering: parse_bool(get("drainSteering"), "drainSteering", false)?,
            hpa_tolerance: parse_tolerance(get("hpaTolerance"))?,
        };
        md.check_source_keys()?;
        Ok(md)
    }

    /// Cross-key checks: what each source needs.
    fn check_source_keys(&self) -> Result<()> {
        if self.scale_in_step == 0 {
            return Err(Error::metadata("scaleInStep", "must be >= 1"));
        }
        if self.source == SourceKind::Prometheus {
            if self.server_address.is_none() {
                return Err(Error::metadata(
                    "serverAddress",
                    "required for source `prometheus` (e.g. http://mimir:8080/prometheus)",
                ));
            }
            if self.query.is_none() && self.gateway.is_none() {
                return Err(Error::metadata(
                    "gateway",
                    "required (as `namespace/name`) unless a custom `query` is given",
                ));
            }
        }
        Ok(())
    }
}

fn parse_url(raw: &str) -> Result<Url> {
    let mut url = Url::parse(raw)
        .map_err(|e| Error::metadata("serverAddress", format!("expected an http(s) URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::metadata(
            "serverAddress",
            format!("expected an http(s) URL with a host, got `{raw}`"),
        ));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(if trimmed.is_empty() { "/" } else { &trimmed });
    Ok(url)
}

/// `k=v,k2=v2` (KEDA's format); empty items are skipped, a key without `=` is an error.
fn parse_pairs(raw: Option<&str>, key: &'static str) -> Result<Vec<(String, String)>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(Error::metadata(
                key,
                format!("expected `key=value[,key=value]`, got item `{item}`"),
            )),
        })
        .collect()
}

fn parse_headers(raw: Option<&str>) -> Result<Vec<(HeaderName, HeaderValue)>> {
    parse_pairs(raw, "customHeaders")?
        .into_iter()
        .map(|(k, v)| {
            let name = HeaderName::try_from(k.as_str()).map_err(|_| {
                Error::metadata("customHeaders", format!("`{k}` is not a valid header name"))
            })?;
            let value = HeaderValue::try_from(v.as_str()).map_err(|_| {
                Error::metadata(
                    "customHeaders",
                    format!("value of `{k}` is not a valid header value"),
                )
            })?;
            Ok((name, value))
        })
        .collect()
}

/// `500` (milliseconds, KEDA's unit), `500ms` or `3s`.
fn parse_timeout(raw: &str) -> Result<Duration> {
    let bad = || {
        Error::metadata(
            "timeout",
            format!("expected milliseconds, `<n>ms` or `<n>s`, got `{raw}`"),
        )
    };
    let dur = if let Some(ms) = raw.strip_suffix("ms") {
        Duration::from_millis(ms.trim().parse().map_err(|_| bad())?)
    } else if let Some(s) = raw.strip_suffix('s') {
        Duration::from_secs_f64(parse_finite(s.trim()).ok_or_else(bad)?.max(0.0))
    } else {
        Duration::from_millis(raw.parse().map_err(|_| bad())?)
    };
    if dur.is_zero() {
        return Err(Error::metadata("timeout", "must be > 0"));
    }
    Ok(dur)
}

fn parse_bool(raw: Option<&str>, key: &'static str, default: bool) -> Result<bool> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(Error::metadata(
            key,
            format!("expected `true` or `false`, got `{other}`"),
        )),
    }
}

fn parse_num<T: std::str::FromStr>(raw: Option<&str>, key: &'static str, default: T) -> Result<T> {
    match raw {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            Error::metadata(key, format!("expected a non-negative integer, got `{v}`"))
        }),
    }
}

fn parse_finite(raw: &str) -> Option<f64> {
    raw.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_float(raw: Option<&str>, key: &'static str) -> Result<f64> {
    match raw {
        None => Ok(0.0),
        Some(v) => parse_finite(v).filter(|f| *f >= 0.0).ok_or_else(|| {
            Error::metadata(key, format!("expected a non-negative number, got `{v}`"))
        }),
    }
}

/// The HPA tolerance assumed when `hpaTolerance` is absent (kube-controller-manager's default).
pub const DEFAULT_HPA_TOLERANCE: f64 = 0.1;

fn parse_tolerance(raw: Option<&str>) -> Result<f64> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_HPA_TOLERANCE);
    };
    parse_finite(raw)
        .filter(|v| (0.0..1.0).contains(v))
        .ok_or_else(|| {
            Error::metadata(
                "hpaTolerance",
                format!("expected a number in [0, 1) (e.g. 0.1), got `{raw}`"),
            )
        })
}

fn parse_target(raw: Option<&str>) -> Result<f64> {
    let key = "targetAllocationsPerPod";
    let raw =
        raw.ok_or_else(|| Error::metadata(key, "required: allocations one pod should carry"))?;
    parse_finite(raw)
        .filter(|v| *v > 0.0)
        .ok_or_else(|| Error::metadata(key, format!("expected a number > 0, got `{raw}`")))
}

/// `namespace/name` or `name`; both parts must be DNS-1123 names (they end up in PromQL
/// matchers and label selectors, so nothing else may pass).
fn parse_gateway(default_ns: &str, raw: &str) -> Result<GatewayRef> {
    let (namespace, name) = raw.split_once('/').unwrap_or((default_ns, raw));
    for part in [namespace, name] {
        let ok = !part.is_empty()
            && part.len() <= 253
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !ok {
            return Err(Error::metadata(
                "gateway",
                format!("expected `namespace/name` of DNS-1123 names, got `{raw}`"),
            ));
        }
    }
    Ok(GatewayRef {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

#[cfg(test)]
mod tests;
