//! JSON types of stunnerd's health/admin server (docs/ARCHITECTURE.md §5.3): the `/status` document and the `/drain`
//! request/response. `/status` carries upstream STUNner's keys (`version`, `admin.loglevel`,
//! `admin.metrics_endpoint`, `admin.healthcheck_endpoint`, `admin.quota`, `listeners[].public_address`,
//! `allocationCount`, `status`) plus our camelCase additions (`state`, `userQuota`, drain times).
//! Deliberate difference: upstream prints the auth section with its credentials; the summaries
//! here never carry secrets (no credentials, certificates or keys).
//!
//! Times are **unix seconds** (`drainStartedAt`, `drainDeadline`): trivially compared by scripts
//! (`jq '.drainDeadline - now'`) and by the scaler, and free of time-zone parsing.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{
    AdminConfig, AuthConfig, AuthType, ClusterConfig, ClusterProtocol, ClusterType, ListenerConfig,
    ListenerProtocol, StunnerConfig,
};

/// Lifecycle state of a dataplane, as shown in `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataplaneState {
    /// Serving a real config and accepting allocations.
    #[serde(rename = "READY")]
    Ready,
    /// No real config yet (or the config was rejected at start-up).
    #[serde(rename = "NOT-READY")]
    NotReady,
    /// Draining: existing allocations keep relaying, new ones get 508.
    #[serde(rename = "DRAINING")]
    Draining,
    /// Shutting down now (second signal or drain finished).
    #[serde(rename = "TERMINATING")]
    Terminating,
}

impl DataplaneState {
    /// The wire spelling (`READY`, `NOT-READY`, `DRAINING`, `TERMINATING`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::NotReady => "NOT-READY",
            Self::Draining => "DRAINING",
            Self::Terminating => "TERMINATING",
        }
    }
}

impl DataplaneState {
    /// Upstream's `status` word for this state (upstream has no separate draining state: its
    /// graceful shutdown is `TERMINATING`).
    pub fn upstream_word(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::NotReady => "NOT-READY",
            Self::Draining | Self::Terminating => "TERMINATING",
        }
    }
}

impl fmt::Display for DataplaneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /status` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Config API version in force (`v1`), as upstream's status `version`.
    pub version: String,
    /// stunnerd software version (crate version of the binary).
    pub stunnerd_version: String,
    /// Administrative settings in force.
    pub admin: AdminSummary,
    /// Authentication in force, without credentials.
    pub auth: AuthSummary,
    /// Listeners in force.
    pub listeners: Vec<ListenerSummary>,
    /// Clusters in force.
    pub clusters: Vec<ClusterSummary>,
    /// Live TURN allocations on this dataplane.
    pub allocation_count: u64,
    /// Lifecycle state.
    pub state: DataplaneState,
    /// Upstream's status word: `READY`, `NOT-READY`, or `TERMINATING` (any drain).
    #[serde(default)]
    pub status: String,
    /// When the current drain started (unix seconds); absent unless draining/terminating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_started_at: Option<u64>,
    /// When the current drain gives up and exits (unix seconds); absent unless draining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_deadline: Option<u64>,
}

impl Status {
    /// A status document summarising `config` (which may be the dataplane's empty bootstrap
    /// config); drain times are left unset.
    pub fn new(
        config: &StunnerConfig,
        state: DataplaneState,
        allocation_count: u64,
        stunnerd_version: &str,
    ) -> Self {
        Self {
            version: config.version.clone(),
            stunnerd_version: stunnerd_version.to_owned(),
            admin: AdminSummary::from(&config.admin),
            auth: AuthSummary::from(&config.auth),
            listeners: config.listeners.iter().map(ListenerSummary::from).collect(),
            clusters: config.clusters.iter().map(ClusterSummary::from).collect(),
            allocation_count,
            state,
            status: state.upstream_word().to_owned(),
            drain_started_at: None,
            drain_deadline: None,
        }
    }
}

/// `admin` section of `/status`, with upstream's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSummary {
    /// Dataplane name (`namespace/gateway` under the operator).
    pub name: String,
    /// Log level spec.
    pub loglevel: String,
    /// Metrics endpoint, empty when off.
    #[serde(alias = "metricsEndpoint")]
    pub metrics_endpoint: String,
    /// Health-check endpoint, empty when off.
    #[serde(alias = "healthcheckEndpoint")]
    pub healthcheck_endpoint: String,
    /// Upstream's `quota`: the user quota as a decimal string.
    #[serde(default)]
    pub quota: String,
    /// Allocations allowed per username, 0 = unlimited (our addition, a number).
    #[serde(rename = "userQuota")]
    pub user_quota: u32,
}

impl From<&AdminConfig> for AdminSummary {
    fn from(a: &AdminConfig) -> Self {
        Self {
            name: a.name.clone(),
            loglevel: a.loglevel.clone(),
            metrics_endpoint: a.metrics_endpoint.clone(),
            healthcheck_endpoint: a.healthcheck_endpoint.clone().unwrap_or_default(),
            quota: a.user_quota.to_string(),
            user_quota: a.user_quota,
        }
    }
}

/// `auth` section of `/status`: never the credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSummary {
    /// Mechanism.
    #[serde(rename = "type")]
    pub auth_type: AuthType,
    /// Realm.
    pub realm: String,
}

impl From<&AuthConfig> for AuthSummary {
    fn from(a: &AuthConfig) -> Self {
        Self {
            auth_type: a.auth_type,
            realm: a.realm.clone(),
        }
    }
}

/// One listener in `/status` (no certificate or key), with upstream's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerSummary {
    /// Listener name.
    pub name: String,
    /// Transport.
    pub protocol: ListenerProtocol,
    /// Bind/relay address.
    pub address: String,
    /// Bind port.
    pub port: u16,
    /// Advertised public address, empty if unknown.
    #[serde(alias = "publicAddress")]
    pub public_address: String,
    /// Advertised public port, 0 if unknown.
    #[serde(alias = "publicPort")]
    pub public_port: u16,
    /// Routed cluster names.
    pub routes: Vec<String>,
}

impl From<&ListenerConfig> for ListenerSummary {
    fn from(l: &ListenerConfig) -> Self {
        Self {
            name: l.name.clone(),
            protocol: l.protocol,
            address: l.address.clone(),
            port: l.port,
            public_address: l.public_address.clone(),
            public_port: l.public_port,
            routes: l.routes.clone(),
        }
    }
}

/// One cluster in `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// Cluster name.
    pub name: String,
    /// Endpoint resolution.
    #[serde(rename = "type")]
    pub cluster_type: ClusterType,
    /// Relay protocol.
    pub protocol: ClusterProtocol,
    /// Endpoints as configured.
    pub endpoints: Vec<String>,
}

impl From<&ClusterConfig> for ClusterSummary {
    fn from(c: &ClusterConfig) -> Self {
        Self {
            name: c.name.clone(),
            cluster_type: c.cluster_type,
            protocol: c.protocol,
            endpoints: c.endpoints.clone(),
        }
    }
}

/// Query of `POST /drain?timeout=<seconds>`; without `timeout` the daemon's `--drain-timeout`
/// applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRequest {
    /// Drain deadline in seconds from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// Body answered by `POST /drain` and `DELETE /drain`: the state after the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainResponse {
    /// State after the request (`DRAINING` after POST, `READY`/`NOT-READY` after DELETE).
    pub state: DataplaneState,
    /// Allocations still alive.
    pub allocation_count: u64,
    /// Drain start (unix seconds) while draining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_started_at: Option<u64>,
    /// Drain deadline (unix seconds) while draining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_deadline: Option<u64>,
    /// Human-readable outcome, e.g. "drain started" or "already draining".
    pub message: String,
}

/// Body of every admin error answer (400, 401, 403, 409, 500).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong and how to fix it.
    pub error: String,
}
