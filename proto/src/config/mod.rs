//! stunnerd configuration v1 (docs/ARCHITECTURE.md §5.1), identical to upstream STUNner's: the one config
//! contract the operator renders and stunnerd reads.
//!
//! ```text
//!  text (YAML|JSON) ──parse──▶ tree ──lowercase keys──▶ env-expand ($VAR, ${VAR}; not credentials)
//!        ──decode (typed, field paths)──▶ StunnerConfig ──validate (defaults, rules)──▶ ready to apply
//! ```
//!
//! [`StunnerConfig::parse`] does not validate; call [`StunnerConfig::validate`] (after checking
//! [`StunnerConfig::is_deleted`] on CDS messages). Serialisation (serde) writes upstream's JSON keys.

mod cds;
mod decode;
mod endpoint;
mod enums;
mod env;
mod error;
mod http;
mod types;
mod validate;

pub use cds::{ConfigList, ZERO_CONFIG_PASSWORD, ZERO_CONFIG_USERNAME};
pub use endpoint::{Endpoint, EndpointError, EndpointHost, PortRange};
pub use enums::{AuthType, ClusterProtocol, ClusterType, ListenerProtocol};
pub use env::{expand as expand_env, os_lookup};
pub use error::{ConfigError, Result};
pub use http::{
    DEFAULT_HEALTHCHECK_ENDPOINT, DEFAULT_HEALTHCHECK_PORT, DEFAULT_METRICS_PORT, HttpEndpoint,
    HttpEndpointError, parse_http_endpoint,
};
pub use types::{
    API_VERSION, AdminConfig, AuthConfig, ClusterConfig, ListenerConfig, StunnerConfig,
};
pub use validate::{
    DEFAULT_ADDRESS, DEFAULT_LOGLEVEL, DEFAULT_NAME, DEFAULT_PORT, DEFAULT_REALM, PemError,
};

/// The environment variables a remote (CDS) config may name: the pod's own address, which the
/// operator cannot know when it renders the config.
pub const REMOTE_ENV: &[&str] = &["STUNNER_ADDR"];

impl StunnerConfig {
    /// Parses YAML or JSON text, matching keys case-insensitively and expanding environment
    /// variables from the process environment. Does not validate.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_with_env(text, &os_lookup)
    }

    /// [`StunnerConfig::parse`] with an explicit variable lookup (tests, or a controlled env).
    pub fn parse_with_env(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        Self::parse_env(
            text,
            &env::Env {
                lookup,
                expands: &|_| true,
            },
        )
    }

    /// Parses YAML or JSON text from a remote origin (CDS), whose author must not read the
    /// dataplane's environment: only the variables in [`REMOTE_ENV`] are expanded (the operator
    /// renders `address: $STUNNER_ADDR`, as upstream's does); every other `$VAR` or `${VAR}` is
    /// kept exactly as written and never read. Does not validate.
    pub fn parse_remote(text: &str) -> Result<Self> {
        Self::parse_env(
            text,
            &env::Env {
                lookup: &os_lookup,
                expands: &|name| REMOTE_ENV.contains(&name),
            },
        )
    }

    fn parse_env(text: &str, env: &env::Env<'_>) -> Result<Self> {
        let mut tree = decode::lowercase_keys(parse_tree(text)?);
        env::expand_tree(&mut tree, env);
        decode::decode_config(tree)
    }

    /// [`StunnerConfig::parse`] followed by [`StunnerConfig::validate`].
    pub fn parse_and_validate(text: &str) -> Result<Self> {
        let mut config = Self::parse(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The listener called `name`.
    pub fn listener(&self, name: &str) -> Option<&ListenerConfig> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// The cluster called `name`.
    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The clusters routed from `listener` (unknown route names skipped).
    pub fn routed_clusters<'a>(
        &'a self,
        listener: &'a ListenerConfig,
    ) -> impl Iterator<Item = &'a ClusterConfig> {
        listener.routes.iter().filter_map(|r| self.cluster(r))
    }

    /// Compact JSON with upstream's keys.
    pub fn to_json(&self) -> String {
        // Serialising plain structs with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// JSON when the text looks like JSON (so JSON-only syntax such as tab indentation works), YAML
/// otherwise; YAML 1.2 also reads most JSON.
fn parse_tree(text: &str) -> Result<serde_json::Value> {
    if text.trim_start().starts_with('{')
        && let Ok(v) = serde_json::from_str(text)
    {
        return Ok(v);
    }
    let value: serde_json::Value = serde_norway::from_str(text)
        .map_err(|e| ConfigError::Syntax(format!("neither YAML nor JSON: {e}")))?;
    Ok(value)
}
