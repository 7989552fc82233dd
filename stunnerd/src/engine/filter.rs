//! Peer filtering, the security boundary of the relay: a peer is reachable through a listener only if
//! it matches an endpoint of a cluster routed from that listener. The engine holds resolved rules
//! (STRICT_DNS names are resolved by the driver and passed in as IP endpoints).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use proto::config::Endpoint;

use super::stats::ClusterStats;

/// The peers one listener may relay to, with the per-cluster counters of the matching cluster.
#[derive(Debug, Clone, Default)]
pub struct PeerFilter {
    rules: Vec<(Endpoint, u16)>,
    clusters: Vec<Arc<ClusterStats>>,
}

impl PeerFilter {
    /// A filter that denies every peer.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Adds a cluster with its resolved endpoints (DNS endpoints must already be replaced by
    /// [`Endpoint::from_ip`] entries; any left unresolved never match).
    pub fn add_cluster(
        &mut self,
        endpoints: impl IntoIterator<Item = Endpoint>,
        stats: Arc<ClusterStats>,
    ) {
        let idx = u16::try_from(self.clusters.len()).unwrap_or(u16::MAX);
        self.clusters.push(stats);
        self.rules.extend(endpoints.into_iter().map(|e| (e, idx)));
    }

    /// The cluster allowing `peer` (IP and port), if any.
    #[inline]
    pub fn cluster_of(&self, peer: SocketAddr) -> Option<u16> {
        let (ip, port) = (peer.ip(), peer.port());
        self.rules
            .iter()
            .find(|(e, _)| e.matches(ip, port))
            .map(|(_, c)| *c)
    }

    /// Whether some endpoint allows the peer IP on at least one port (CreatePermission is per IP).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.rules.iter().any(|(e, _)| e.contains_ip(ip))
    }

    /// The counters of cluster `idx` (as returned by [`Self::cluster_of`]).
    #[inline]
    pub fn stats(&self, idx: u16) -> Option<&ClusterStats> {
        self.clusters.get(usize::from(idx)).map(|s| &**s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::config::ClusterType;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s, ClusterType::Static).expect("endpoint")
    }

    #[test]
    fn matches_prefix_and_port_range() {
        let mut f = PeerFilter::deny_all();
        assert_eq!(f.cluster_of("10.0.0.1:1".parse().unwrap()), None);
        f.add_cluster([ep("10.0.0.0/8:<10000-20000>")], Arc::default());
        f.add_cluster([ep("192.168.1.1")], Arc::default());
        assert_eq!(f.cluster_of("10.1.2.3:15000".parse().unwrap()), Some(0));
        assert_eq!(f.cluster_of("10.1.2.3:9999".parse().unwrap()), None);
        assert_eq!(f.cluster_of("192.168.1.1:5".parse().unwrap()), Some(1));
        assert_eq!(f.cluster_of("192.168.1.2:5".parse().unwrap()), None);
        assert!(f.allows_ip("10.9.9.9".parse().unwrap()));
        assert!(!f.allows_ip("11.0.0.1".parse().unwrap()));
        assert!(f.stats(1).is_some());
    }
}
