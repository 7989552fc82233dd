//! `http://address:port/path` endpoints of the metrics and health servers (`admin.metrics_endpoint`,
//! `admin.healthcheck_endpoint`), resolved to the socket address stunnerd binds.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Default port of the metrics server when the endpoint names none.
pub const DEFAULT_METRICS_PORT: u16 = 8080;
/// Default port of the health server when the endpoint names none.
pub const DEFAULT_HEALTHCHECK_PORT: u16 = 8086;
/// Health server endpoint used when `admin.healthcheck_endpoint` is absent.
pub const DEFAULT_HEALTHCHECK_ENDPOINT: &str = "http://:8086";

/// Why an HTTP endpoint does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpEndpointError {
    /// A scheme other than `http`.
    #[error("unsupported scheme {0:?}, expected http")]
    UnsupportedScheme(String),
    /// The port is not a number in 0-65535.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// The host is neither empty, `localhost` nor an IP address.
    #[error("host {0:?} is not an IP address")]
    HostNotIp(String),
    /// An IPv6 host opened with `[` is never closed.
    #[error("unterminated '[' in {0:?}")]
    UnterminatedBracket(String),
    /// Something other than `:port` follows a bracketed IPv6 host.
    #[error("garbage after ']' in {0:?}")]
    GarbageAfterBracket(String),
    /// An IPv6 host without brackets (its colons cannot be told from the port's).
    #[error("IPv6 host in {0:?} must be in brackets")]
    UnbracketedIpv6(String),
}

/// A bindable HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpoint {
    /// Address to bind; an empty host means all interfaces (`0.0.0.0`).
    pub addr: SocketAddr,
    /// Path to serve at, starting with `/` (`/` when the endpoint gives none).
    pub path: String,
}

/// Parses `http://host:port/path`. The scheme may be omitted; `host` is an IP (IPv6 in brackets),
/// `localhost` or empty; a missing port is `default_port`, a missing path `/`. Query and fragment
/// are ignored.
pub fn parse_http_endpoint(
    raw: &str,
    default_port: u16,
) -> Result<HttpEndpoint, HttpEndpointError> {
    let raw = raw.trim();
    let rest = match raw.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => return Err(HttpEndpointError::UnsupportedScheme(scheme.to_owned())),
        None => raw,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let (host, port) = split_host_port(hostport)?;
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| HttpEndpointError::InvalidPort(p.to_owned()))?,
    };
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        h if h.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .parse()
            .map_err(|_| HttpEndpointError::HostNotIp(h.to_owned()))?,
    };
    Ok(HttpEndpoint {
        addr: SocketAddr::new(ip, port),
        path,
    })
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), HttpEndpointError> {
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| HttpEndpointError::UnterminatedBracket(hostport.to_owned()))?;
        return match after {
            "" => Ok((host, None)),
            a => a
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or_else(|| HttpEndpointError::GarbageAfterBracket(hostport.to_owned())),
        };
    }
    match hostport.matches(':').count() {
        0 => Ok((hostport, None)),
        1 => Ok(hostport
            .split_once(':')
            .map(|(h, p)| (h, Some(p)))
            .unwrap_or((hostport, None))),
        _ => Err(HttpEndpointError::UnbracketedIpv6(hostport.to_owned())),
    }
}
