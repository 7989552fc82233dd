//! The config set the CDS server serves: the renderer's latest stunnerd configs by Gateway,
//! behind a `tokio::sync::watch` channel so each WebSocket subscriber wakes on every change.

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::config::StunnerConfig;
use tokio::sync::watch;

use crate::store::ObjectKey;

/// stunnerd configs by Gateway key (`admin.name` = `namespace/name`).
pub type ConfigSet = BTreeMap<ObjectKey, StunnerConfig>;

/// Shared handle to the published config set.
#[derive(Clone, Debug)]
pub struct ConfigStore {
    tx: Arc<watch::Sender<Arc<ConfigSet>>>,
}

impl Default for ConfigStore {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(Arc::new(ConfigSet::new()))),
        }
    }

    /// Publishes a new set; subscribers are woken only when it differs from the current one.
    /// Returns whether anything changed.
    pub fn publish(&self, set: ConfigSet) -> bool {
        self.tx.send_if_modified(|cur| {
            if **cur == set {
                return false;
            }
            *cur = Arc::new(set);
            true
        })
    }

    /// The current set.
    pub fn current(&self) -> Arc<ConfigSet> {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every later publication.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ConfigSet>> {
        self.tx.subscribe()
    }

    /// How many subscribers are live: one per CDS WebSocket watch.
    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Which configs a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Every config.
    All,
    /// Configs of Gateways in one namespace.
    Namespace(String),
    /// The config of one Gateway.
    One(ObjectKey),
}

impl Selector {
    /// Whether the Gateway `key` is selected.
    pub fn matches(&self, key: &ObjectKey) -> bool {
        match self {
            Self::All => true,
            Self::Namespace(ns) => key.namespace == *ns,
            Self::One(k) => k == key,
        }
    }

    /// The selected configs of `set`, in key order.
    pub fn select<'a>(
        &'a self,
        set: &'a ConfigSet,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a StunnerConfig)> + 'a {
        set.iter().filter(move |(k, _)| self.matches(k))
    }
}

/// What a subscriber must be sent to go from `old` to `new`: changed or added configs, and a
/// deletion marker (`StunnerConfig::deleted`) for each selected config that disappeared.
pub fn diff(sel: &Selector, old: &ConfigSet, new: &ConfigSet) -> Vec<StunnerConfig> {
    let mut out: Vec<StunnerConfig> = sel
        .select(new)
        .filter(|(k, c)| old.get(k) != Some(c))
        .map(|(_, c)| c.clone())
        .collect();
    out.extend(
        sel.select(old)
            .filter(|(k, _)| !new.contains_key(k))
            .map(|(k, _)| StunnerConfig::deleted(&k.to_string())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, realm: &str) -> StunnerConfig {
        let mut c = StunnerConfig::default();
        c.admin.name = name.into();
        c.auth.realm = realm.into();
        c
    }

    fn set(items: &[(&str, &str, &str)]) -> ConfigSet {
        items
            .iter()
            .map(|(ns, n, realm)| (ObjectKey::new(*ns, *n), cfg(&format!("{ns}/{n}"), realm)))
            .collect()
    }

    #[test]
    fn diff_reports_changes_additions_and_deletions() {
        let old = set(&[("a", "x", "r1"), ("a", "y", "r1"), ("b", "z", "r1")]);
        let new = set(&[("a", "x", "r2"), ("b", "z", "r1"), ("a", "w", "r1")]);
        let d = diff(&Selector::All, &old, &new);
        let names: Vec<(&str, bool)> = d
            .iter()
            .map(|c| (c.admin.name.as_str(), c.is_deleted()))
            .collect();
        assert_eq!(names, [("a/w", false), ("a/x", false), ("a/y", true)]);
        assert!(diff(&Selector::Namespace("b".into()), &old, &new).is_empty());
        let one = diff(&Selector::One(ObjectKey::new("a", "y")), &old, &new);
        assert!(one.len() == 1 && one[0].is_deleted());
    }

    #[test]
    fn publish_skips_identical_sets() {
        let store = ConfigStore::new();
        let mut rx = store.subscribe();
        assert!(store.publish(set(&[("a", "x", "r")])));
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        assert!(!store.publish(set(&[("a", "x", "r")])));
        assert!(!rx.has_changed().unwrap());
    }
}
