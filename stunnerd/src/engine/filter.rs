//! Peer filtering, the security boundary of the relay: a peer is reachable through a listener only if
//! it matches an endpoint of a cluster routed from that listener and is not on the built-in
//! deny-list (`special`: special-purpose ranges unless a route names them explicitly, and the
//! server's own listener and relay addresses, always). The engine holds resolved rules (STRICT_DNS
//! names are resolved by the driver and passed in as IP endpoints, which never open a special range).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use proto::config::Endpoint;

use super::special::{self, RelayAddrs};
use super::stats::ClusterStats;

/// One endpoint of a cluster.
#[derive(Debug, Clone)]
struct Rule {
    endpoint: Endpoint,
    cluster: u16,
    /// Written wholly inside a special-purpose range: may reach it.
    opens_special: bool,
}

/// The server's own addresses, which no peer may be.
#[derive(Debug, Clone, Default)]
pub struct OwnAddrs {
    /// Listener addresses; an unspecified IP stands for every IP in `ips` (and loopback).
    pub listeners: Vec<SocketAddr>,
    /// IPs the server's listeners and relays are bound on (STUNNER_ADDR included).
    pub ips: Vec<IpAddr>,
    /// Relay sockets are bound on IPs not known in advance (wildcard listener without
    /// STUNNER_ADDR): check every peer against the live relay addresses.
    pub any_ip: bool,
    /// Live relay sockets of every worker.
    pub relays: Arc<RelayAddrs>,
}

impl OwnAddrs {
    fn is_own_ip(&self, ip: IpAddr) -> bool {
        self.any_ip || ip.is_loopback() || ip.is_unspecified() || self.ips.contains(&ip)
    }

    /// Whether `peer` (canonical) is one of the server's own listener or relay addresses.
    #[inline]
    fn contains(&self, peer: SocketAddr) -> bool {
        let ip = peer.ip();
        if !self.is_own_ip(ip) {
            return false;
        }
        let listener = self
            .listeners
            .iter()
            .any(|l| l.port() == peer.port() && (l.ip() == ip || l.ip().is_unspecified()));
        listener || self.relays.contains(peer)
    }
}

/// The peers one listener may relay to, with the per-cluster counters of the matching cluster.
#[derive(Debug, Clone, Default)]
pub struct PeerFilter {
    rules: Vec<Rule>,
    clusters: Vec<Arc<ClusterStats>>,
    own: OwnAddrs,
}

impl PeerFilter {
    /// A filter that denies every peer.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// The server's own addresses, refused as peers whatever the routes say.
    pub fn set_own(&mut self, own: OwnAddrs) {
        self.own = own;
    }

    /// Adds a cluster with the endpoints of its config (an endpoint written wholly inside a
    /// special-purpose range opens it).
    pub fn add_cluster(
        &mut self,
        endpoints: impl IntoIterator<Item = Endpoint>,
        stats: Arc<ClusterStats>,
    ) {
        self.add_cluster_rules(endpoints.into_iter().map(|e| (e, true)), stats);
    }

    /// Adds a cluster with `(endpoint, written in the config)` pairs: the resolved addresses of DNS
    /// endpoints ([`Endpoint::from_ip`], `false`) never open a special-purpose range.
    pub fn add_cluster_rules(
        &mut self,
        endpoints: impl IntoIterator<Item = (Endpoint, bool)>,
        stats: Arc<ClusterStats>,
    ) {
        let cluster = u16::try_from(self.clusters.len()).unwrap_or(u16::MAX);
        self.clusters.push(stats);
        self.rules
            .extend(endpoints.into_iter().map(|(endpoint, literal)| Rule {
                opens_special: literal && special::opens_special(&endpoint),
                endpoint,
                cluster,
            }));
    }

    /// The cluster allowing `peer` (IP and port), if any.
    #[inline]
    pub fn cluster_of(&self, peer: SocketAddr) -> Option<u16> {
        let peer = special::canonical(peer);
        if self.own.contains(peer) {
            return None;
        }
        let (ip, port) = (peer.ip(), peer.port());
        let special = special::is_special(ip);
        self.rules
            .iter()
            .find(|r| r.endpoint.matches(ip, port) && (r.opens_special || !special))
            .map(|r| r.cluster)
    }

    /// Whether some endpoint allows the peer IP on at least one port (CreatePermission is per IP;
    /// the server's own addresses are refused per packet by [`Self::cluster_of`]).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let special = special::is_special(ip);
        self.rules
            .iter()
            .any(|r| r.endpoint.contains_ip(ip) && (r.opens_special || !special))
    }

    /// Whether `peer` is one of the server's own listener or relay addresses (checked for every
    /// packet: a relay port may be bound after a channel to it).
    #[inline]
    pub fn is_own(&self, peer: SocketAddr) -> bool {
        self.own.contains(special::canonical(peer))
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
