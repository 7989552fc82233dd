//! The built-in peer deny-list: special-purpose addresses (RFC 6890 and friends) that a TURN relay
//! must not reach even when a broad route covers them, and the server's own addresses (listeners and
//! relay sockets), which would let a client loop the relay onto itself.
//!
//! ```text
//!   peer ─canonical (IPv4-mapped → IPv4)─▶ own address? ──yes──▶ denied, always
//!                                          special range? ─yes─▶ denied unless an endpoint written
//!                                                                 wholly inside that range routes it
//! ```
//! A route that names a special range explicitly (`127.0.0.0/8`, `169.254.169.254`) is the documented
//! opt-in; `0.0.0.0/0`, `::/0` or a pod CIDR that merely covers such an address is not.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::config::{Endpoint, EndpointHost};

/// A special-purpose range: network address and prefix length.
type Range = (IpAddr, u8);

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Range {
    (IpAddr::V4(Ipv4Addr::new(a, b, c, d)), len)
}

const fn v6(segs: [u16; 8], len: u8) -> Range {
    let [a, b, c, d, e, f, g, h] = segs;
    (IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)), len)
}

/// Denied peer ranges (IPv4-mapped IPv6 peers are checked as IPv4).
const SPECIAL: [Range; 13] = [
    v4(0, 0, 0, 0, 8),                              // "this network", 0.0.0.0
    v4(127, 0, 0, 0, 8),                            // loopback
    v4(169, 254, 0, 0, 16),                         // link-local, cloud metadata (169.254.169.254)
    v4(224, 0, 0, 0, 4),                            // multicast
    v4(240, 0, 0, 0, 4),                            // reserved, limited broadcast 255.255.255.255
    v6([0; 8], 128),                                // unspecified
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128),              // loopback
    v6([0; 8], 96), // IPv4-compatible (deprecated), e.g. ::127.0.0.1
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // site-local (deprecated)
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), // multicast
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), // NAT64 of any IPv4 address
    v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128), // AWS instance metadata over IPv6
];

fn in_range(ip: IpAddr, (net, len): Range) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net)
        }
        _ => false,
    }
}

/// The special range holding `ip` (canonical form), if any.
fn range_of(ip: IpAddr) -> Option<Range> {
    let ip = ip.to_canonical();
    SPECIAL.iter().copied().find(|&r| in_range(ip, r))
}

/// Whether `ip` (any form) is a special-purpose address relaying must not reach by default.
pub fn is_special(ip: IpAddr) -> bool {
    range_of(ip).is_some()
}

/// Whether endpoint `e` was written wholly inside one special range: the explicit opt-in that lets
/// its cluster reach those addresses.
pub fn opens_special(e: &Endpoint) -> bool {
    let EndpointHost::Prefix { addr, len } = &e.host else {
        return false;
    };
    range_of(*addr).is_some_and(|(_, range_len)| {
        // The endpoint's own prefix must be at least as long as the range's.
        let own_len = if addr.to_canonical().is_ipv4() && addr.is_ipv6() {
            len.saturating_sub(96)
        } else {
            *len
        };
        own_len >= range_len
    })
}

/// The relay addresses of live allocations (all workers), for refusing peers that would loop the
/// relay onto itself. Read per relayed packet for peers on one of the server's own IPs, so the read
/// side takes no lock: a bitmap of the ports some relay socket is bound on answers "no" for every
/// other port (one relaxed atomic load); only a port in use goes on to the exact set.
#[derive(Debug)]
pub struct RelayAddrs {
    ports: Box<[AtomicU64]>,
    addrs: Mutex<Addrs>,
}

/// The exact relay addresses, and how many of them use each port.
#[derive(Debug, Default)]
struct Addrs {
    set: HashSet<SocketAddr>,
    per_port: HashMap<u16, u32>,
}

impl Default for RelayAddrs {
    fn default() -> Self {
        Self {
            ports: (0..1024).map(|_| AtomicU64::new(0)).collect(),
            addrs: Mutex::default(),
        }
    }
}

/// The bitmap word and bit of `port`.
fn port_bit(port: u16) -> (usize, u64) {
    (usize::from(port / 64), 1 << (port % 64))
}

impl RelayAddrs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Addrs> {
        self.addrs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a bound relay socket.
    pub fn insert(&self, addr: SocketAddr) {
        let mut addrs = self.lock();
        if addrs.set.insert(canonical(addr)) {
            *addrs.per_port.entry(addr.port()).or_insert(0) += 1;
            let (word, bit) = port_bit(addr.port());
            self.ports[word].fetch_or(bit, Ordering::Release);
        }
    }

    /// Forgets a closed relay socket.
    pub fn remove(&self, addr: SocketAddr) {
        let mut addrs = self.lock();
        if !addrs.set.remove(&canonical(addr)) {
            return;
        }
        let port = addr.port();
        let left = addrs.per_port.get_mut(&port).map_or(0, |n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == 0 {
            addrs.per_port.remove(&port);
            let (word, bit) = port_bit(port);
            self.ports[word].fetch_and(!bit, Ordering::Release);
        }
    }

    /// Whether `addr` is a live relay socket.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        let (word, bit) = port_bit(addr.port());
        if self.ports[word].load(Ordering::Acquire) & bit == 0 {
            return false;
        }
        self.lock().set.contains(&canonical(addr))
    }

    /// Whether some live relay socket is bound on `ip`.
    pub fn has_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.lock().set.iter().any(|a| a.ip() == ip)
    }
}

/// `addr` with an IPv4-mapped IP turned into IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::config::ClusterType;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn special_ranges_in_every_form_are_denied() {
        for s in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "0.1.2.3",
            "169.254.169.254",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "fe80::1",
            "ff02::1",
            "64:ff9b::7f00:1",
            "fd00:ec2::254",
        ] {
            assert!(is_special(ip(s)), "{s}");
        }
        for s in [
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "fd00::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_special(ip(s)), "{s}");
        }
    }

    #[test]
    fn only_endpoints_written_inside_a_special_range_open_it() {
        let ep = |s: &str| Endpoint::parse(s, ClusterType::Static).expect("endpoint");
        assert!(opens_special(&ep("127.0.0.0/8")));
        assert!(opens_special(&ep("127.0.0.1")));
        assert!(opens_special(&ep("169.254.169.254")));
        assert!(opens_special(&ep("::1")));
        assert!(!opens_special(&ep("0.0.0.0/0")));
        assert!(!opens_special(&ep("0.0.0.0/1")));
        assert!(!opens_special(&ep("::/0")));
        assert!(!opens_special(&ep("10.0.0.0/8")));
        assert!(!opens_special(&ep("169.254.0.0/15")));
    }

    #[test]
    fn relay_addresses_are_tracked_in_canonical_form() {
        let r = RelayAddrs::default();
        let a: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        r.insert(a);
        assert!(r.contains("[::ffff:127.0.0.1]:5000".parse().expect("addr")));
        assert!(r.has_ip(ip("127.0.0.1")));
        r.remove(a);
        assert!(!r.contains(a));
        // Two relays on one port (IPv4 and IPv6): the port stays marked until both are gone.
        let v6: SocketAddr = "[::1]:5000".parse().expect("addr");
        r.insert(a);
        r.insert(v6);
        r.insert(v6);
        r.remove(a);
        assert!(r.contains(v6) && !r.contains(a));
        r.remove(v6);
        assert!(!r.contains(v6));
        r.insert("127.0.0.1:5001".parse().expect("addr"));
        assert!(!r.contains(a), "a neighbouring port does not mark this one");
    }
}
