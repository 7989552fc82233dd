//! `validate()`: the rules of upstream's `pkg/apis/v1` plus the stricter checks a security
//! boundary wants (endpoints must parse, listener addresses must be IPs, names unique), filling
//! the defaults in place so two validated configs compare with `==`.
//!
//! A route naming a cluster that does not exist is *not* an error, as upstream: it matches no
//! peer. [`StunnerConfig::dangling_routes`] lists them so the caller can warn.

use std::collections::HashSet;
use std::net::IpAddr;

use base64::Engine;

use super::http::{
    DEFAULT_HEALTHCHECK_ENDPOINT, DEFAULT_HEALTHCHECK_PORT, DEFAULT_METRICS_PORT, HttpEndpoint,
    parse_http_endpoint,
};
use super::{
    API_VERSION, AdminConfig, AuthConfig, AuthType, ClusterConfig, ConfigError, Endpoint,
    ListenerConfig, Result, StunnerConfig,
};

/// Default `admin.name`.
pub const DEFAULT_NAME: &str = "default-stunnerd";
/// Default `admin.loglevel`.
pub const DEFAULT_LOGLEVEL: &str = "all:INFO";
/// Default `auth.realm`.
pub const DEFAULT_REALM: &str = "stunner.l7mp.io";
/// Default `listeners[].address`.
pub const DEFAULT_ADDRESS: &str = "0.0.0.0";
/// Default `listeners[].port` (the standard TURN port).
pub const DEFAULT_PORT: u16 = 3478;

impl StunnerConfig {
    /// Checks the whole config and fills defaults. The first problem found is returned with its
    /// field path, e.g. `listeners[1].cert: required for TURN-TLS listeners`.
    pub fn validate(&mut self) -> Result<()> {
        if self.version != API_VERSION {
            let msg = format!(
                "unsupported API version {:?}, expected {API_VERSION:?}",
                self.version
            );
            return Err(ConfigError::field("version", msg));
        }
        self.admin.validate()?;
        self.auth.validate()?;
        unique_names("listeners", self.listeners.iter().map(|l| l.name.as_str()))?;
        for (i, l) in self.listeners.iter_mut().enumerate() {
            l.validate(&format!("listeners[{i}]"))?;
        }
        unique_names("clusters", self.clusters.iter().map(|c| c.name.as_str()))?;
        for (i, c) in self.clusters.iter_mut().enumerate() {
            c.validate(&format!("clusters[{i}]"))?;
        }
        Ok(())
    }

    /// `(listener name, route)` pairs whose route names no cluster; such a route allows no peer.
    pub fn dangling_routes(&self) -> Vec<(&str, &str)> {
        let clusters: HashSet<&str> = self.clusters.iter().map(|c| c.name.as_str()).collect();
        let listeners = self.listeners.iter();
        listeners
            .flat_map(|l| l.routes.iter().map(move |r| (l.name.as_str(), r.as_str())))
            .filter(|(_, r)| !clusters.contains(r))
            .collect()
    }
}

/// Duplicate names make routes and listener identity ambiguous: reject them. Empty names are
/// reported by the per-item check instead.
fn unique_names<'a>(list: &str, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, name) in names.enumerate() {
        if !name.is_empty() && !seen.insert(name) {
            return Err(ConfigError::field(
                format!("{list}[{i}].name"),
                format!("duplicate name {name:?}"),
            ));
        }
    }
    Ok(())
}

impl AdminConfig {
    fn validate(&mut self) -> Result<()> {
        fill(&mut self.name, DEFAULT_NAME);
        fill(&mut self.loglevel, DEFAULT_LOGLEVEL);
        self.healthcheck_endpoint
            .get_or_insert_with(|| DEFAULT_HEALTHCHECK_ENDPOINT.to_owned());
        self.metrics_addr()?;
        self.healthcheck_addr()?;
        Ok(())
    }

    /// The metrics server endpoint (missing port 8080, missing path `/`); `None` when off.
    pub fn metrics_addr(&self) -> Result<Option<HttpEndpoint>> {
        optional_endpoint(
            &self.metrics_endpoint,
            DEFAULT_METRICS_PORT,
            "admin.metrics_endpoint",
        )
    }

    /// The health server endpoint (missing port 8086): absent = `http://:8086`, empty = off.
    pub fn healthcheck_addr(&self) -> Result<Option<HttpEndpoint>> {
        let raw = self
            .healthcheck_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_HEALTHCHECK_ENDPOINT);
        optional_endpoint(raw, DEFAULT_HEALTHCHECK_PORT, "admin.healthcheck_endpoint")
    }
}

fn optional_endpoint(raw: &str, port: u16, path: &str) -> Result<Option<HttpEndpoint>> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_http_endpoint(raw, port)
        .map(Some)
        .map_err(|e| ConfigError::field(path, e))
}

fn fill(field: &mut String, default: &str) {
    if field.trim().is_empty() {
        *field = default.to_owned();
    }
}

impl AuthConfig {
    fn validate(&mut self) -> Result<()> {
        let required: &[&str] = match self.auth_type {
            AuthType::Static => &["username", "password"],
            AuthType::Ephemeral => &["secret"],
            AuthType::None => &[],
        };
        for key in required {
            if self.credential(key).is_none_or(str::is_empty) {
                let msg = format!("required for {} authentication", self.auth_type);
                return Err(ConfigError::field(format!("auth.credentials.{key}"), msg));
            }
        }
        fill(&mut self.realm, DEFAULT_REALM);
        Ok(())
    }
}

impl ListenerConfig {
    fn validate(&mut self, path: &str) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::field(format!("{path}.name"), "required"));
        }
        fill(&mut self.address, DEFAULT_ADDRESS);
        if self.ip().is_none() {
            let msg = format!("{:?} is not an IP address", self.address);
            return Err(ConfigError::field(format!("{path}.address"), msg));
        }
        if self.port == 0 {
            self.port = DEFAULT_PORT;
        }
        if self.protocol.is_tls() {
            let need = format!("required for {} listeners", self.protocol);
            for (field, value) in [("cert", &self.cert), ("key", &self.key)] {
                if value.trim().is_empty() {
                    return Err(ConfigError::field(format!("{path}.{field}"), need.clone()));
                }
                decode_pem(value).map_err(|e| ConfigError::field(format!("{path}.{field}"), e))?;
            }
        }
        self.routes.sort();
        Ok(())
    }

    /// The bind/relay IP (`address`), `None` if it is not an IP (never after `validate`).
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.trim().parse().ok()
    }

    /// Whether moving from `self` to `new` needs the listener's sockets to be rebuilt: its address,
    /// port, protocol, certificate or key changed. Route, public address and name-preserving
    /// changes are applied in place.
    pub fn requires_restart(&self, new: &Self) -> bool {
        self.address != new.address
            || self.port != new.port
            || self.protocol != new.protocol
            || self.cert != new.cert
            || self.key != new.key
    }

    /// The PEM certificate, decoded from base64.
    pub fn cert_pem(&self) -> Result<Vec<u8>, PemError> {
        decode_pem(&self.cert)
    }

    /// The PEM private key, decoded from base64.
    pub fn key_pem(&self) -> Result<Vec<u8>, PemError> {
        decode_pem(&self.key)
    }
}

/// Why a listener's certificate or key cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// The field is not base64 (the config carries PEM text base64-encoded).
    #[error("not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// Base64 (standard alphabet, whitespace and line breaks ignored) to bytes.
fn decode_pem(b64: &str) -> Result<Vec<u8>, PemError> {
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(compact)?)
}

impl ClusterConfig {
    fn validate(&mut self, path: &str) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::field(format!("{path}.name"), "required"));
        }
        self.parse_endpoints_at(path)?;
        self.endpoints.sort();
        Ok(())
    }

    /// The parsed endpoints; errors name `endpoints[i]`.
    pub fn parsed_endpoints(&self) -> Result<Vec<Endpoint>> {
        self.parse_endpoints_at("")
    }

    fn parse_endpoints_at(&self, path: &str) -> Result<Vec<Endpoint>> {
        let dot = if path.is_empty() { "" } else { "." };
        let at = |i| format!("{path}{dot}endpoints[{i}]");
        let parse = |(i, e): (usize, &String)| {
            Endpoint::parse(e, self.cluster_type)
                .map_err(|e| ConfigError::field(at(i), e.to_string()))
        };
        self.endpoints.iter().enumerate().map(parse).collect()
    }
}
