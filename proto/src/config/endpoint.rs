//! Cluster endpoints and peer matching, the security boundary of the relay: a peer is reachable
//! only if it matches an endpoint of a cluster routed from the listener.
//!
//! Syntax: `IP`, `IP/prefix` (IPv4 or IPv6), or for STRICT_DNS clusters a DNS name, each optionally
//! followed by `:<min-max>` (or `:<port>`) restricting the peer port, e.g. `10.0.0.0/8:<10000-20000>`,
//! `fd00::/8:<5000>`, `media.default.svc.cluster.local:<1-65535>`.

use std::fmt;
use std::net::IpAddr;

use super::ClusterType;

/// Why a cluster endpoint does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// A bound of the port range is not a port number.
    #[error("invalid port {0:?} in port range")]
    InvalidPort(String),
    /// The lower bound of the port range exceeds the upper one.
    #[error("empty port range <{min}-{max}>")]
    EmptyPortRange {
        /// The lower bound given.
        min: u16,
        /// The upper bound given.
        max: u16,
    },
    /// The endpoint ends in `>` but has no `:<` before it.
    #[error("malformed port range in {0:?}, expected <host>:<min-max>")]
    MalformedPortRange(String),
    /// The part before `/` of a prefix is not an IP address.
    #[error("invalid IP address in prefix {0:?}")]
    InvalidPrefixAddress(String),
    /// The prefix length is not a number up to 32 (IPv4) or 128 (IPv6).
    #[error("invalid prefix length {len:?}, must be 0-{max}")]
    InvalidPrefixLength {
        /// The length as written.
        len: String,
        /// The largest length of the address family.
        max: u8,
    },
    /// A STRICT_DNS endpoint that is neither an IP (prefix) nor a valid DNS name.
    #[error("{0:?} is neither an IP address nor a DNS name")]
    NotIpOrDnsName(String),
    /// A STATIC endpoint that is not an IP (prefix).
    #[error("{0:?} is not an IP address or prefix")]
    NotIp(String),
}

/// Inclusive peer-port range of an endpoint; `0-65535` when the endpoint gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// Lowest allowed port.
    pub min: u16,
    /// Highest allowed port (>= `min`).
    pub max: u16,
}

impl PortRange {
    /// Every port.
    pub const ANY: Self = Self {
        min: 0,
        max: u16::MAX,
    };

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.min..=self.max).contains(&port)
    }

    fn parse(raw: &str) -> Result<Self, EndpointError> {
        let (lo, hi) = raw.split_once('-').unwrap_or((raw, raw));
        let num = |s: &str| {
            s.trim()
                .parse::<u16>()
                .map_err(|_| EndpointError::InvalidPort(s.trim().to_owned()))
        };
        let (min, max) = (num(lo)?, num(hi)?);
        if min > max {
            return Err(EndpointError::EmptyPortRange { min, max });
        }
        Ok(Self { min, max })
    }
}

/// What an endpoint names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EndpointHost {
    /// An IP prefix; `addr` is already masked to `len` bits (a single IP is a /32 or /128).
    Prefix {
        /// Network address, host bits zero.
        addr: IpAddr,
        /// Prefix length (<= 32 for IPv4, <= 128 for IPv6).
        len: u8,
    },
    /// A DNS name (STRICT_DNS clusters); matched against its resolved addresses.
    Dns(String),
}

/// One parsed cluster endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The addresses the endpoint names.
    pub host: EndpointHost,
    /// The peer ports it allows.
    pub ports: PortRange,
}

impl Endpoint {
    /// Parses one endpoint of a cluster of type `kind`. STRICT_DNS clusters accept DNS names as
    /// well as IPs; STATIC clusters only IPs and prefixes.
    pub fn parse(raw: &str, kind: ClusterType) -> Result<Self, EndpointError> {
        let raw = raw.trim();
        let (host, ports) = split_port_range(raw)?;
        if let Some(prefix) = parse_prefix(host)? {
            return Ok(Self {
                host: prefix,
                ports,
            });
        }
        match kind {
            ClusterType::StrictDns if is_dns_name(host) => Ok(Self {
                host: EndpointHost::Dns(host.trim_end_matches('.').to_owned()),
                ports,
            }),
            ClusterType::StrictDns => Err(EndpointError::NotIpOrDnsName(host.to_owned())),
            ClusterType::Static => Err(EndpointError::NotIp(host.to_owned())),
        }
    }

    /// An endpoint for one IP (e.g. a resolved DNS address) with the given port range.
    pub fn from_ip(ip: IpAddr, ports: PortRange) -> Self {
        let ip = ip.to_canonical();
        let len = if ip.is_ipv4() { 32 } else { 128 };
        Self {
            host: EndpointHost::Prefix { addr: ip, len },
            ports,
        }
    }

    /// The DNS name to resolve, for STRICT_DNS endpoints.
    pub fn dns_name(&self) -> Option<&str> {
        match &self.host {
            EndpointHost::Dns(name) => Some(name),
            EndpointHost::Prefix { .. } => None,
        }
    }

    /// Whether the peer `ip:port` is allowed by this endpoint. IPv4-mapped IPv6 peers match IPv4
    /// prefixes. A DNS endpoint never matches by itself: resolve it and build endpoints with
    /// [`Endpoint::from_ip`] (keeping its port range).
    pub fn matches(&self, ip: IpAddr, port: u16) -> bool {
        self.ports.contains(port) && self.contains_ip(ip)
    }

    /// Whether the IP lies in the prefix, regardless of the port.
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        let EndpointHost::Prefix { addr, len } = &self.host else {
            return false;
        };
        match (ip.to_canonical(), addr) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => mask_v4(u32::from(ip), *len) == u32::from(*net),
            (IpAddr::V6(ip), IpAddr::V6(net)) => mask_v6(u128::from(ip), *len) == u128::from(*net),
            _ => false,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            EndpointHost::Prefix { addr, len } => write!(f, "{addr}/{len}")?,
            EndpointHost::Dns(name) => f.write_str(name)?,
        }
        if self.ports != PortRange::ANY {
            write!(f, ":<{}-{}>", self.ports.min, self.ports.max)?;
        }
        Ok(())
    }
}

fn split_port_range(raw: &str) -> Result<(&str, PortRange), EndpointError> {
    let Some(body) = raw.strip_suffix('>') else {
        return Ok((raw, PortRange::ANY));
    };
    let Some((host, range)) = body.rsplit_once(":<") else {
        return Err(EndpointError::MalformedPortRange(raw.to_owned()));
    };
    Ok((host, PortRange::parse(range)?))
}

fn parse_prefix(host: &str) -> Result<Option<EndpointHost>, EndpointError> {
    let (ip, len) = match host.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (host, None),
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return match len {
            Some(_) => Err(EndpointError::InvalidPrefixAddress(host.to_owned())),
            None => Ok(None),
        };
    };
    let ip = ip.to_canonical();
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(l) if l <= max => l,
            _ => {
                return Err(EndpointError::InvalidPrefixLength {
                    len: l.to_owned(),
                    max,
                });
            }
        },
    };
    let addr = match ip {
        IpAddr::V4(v4) => IpAddr::V4(mask_v4(u32::from(v4), len).into()),
        IpAddr::V6(v6) => IpAddr::V6(mask_v6(u128::from(v6), len).into()),
    };
    Ok(Some(EndpointHost::Prefix { addr, len }))
}

fn mask_v4(ip: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        ip & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask_v6(ip: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        ip & (u128::MAX << (128 - u32::from(len)))
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens (underscores
/// tolerated, as Kubernetes SRV-style names use them), at most 253 characters.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
