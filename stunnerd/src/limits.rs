//! Resource limits and hardening knobs that hostile clients must not be able to exceed, read from
//! the environment (they are deployment settings, not part of the upstream config or CDS format):
//!
//! | variable                           | default | meaning                                        |
//! |------------------------------------|---------|------------------------------------------------|
//! | `STUNNER_MAX_ALLOCATIONS`          | 20000   | allocations per process (508 beyond; 0 = off)  |
//! | `STUNNER_CLIENT_QUOTA`             | 1000    | allocations per client IP (486; 0 = off)       |
//! | `STUNNER_RELAY_PORT_RANGE`         | kernel  | relay ports `min-max`, e.g. `32768-60999`      |
//! | `STUNNER_MAX_CONNECTIONS`          | 10000   | open TCP/TLS/DTLS connections per listener     |
//! | `STUNNER_MAX_CONNECTIONS_PER_IP`   | 1000    | open connections per listener and client IP    |
//! | `STUNNER_FIRST_REQUEST_TIMEOUT`    | 10      | seconds for a connection's first whole request |
//! | `STUNNER_IDLE_TIMEOUT`             | 120     | seconds a connection without allocation idles  |
//! | `STUNNER_SOFTWARE`                 | name/version | SOFTWARE attribute; empty = not sent      |
//!
//! The per-username quota stays the config's `admin.user_quota` (upstream semantics, 0 = off).

use std::time::Duration;

/// The limits in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Allocations per process (0 = unlimited).
    pub max_allocations: u32,
    /// Allocations per client IP (0 = unlimited).
    pub client_quota: u32,
    /// Relay port range (inclusive); `None` = the kernel's ephemeral ports.
    pub relay_ports: Option<(u16, u16)>,
    /// Open connections per stream/DTLS listener (per worker share, see `driver`).
    pub max_connections: u32,
    /// Open connections per listener and client IP.
    pub max_connections_per_ip: u32,
    /// Time a connection has to deliver its first whole frame (TLS/DTLS handshake included).
    pub first_request_timeout: Duration,
    /// Time a connection without allocation may stay silent.
    pub idle_timeout: Duration,
    /// SOFTWARE attribute of responses; empty = none.
    pub software: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_allocations: 20_000,
            client_quota: 1_000,
            relay_ports: None,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            software: format!("stunnerd-rs/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A limit variable that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct LimitError {
    var: &'static str,
    value: String,
    reason: &'static str,
}

impl Limits {
    /// The defaults overridden by the `STUNNER_*` variables of the process environment.
    pub fn from_env() -> Result<Self, LimitError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The defaults overridden by the variables `get` knows.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, LimitError> {
        let mut l = Self::default();
        let num = |var: &'static str, default: u32| -> Result<u32, LimitError> {
            get(var).map_or(Ok(default), |v| {
                v.trim().parse().map_err(|_| LimitError {
                    var,
                    value: v,
                    reason: "not a whole number",
                })
            })
        };
        l.max_allocations = num("STUNNER_MAX_ALLOCATIONS", l.max_allocations)?;
        l.client_quota = num("STUNNER_CLIENT_QUOTA", l.client_quota)?;
        l.max_connections = num("STUNNER_MAX_CONNECTIONS", l.max_connections)?;
        l.max_connections_per_ip = num("STUNNER_MAX_CONNECTIONS_PER_IP", l.max_connections_per_ip)?;
        let secs = |var, d: Duration| -> Result<Duration, LimitError> {
            let n = num(var, u32::try_from(d.as_secs()).unwrap_or(u32::MAX))?;
            match n {
                0 => Err(LimitError {
                    var,
                    value: "0".into(),
                    reason: "must be at least 1 second",
                }),
                n => Ok(Duration::from_secs(u64::from(n))),
            }
        };
        l.first_request_timeout = secs("STUNNER_FIRST_REQUEST_TIMEOUT", l.first_request_timeout)?;
        l.idle_timeout = secs("STUNNER_IDLE_TIMEOUT", l.idle_timeout)?;
        if let Some(v) = get("STUNNER_RELAY_PORT_RANGE") {
            l.relay_ports = Some(parse_range(&v).ok_or(LimitError {
                var: "STUNNER_RELAY_PORT_RANGE",
                value: v,
                reason: "expected min-max with 1 <= min <= max <= 65535",
            })?);
        }
        if let Some(v) = get("STUNNER_SOFTWARE") {
            l.software = v;
        }
        Ok(l)
    }
}

fn parse_range(v: &str) -> Option<(u16, u16)> {
    let (lo, hi) = v.trim().split_once('-')?;
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    (lo >= 1 && lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Limits, LimitError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Limits::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_bounded_and_variables_override_them() {
        let d = from(&[]).expect("defaults");
        assert_eq!(d, Limits::default());
        assert!(d.max_allocations > 0 && d.client_quota > 0 && d.max_connections > 0);
        let l = from(&[
            ("STUNNER_CLIENT_QUOTA", "0"),
            ("STUNNER_RELAY_PORT_RANGE", "40000-40100"),
            ("STUNNER_SOFTWARE", ""),
            ("STUNNER_IDLE_TIMEOUT", "5"),
        ])
        .expect("limits");
        assert_eq!(l.client_quota, 0);
        assert_eq!(l.relay_ports, Some((40000, 40100)));
        assert!(l.software.is_empty());
        assert_eq!(l.idle_timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = from(&[("STUNNER_RELAY_PORT_RANGE", "9-3")]).expect_err("range");
        assert!(e.to_string().starts_with("STUNNER_RELAY_PORT_RANGE"), "{e}");
        let e = from(&[("STUNNER_MAX_ALLOCATIONS", "-1")]).expect_err("number");
        assert!(e.to_string().contains("whole number"), "{e}");
        assert!(from(&[("STUNNER_FIRST_REQUEST_TIMEOUT", "0")]).is_err());
    }
}
