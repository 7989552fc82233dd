//! Metric sources: where a ScaledObject's allocation counts come from.
//!
//! ```text
//!   TriggerMetadata ──build──> Source ──observe()──> Observation ──> policy
//!                               ├─ Prometheus: one PromQL instant query (Prometheus, Mimir, ...)
//!                               └─ Direct: dataplane pods (kube list or static list) → GET /status
//! ```
//! A source never turns a failure into a number: an unreachable backend or pod is an
//! [`Error::Backend`](crate::error::Error::Backend), which the gRPC layer reports as `Unavailable`.

pub mod direct;
pub mod prometheus;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::metadata::{SourceKind, TriggerMetadata};
use crate::policy::Observation;

pub use direct::DirectSource;
pub use prometheus::PrometheusSource;

/// A secret the scaler reads at use time (so rotated tokens are picked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// Contents of a file (trailing whitespace trimmed), e.g. a projected token.
    File(PathBuf),
    /// Value of an environment variable.
    Env(String),
}

impl Secret {
    /// Reads the secret now.
    pub fn read(&self) -> Result<String> {
        match self {
            Self::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end().to_owned())
                .map_err(|e| {
                    Error::Backend(format!("reading credential file {}: {e}", path.display()))
                }),
            Self::Env(name) => std::env::var(name).map_err(|_| {
                Error::Backend(format!("credential environment variable {name} is not set"))
            }),
        }
    }
}

/// Credentials the scaler presents to the Prometheus API (from the scaler's own flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

/// Process-wide settings every Prometheus source shares.
#[derive(Debug, Default)]
pub struct PromSettings {
    /// Optional credentials.
    pub auth: Option<PromAuth>,
    /// Extra CA certificates (PEM bundle) trusted for `https` server addresses.
    pub ca_bundle: Vec<reqwest::Certificate>,
    /// Names of `queryParameters` keys, interned (see [`ParamNames`]).
    pub param_names: ParamNames,
}

/// prometheus-http-query wants `&'static str` query parameter names; this leaks each distinct
/// name once, capped, instead of once per parse.
#[derive(Debug, Default)]
pub struct ParamNames(Mutex<HashSet<&'static str>>);

/// Most distinct `queryParameters` names kept for the process lifetime.
const MAX_PARAM_NAMES: usize = 256;

impl ParamNames {
    /// The interned `&'static str` for `name`.
    pub fn intern(&self, name: &str) -> Result<&'static str> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = set.get(name) {
            return Ok(s);
        }
        if set.len() >= MAX_PARAM_NAMES {
            return Err(Error::metadata(
                "queryParameters",
                "too many distinct parameter names",
            ));
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        set.insert(leaked);
        Ok(leaked)
    }
}

/// What sources need from the process: Kubernetes access, static endpoints, credentials.
#[derive(Default)]
pub struct SourceDeps {
    /// Kubernetes client; `None` when running outside a cluster.
    pub kube: Option<kube::Client>,
    /// `--static-endpoints`: stunnerd health servers (`host:port`) used instead of pod discovery.
    pub static_endpoints: Vec<String>,
    /// `--static-endpoints-file`: one `host:port` per line, re-read on every refresh.
    pub static_endpoints_file: Option<PathBuf>,
    /// Prometheus settings.
    pub prom: PromSettings,
}

impl std::fmt::Debug for SourceDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceDeps")
            .field("kube", &self.kube.is_some())
            .field("static_endpoints", &self.static_endpoints)
            .field("static_endpoints_file", &self.static_endpoints_file)
            .field("prom", &self.prom)
            .finish()
    }
}

/// A ready-to-query source of one ScaledObject.
#[derive(Debug)]
pub enum Source {
    /// PromQL.
    Prometheus(PrometheusSource),
    /// Dataplane pods' `/status`.
    Direct(DirectSource),
}

impl Source {
    /// Builds the source `md` asks for; `namespace` is the ScaledObject's.
    pub fn build(md: &TriggerMetadata, namespace: &str, deps: &SourceDeps) -> Result<Self> {
        Ok(match md.source {
            SourceKind::Prometheus => Self::Prometheus(PrometheusSource::build(md, &deps.prom)?),
            SourceKind::Direct => Self::Direct(DirectSource::build(md, namespace, deps)?),
        })
    }

    /// Reads the dataplane once.
    pub async fn observe(&self) -> Result<Observation> {
        match self {
            Self::Prometheus(p) => p.observe().await,
            Self::Direct(d) => d.observe().await,
        }
    }

    /// `prometheus` or `direct`, a metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Prometheus(_) => "prometheus",
            Self::Direct(_) => "direct",
        }
    }
}
