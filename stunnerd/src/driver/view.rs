//! The config as the driver uses it: parsed once, right after validation, into typed values
//! (listener IPs, cluster endpoints). A config whose addresses or endpoints do not parse is refused
//! as a whole, naming the field at fault, rather than having parts of it dropped later.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use proto::config::{ClusterProtocol, Endpoint, ListenerConfig, StunnerConfig};

use super::error::ApplyError;

/// One listener with its parsed IP.
#[derive(Debug, Clone)]
pub(crate) struct ListenerView {
    /// The listener as configured.
    pub(crate) cfg: ListenerConfig,
    /// Its address.
    pub(crate) ip: IpAddr,
}

/// One cluster with its parsed endpoints.
#[derive(Debug, Clone)]
pub(crate) struct ClusterView {
    /// Cluster name (the metrics label).
    pub(crate) name: String,
    /// A UDP cluster (relays are UDP only: other clusters admit no peer).
    pub(crate) udp: bool,
    /// Its endpoints (DNS names still to be resolved).
    pub(crate) endpoints: Vec<Endpoint>,
}

/// A validated config in typed form, with the config itself (for `/status` and restarts).
#[derive(Debug, Clone)]
pub(crate) struct ConfigView {
    /// The config as received.
    pub(crate) raw: StunnerConfig,
    /// Listeners in config order.
    pub(crate) listeners: Vec<ListenerView>,
    clusters: BTreeMap<String, ClusterView>,
}

impl ConfigView {
    /// Parses `raw` (already validated).
    pub(crate) fn new(raw: StunnerConfig) -> Result<Self, ApplyError> {
        let listeners = raw
            .listeners
            .iter()
            .map(|l| {
                let ip = l.ip().ok_or_else(|| ApplyError::Address {
                    listener: l.name.clone(),
                    value: l.address.clone(),
                })?;
                Ok(ListenerView { cfg: l.clone(), ip })
            })
            .collect::<Result<Vec<_>, ApplyError>>()?;
        let clusters = raw
            .clusters
            .iter()
            .map(|c| {
                let endpoints = c
                    .parsed_endpoints()
                    .map_err(|source| ApplyError::Endpoints {
                        cluster: c.name.clone(),
                        source,
                    })?;
                let view = ClusterView {
                    name: c.name.clone(),
                    udp: c.protocol == ClusterProtocol::Udp,
                    endpoints,
                };
                Ok((c.name.clone(), view))
            })
            .collect::<Result<BTreeMap<_, _>, ApplyError>>()?;
        Ok(Self {
            raw,
            listeners,
            clusters,
        })
    }

    /// The listener called `name`.
    pub(crate) fn listener(&self, name: &str) -> Option<&ListenerView> {
        self.listeners.iter().find(|l| l.cfg.name == name)
    }

    /// The UDP clusters routed from `l` (unknown route names skipped).
    pub(crate) fn routed_udp_clusters<'a>(
        &'a self,
        l: &'a ListenerView,
    ) -> impl Iterator<Item = &'a ClusterView> {
        l.cfg
            .routes
            .iter()
            .filter_map(|r| self.clusters.get(r))
            .filter(|c| c.udp)
    }

    /// The STRICT_DNS names of every cluster.
    pub(crate) fn dns_names(&self) -> Vec<String> {
        self.clusters
            .values()
            .flat_map(|c| &c.endpoints)
            .filter_map(|e| e.dns_name().map(str::to_owned))
            .collect()
    }

    /// Every listener's address (canonical IP).
    pub(crate) fn listener_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .map(|l| SocketAddr::new(l.ip.to_canonical(), l.cfg.port))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(address: &str, endpoint: &str) -> StunnerConfig {
        let yaml = format!(
            "version: v1\nadmin: {{name: t}}\nauth: {{type: none}}\n\
             listeners: [{{name: l, protocol: TURN-UDP, address: \"{address}\", port: 3478, \
             routes: [c, gone]}}]\n\
             clusters: [{{name: c, type: STATIC, protocol: UDP, endpoints: [\"{endpoint}\"]}}, \
             {{name: t, type: STATIC, protocol: TCP, endpoints: [10.0.0.9]}}]\n"
        );
        StunnerConfig::parse(&yaml).expect("parses")
    }

    #[test]
    fn a_valid_config_is_typed_once_and_bad_values_are_named() {
        let view = ConfigView::new(config("127.0.0.1", "10.0.0.0/8")).expect("view");
        let l = view.listener("l").expect("listener");
        assert_eq!(l.ip.to_string(), "127.0.0.1");
        let routed: Vec<&str> = view
            .routed_udp_clusters(l)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(routed, ["c"]);
        assert_eq!(
            view.listener_addrs(),
            ["127.0.0.1:3478".parse::<SocketAddr>().expect("addr")]
        );
        assert!(view.dns_names().is_empty());
        let err = ConfigView::new(config("not-an-ip", "10.0.0.0/8")).expect_err("address");
        assert!(err.to_string().contains("not-an-ip"), "{err}");
        let mut bad = config("127.0.0.1", "10.0.0.0/8");
        bad.clusters[0].endpoints = vec!["10.0.0.0/99".into()];
        let err = ConfigView::new(bad).expect_err("endpoint");
        assert!(err.to_string().contains("cluster c"), "{err}");
    }
}
