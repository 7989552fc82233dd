//! Config Discovery Service message types (docs/ARCHITECTURE.md §5.2): the config list of the REST endpoints and
//! the "deleted config" marker pushed over the watch WebSocket when a Gateway goes away.

use serde::{Deserialize, Serialize};

use super::{API_VERSION, AdminConfig, AuthConfig, StunnerConfig};

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
    /// The marker the CDS server sends when the Gateway `name` (`namespace/name`) is deleted: a
    /// config with only `admin.name` set.
    pub fn deleted(name: &str) -> Self {
        Self {
            version: API_VERSION.to_owned(),
            admin: AdminConfig {
                name: name.to_owned(),
                ..AdminConfig::default()
            },
            ..Self::default()
        }
    }

    /// Whether this is a deleted-config marker: a name and nothing else (no listeners, clusters,
    /// credentials, realm or admin settings). Check before `validate`, which fills defaults.
    pub fn is_deleted(&self) -> bool {
        let bare_admin = AdminConfig {
            name: self.admin.name.clone(),
            ..AdminConfig::default()
        };
        !self.admin.name.is_empty()
            && self.admin == bare_admin
            && self.auth == AuthConfig::default()
            && self.listeners.is_empty()
            && self.clusters.is_empty()
    }
}
