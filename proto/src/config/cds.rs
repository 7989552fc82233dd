//! Config Discovery Service message types (docs/ARCHITECTURE.md §5.2): the config list of the REST endpoints and the
//! deletion notice pushed over the watch WebSocket when a Gateway goes away.
//!
//! The deletion notice is upstream STUNner's "zero config" (`pkg/config/client` `ZeroConfig`):
//! static auth with the dummy credentials below, the default realm, no listeners, no clusters.
//! Upstream's CDS server sends exactly that and upstream's stunnerd recognises it after
//! validation (`IsConfigDeleted`), so both our and upstream's clients and servers interoperate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{API_VERSION, AdminConfig, AuthConfig, AuthType, DEFAULT_REALM, StunnerConfig};

/// Username of the zero config (upstream's `EmptyConfig`).
pub const ZERO_CONFIG_USERNAME: &str = "dummy-username";
/// Password of the zero config (upstream's `EmptyConfig`).
pub const ZERO_CONFIG_PASSWORD: &str = "dummy-password";

/// `GET /api/v1/configs[/{namespace}]` body: `{"version":"v1","items":[config...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigList {
    /// API version, `v1`.
    pub version: String,
    /// The matching configs.
    #[serde(default)]
    pub items: Vec<StunnerConfig>,
}

impl ConfigList {
    /// A `v1` list of `items`.
    pub fn new(items: Vec<StunnerConfig>) -> Self {
        Self {
            version: API_VERSION.to_owned(),
            items,
        }
    }
}

impl StunnerConfig {
    /// Upstream's zero config for the dataplane `name` (`namespace/name`): what the CDS server
    /// sends when that Gateway is deleted, and what a watching stunnerd starts from. It passes
    /// validation (upstream's stunnerd validates every config it receives).
    pub fn zero(name: &str) -> Self {
        let credentials = BTreeMap::from([
            ("username".to_owned(), ZERO_CONFIG_USERNAME.to_owned()),
            ("password".to_owned(), ZERO_CONFIG_PASSWORD.to_owned()),
        ]);
        Self {
            version: API_VERSION.to_owned(),
            admin: AdminConfig {
                name: name.to_owned(),
                ..AdminConfig::default()
            },
            auth: AuthConfig {
                auth_type: AuthType::Static,
                realm: DEFAULT_REALM.to_owned(),
                credentials,
            },
            ..Self::default()
        }
    }

    /// The deletion notice for the Gateway `name`: upstream's zero config.
    pub fn deleted(name: &str) -> Self {
        Self::zero(name)
    }

    /// Whether this is a deletion notice, compared as upstream's `IsConfigDeleted` does: equal
    /// to the zero config of the same name once both are validated (defaults filled). A config
    /// that only differs in realm, credentials, log level or anything else is a real config.
    /// The bare `{admin:{name}}` marker older versions of this operator sent is recognised too.
    pub fn is_deleted(&self) -> bool {
        if self.admin.name.is_empty() {
            return false;
        }
        let mut zero = Self::zero(&self.admin.name);
        let mut this = self.clone();
        if zero.validate().is_err() || this.validate().is_err() {
            return self.is_bare_marker();
        }
        this == zero
    }

    /// The legacy marker: a name and nothing else.
    fn is_bare_marker(&self) -> bool {
        let bare_admin = AdminConfig {
            name: self.admin.name.clone(),
            ..AdminConfig::default()
        };
        self.admin == bare_admin
            && self.auth == AuthConfig::default()
            && self.listeners.is_empty()
            && self.clusters.is_empty()
    }
}
