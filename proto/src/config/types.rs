//! The stunnerd config v1 data types, field for field as upstream STUNner's `pkg/apis/v1`, with
//! upstream's JSON keys and `omitempty` behaviour on serialisation. Empty strings and zero numbers
//! mean "unset" until [`StunnerConfig::validate`] fills the defaults.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{AuthType, ClusterProtocol, ClusterType, ListenerProtocol, decode};

/// The only supported config API version.
pub const API_VERSION: &str = "v1";

/// A whole stunnerd configuration (one Gateway's worth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StunnerConfig {
    /// API version; must be `v1`.
    pub version: String,
    /// Administrative settings.
    pub admin: AdminConfig,
    /// TURN authentication.
    pub auth: AuthConfig,
    /// Server sockets exposed to clients.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerConfig>,
    /// Peers reachable through the relay.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterConfig>,
}

impl Default for StunnerConfig {
    fn default() -> Self {
        Self {
            version: API_VERSION.to_owned(),
            admin: AdminConfig::default(),
            auth: AuthConfig::default(),
            listeners: Vec::new(),
            clusters: Vec::new(),
        }
    }
}

/// `admin`: identity, logging, metrics, health check and quota.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdminConfig {
    /// Name of the dataplane, conventionally `<namespace>/<gateway>`; default `default-stunnerd`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Log levels, e.g. `all:INFO,turn:DEBUG`; default `all:INFO`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub loglevel: String,
    /// `http://address:port/path` serving Prometheus metrics; empty = no metrics server.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metrics_endpoint: String,
    /// `http://address:port` of the health server; `None` = default `http://:8086`, `Some("")` = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck_endpoint: Option<String>,
    /// Maximum allocations per username; 0 = unlimited.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub user_quota: u32,
}

/// `auth`: the TURN authentication mechanism.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthConfig {
    /// Mechanism; default `static`.
    #[serde(rename = "type")]
    pub auth_type: AuthType,
    /// STUN/TURN realm; default `stunner.l7mp.io`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub realm: String,
    /// `username`+`password` for static, `secret` for ephemeral. Never env-expanded.
    pub credentials: BTreeMap<String, String>,
}

impl AuthConfig {
    /// A credential by key (`username`, `password`, `secret`).
    pub fn credential(&self, key: &str) -> Option<&str> {
        self.credentials.get(key).map(String::as_str)
    }
}

/// Credentials are secrets: Debug shows the keys only.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.credentials.keys().map(String::as_str).collect();
        f.debug_struct("AuthConfig")
            .field("auth_type", &self.auth_type)
            .field("realm", &self.realm)
            .field("credentials", &format_args!("<redacted {keys:?}>"))
            .finish()
    }
}

/// `listeners[]`: one server socket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListenerConfig {
    /// Unique name (required).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Transport; default TURN-UDP.
    pub protocol: ListenerProtocol,
    /// Advertised public address (informational).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub public_address: String,
    /// Advertised public port (informational); 0 = unset.
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub public_port: u16,
    /// Bind address, also written into XOR-RELAYED-ADDRESS (the pod IP); default `0.0.0.0`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// Bind port; 0 = unset, default 3478.
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub port: u16,
    /// Base64-encoded PEM certificate (TLS/DTLS).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    /// Base64-encoded PEM private key (TLS/DTLS).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Names of the clusters peers may be reached in (sorted by `validate`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
}

/// `clusters[]`: a set of permitted peers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterConfig {
    /// Unique name (required), referenced by listener routes.
    pub name: String,
    /// Endpoint resolution; default STATIC.
    #[serde(rename = "type")]
    pub cluster_type: ClusterType,
    /// Relay protocol; default UDP.
    pub protocol: ClusterProtocol,
    /// Endpoints, see [`super::Endpoint`] for the syntax (sorted by `validate`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Deserialisation goes through the same case-insensitive, lenient decoder as
/// [`StunnerConfig::parse`], without environment expansion (use `parse` for files).
impl<'de> Deserialize<'de> for StunnerConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        decode::decode_config(decode::lowercase_keys(value)).map_err(serde::de::Error::custom)
    }
}
