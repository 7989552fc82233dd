//! The Gateways' configs as the credential service last heard them from CDS, and whether the
//! watch is connected. Swapped whole (`replace`) on every (re)connection, changed one config at a
//! time (`apply`) by the watch; readers take a cheap snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use proto::config::StunnerConfig;

/// Configs by `admin.name` (`namespace/gateway`).
pub type Gateways = BTreeMap<String, StunnerConfig>;

/// Shared handle to the configs.
#[derive(Debug, Clone, Default)]
pub struct Store {
    configs: Arc<RwLock<Arc<Gateways>>>,
    connected: Arc<AtomicBool>,
}

impl Store {
    /// The current configs.
    pub fn snapshot(&self) -> Arc<Gateways> {
        match self.configs.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Gateways)) {
        let mut guard = match self.configs.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
    }

    /// Replaces every config (a fresh listing after a (re)connection).
    pub fn replace(&self, configs: Vec<StunnerConfig>) {
        self.update(|g| {
            g.clear();
            for c in configs.into_iter().filter(|c| !c.is_deleted()) {
                g.insert(c.admin.name.clone(), c);
            }
        });
    }

    /// Applies one pushed config: a deletion marker removes the Gateway at once.
    pub fn apply(&self, config: StunnerConfig) {
        self.update(|g| {
            if config.is_deleted() {
                g.remove(&config.admin.name);
            } else {
                g.insert(config.admin.name.clone(), config);
            }
        });
    }

    /// Whether the CDS watch is up (readiness).
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Records the state of the CDS watch.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str) -> StunnerConfig {
        let mut c = StunnerConfig::default();
        c.admin.name = name.into();
        c.auth.realm = "r".into();
        c
    }

    #[test]
    fn deletion_marker_removes_and_replace_resets() {
        let s = Store::default();
        s.apply(cfg("a/x"));
        s.apply(cfg("a/y"));
        let before = s.snapshot();
        s.apply(StunnerConfig::deleted("a/x"));
        assert_eq!(s.snapshot().keys().collect::<Vec<_>>(), ["a/y"]);
        assert_eq!(before.len(), 2, "snapshots are immutable");
        s.replace(vec![cfg("b/z")]);
        assert_eq!(s.snapshot().keys().collect::<Vec<_>>(), ["b/z"]);
    }
}
