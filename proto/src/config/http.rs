//! `http://address:port/path` endpoints of the metrics and health servers (`admin.metrics_endpoint`,
//! `admin.healthcheck_endpoint`), resolved to the socket address stunnerd binds.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Default port of the metrics server when the endpoint names none.
pub const DEFAULT_METRICS_PORT: u16 = 8080;
/// Default port of the health server when the endpoint names none.
pub const DEFAULT_HEALTHCHECK_PORT: u16 = 8086;
/// Health server endpoint used when `admin.healthcheck_endpoint` is absent.
pub const DEFAULT_HEALTHCHECK_ENDPOINT: &str = "http://:8086";

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
pub fn parse_http_endpoint(raw: &str, default_port: u16) -> Result<HttpEndpoint, String> {
    let raw = raw.trim();
    let rest = match raw.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => return Err(format!("unsupported scheme {scheme:?}, expected http")),
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
            .map_err(|_| format!("invalid port {p:?}"))?,
    };
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        h if h.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .parse()
            .map_err(|_| format!("host {h:?} is not an IP address"))?,
    };
    Ok(HttpEndpoint {
        addr: SocketAddr::new(ip, port),
        path,
    })
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("unterminated '[' in {hostport:?}"))?;
        return match after {
            "" => Ok((host, None)),
            a => a
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or_else(|| format!("garbage after ']' in {hostport:?}")),
        };
    }
    match hostport.matches(':').count() {
        0 => Ok((hostport, None)),
        1 => Ok(hostport
            .split_once(':')
            .map(|(h, p)| (h, Some(p)))
            .unwrap_or((hostport, None))),
        _ => Err(format!("IPv6 host in {hostport:?} must be in brackets")),
    }
}
