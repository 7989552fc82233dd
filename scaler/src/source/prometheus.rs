//! The `prometheus` source: one PromQL instant query per refresh against a Prometheus-compatible
//! API (Prometheus, Grafana Mimir under `/prometheus`, Thanos, VictoriaMetrics), through
//! prometheus-http-query on a reqwest client built from the trigger metadata.
//!
//! The default query returns one sample per dataplane pod of the Gateway: non-draining pods
//! as they are, draining pods (`stunner_dataplane_draining > 0`) with an extra
//! `draining="true"` label, so a single query yields the active sum, the ready pod count, the
//! per-pod load for drain steering and the sessions still held by draining pods.

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use prometheus_http_query::{Client, response::Data};

use super::{PromAuth, PromSettings};
use crate::error::{Error, Result};
use crate::metadata::{GatewayRef, TriggerMetadata};
use crate::policy::{Observation, PodLoad};

/// A Prometheus query bound to one ScaledObject's settings.
pub struct PrometheusSource {
    client: Client,
    query: String,
    params: Vec<(&'static str, String)>,
    auth: Option<PromAuth>,
    ignore_null_values: bool,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("base_url", &self.client.base_url().as_str())
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// The default query for `gw` (see the module docs).
pub fn default_query(gw: &GatewayRef) -> String {
    // Dataplane pods are `<gateway>-<replicaset hash>-<suffix>` in the Gateway's namespace.
    let sel = format!(
        r#"namespace="{}",pod=~"{}-[a-z0-9]+-[a-z0-9]+""#,
        gw.namespace,
        gw.name.replace('.', r"\\.")
    );
    let allocs = format!("sum by (namespace, pod) (stunner_allocations_active{{{sel}}})");
    let draining = format!("(max by (namespace, pod) (stunner_dataplane_draining{{{sel}}}) > 0)");
    format!(
        "({allocs} unless on (namespace, pod) {draining}) or \
         label_replace({allocs} and on (namespace, pod) {draining}, \"draining\", \"true\", \"\", \"\")"
    )
}

impl PrometheusSource {
    /// Builds the HTTP client and query for `md` (which must name a server address).
    pub fn build(md: &TriggerMetadata, settings: &PromSettings) -> Result<Self> {
        let url = md
            .server_address
            .as_ref()
            .ok_or_else(|| Error::metadata("serverAddress", "required for source `prometheus`"))?;
        let query = match (&md.query, &md.gateway) {
            (Some(q), _) => q.clone(),
            (None, Some(gw)) => default_query(gw),
            (None, None) => {
                return Err(Error::metadata("gateway", "required unless `query` is set"));
            }
        };
        let headers: HeaderMap = md.custom_headers.iter().cloned().collect();
        proto::tls::provider(); // reqwest takes the process default
        let mut builder = reqwest::Client::builder()
            .timeout(md.timeout)
            .connect_timeout(md.timeout)
            .default_headers(headers)
            .tls_danger_accept_invalid_certs(md.unsafe_ssl);
        for cert in &settings.ca_bundle {
            builder = builder.add_root_certificate(cert.clone());
        }
        let http = builder.build().map_err(|e| {
            Error::metadata("serverAddress", format!("cannot build HTTP client: {e}"))
        })?;
        // The URL was normalised by the metadata parser: no trailing slash after a prefix.
        let base = url.as_str().trim_end_matches('/');
        let client = Client::from(http, base)
            .map_err(|e| Error::metadata("serverAddress", format!("invalid base URL: {e}")))?;
        let params = md
            .query_parameters
            .iter()
            .map(|(k, v)| Ok((settings.param_names.intern(k)?, v.clone())))
            .collect::<Result<_>>()?;
        Ok(Self {
            client,
            query,
            params,
            auth: settings.auth.clone(),
            ignore_null_values: md.ignore_null_values,
        })
    }

    /// The PromQL this source runs.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Runs the query once.
    pub async fn observe(&self) -> Result<Observation> {
        let mut q = self.client.query(&self.query);
        for (k, v) in &self.params {
            q = q.query(k, v);
        }
        if let Some(auth) = &self.auth {
            q = q.header(AUTHORIZATION, auth_header(auth)?);
        }
        let res = q
            .get()
            .await
            .map_err(|e| Error::Backend(format!("prometheus query failed: {}", error_chain(&e))))?;
        to_observation(res.data(), self.ignore_null_values)
    }
}

fn auth_header(auth: &PromAuth) -> Result<HeaderValue> {
    let value = match auth {
        PromAuth::Bearer(token) => format!("Bearer {}", token.read()?),
        PromAuth::Basic { username, password } => {
            let raw = format!("{username}:{}", password.read()?);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        }
    };
    let mut value = HeaderValue::try_from(value)
        .map_err(|_| Error::Backend("credential is not a valid HTTP header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `e: cause: cause...`, since the top-level messages of HTTP errors say little.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        out.push_str(": ");
        out.push_str(&src.to_string());
        cur = src.source();
    }
    out
}

/// Folds a query result into an observation. Samples with a `pod` label are per-pod loads;
/// `draining="true"` marks draining pods. An empty result is an error unless
/// `ignoreNullValues` (KEDA's semantics), so a vanished series never shrinks the gateway.
pub fn to_observation(data: &Data, ignore_null_values: bool) -> Result<Observation> {
    let samples: Vec<(Option<&std::collections::HashMap<String, String>>, f64)> = match data {
        Data::Vector(v) => v
            .iter()
            .map(|s| (Some(s.metric()), s.sample().value()))
            .collect(),
        Data::Scalar(s) => vec![(None, s.value())],
        Data::Matrix(_) => {
            return Err(Error::Backend(
                "query returned a range vector; an instant vector is needed".into(),
            ));
        }
    };
    if samples.is_empty() && !ignore_null_values {
        return Err(Error::Backend(
            "query returned no samples (set ignoreNullValues=true to read that as 0)".into(),
        ));
    }
    let mut obs = Observation::default();
    let mut per_pod = true;
    for (labels, value) in samples {
        if !value.is_finite() || value < 0.0 {
            if ignore_null_values {
                continue;
            }
            return Err(Error::Backend(format!(
                "query returned the non-usable value {value}"
            )));
        }
        let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        if label("draining") == Some("true") {
            *obs.draining_allocations.get_or_insert(0.0) += value;
            obs.draining_pods += 1;
            continue;
        }
        obs.active_allocations += value;
        match label("pod") {
            Some(pod) => obs.pods.push(PodLoad {
                namespace: label("namespace").unwrap_or_default().to_owned(),
                name: pod.to_owned(),
                allocations: value.round() as u64,
                deletion_cost: None,
            }),
            None => per_pod = false,
        }
    }
    if per_pod && !obs.pods.is_empty() {
        obs.ready_pods = Some(obs.pods.len() as u32);
        obs.draining_allocations.get_or_insert(0.0);
    } else {
        obs.pods.clear();
    }
    Ok(obs)
}
