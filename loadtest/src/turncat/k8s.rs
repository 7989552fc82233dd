//! Upstream turncat's `k8s://<namespace>/<gateway>:<listener>` server form: the Gateway's
//! rendered config is fetched from the operator's CDS server (`--cds-server-address`, e.g. a
//! `kubectl port-forward` of the CDS Service), and the listener's public address, port and
//! protocol give the TURN server, the config's auth section the credentials (static passed
//! through, ephemeral minted from the shared secret for `--ttl`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use proto::config::{AuthType, ListenerProtocol, StunnerConfig};

use crate::client::{AuthSpec, Credentials};
use crate::swarm::Transport;
use crate::uri::{TurnUri, UriAuth};
use crate::{Error, Result};

/// Bound on connecting to and reading from CDS.
const CDS_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `k8s://namespace/gateway:listener`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sTarget {
    /// Gateway namespace.
    pub namespace: String,
    /// Gateway name.
    pub gateway: String,
    /// Listener name, as in the Gateway spec.
    pub listener: String,
}

impl K8sTarget {
    /// Parses the URI; `None` when it is not a `k8s://` one.
    pub fn parse(s: &str) -> Option<Result<Self>> {
        let rest = s.strip_prefix("k8s://")?;
        let bad = || {
            Error::Config(format!(
                "invalid server {s:?}: expected k8s://<namespace>/<gateway>:<listener>"
            ))
        };
        let valid = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        };
        let parsed = rest.split_once('/').and_then(|(ns, r)| {
            let (gw, l) = r.split_once(':')?;
            (valid(ns) && valid(gw) && valid(l)).then(|| Self {
                namespace: ns.into(),
                gateway: gw.into(),
                listener: l.into(),
            })
        });
        Some(parsed.ok_or_else(bad))
    }

    /// The TURN server and credentials of this listener in the Gateway's `config`.
    pub fn resolve(&self, config: &StunnerConfig, ttl: Duration) -> Result<(TurnUri, AuthSpec)> {
        let want = format!("{}/{}/{}", self.namespace, self.gateway, self.listener);
        let l = config
            .listeners
            .iter()
            .find(|l| l.name == want)
            .ok_or_else(|| {
                let names: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
                Error::Config(format!(
                    "listener {want} not found; the Gateway has {names:?}"
                ))
            })?;
        if l.public_address.is_empty() {
            return Err(Error::Config(format!(
                "listener {want} has no public address yet"
            )));
        }
        let transport = match l.protocol {
            ListenerProtocol::TurnUdp => Transport::Udp,
            ListenerProtocol::TurnTcp => Transport::Tcp,
            ListenerProtocol::TurnTls => Transport::Tls,
            ListenerProtocol::TurnDtls => Transport::Dtls,
        };
        let port = if l.public_port != 0 {
            l.public_port
        } else {
            l.port
        };
        let uri = TurnUri {
            host: l.public_address.clone(),
            port,
            transport,
            auth: UriAuth::None,
        };
        Ok((uri, auth_spec(config, ttl)?))
    }
}

fn auth_spec(config: &StunnerConfig, ttl: Duration) -> Result<AuthSpec> {
    let a = &config.auth;
    let missing = |what: &str| {
        Error::Config(format!(
            "Gateway config {} has no {what}",
            config.admin.name
        ))
    };
    match a.auth_type {
        AuthType::Static => Ok(AuthSpec::Static(Credentials {
            username: a
                .credential("username")
                .ok_or_else(|| missing("username"))?
                .to_owned(),
            password: a
                .credential("password")
                .ok_or_else(|| missing("password"))?
                .to_owned(),
        })),
        AuthType::Ephemeral => Ok(AuthSpec::Ephemeral {
            secret: a
                .credential("secret")
                .ok_or_else(|| missing("shared secret"))?
                .to_owned(),
            user: None,
            ttl,
        }),
        AuthType::None => Err(Error::Config(
            "auth type none: turncat needs credentials".into(),
        )),
    }
}

/// `GET /api/v1/configs/{ns}/{gateway}` from the CDS server at `cds` (`host:port` or
/// `http://host:port`).
pub(super) fn fetch(cds: &str, t: &K8sTarget) -> Result<StunnerConfig> {
    let authority = cds
        .strip_prefix("http://")
        .unwrap_or(cds)
        .trim_end_matches('/');
    let fail = |why: String| Error::Config(format!("CDS server {authority}: {why}"));
    let addr = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| fail("not a reachable host:port".into()))?;
    let mut s = TcpStream::connect_timeout(&addr, CDS_TIMEOUT).map_err(|e| fail(e.to_string()))?;
    s.set_read_timeout(Some(CDS_TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    let req = format!(
        "GET /api/v1/configs/{}/{} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n",
        t.namespace, t.gateway
    );
    s.write_all(req.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| fail(e.to_string()))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("malformed answer".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(fail(format!(
            "{status}: {} (Gateway {}/{})",
            body.trim(),
            t.namespace,
            t.gateway
        )));
    }
    serde_json::from_str(body).map_err(|e| fail(format!("malformed config: {e}")))
}

#[cfg(test)]
mod tests {
    use proto::config::ListenerConfig;

    use super::*;

    #[test]
    fn parses_upstreams_form() {
        let t = K8sTarget::parse("k8s://stunner/udp-gateway:udp-listener")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                t.namespace.as_str(),
                t.gateway.as_str(),
                t.listener.as_str()
            ),
            ("stunner", "udp-gateway", "udp-listener")
        );
        assert!(K8sTarget::parse("turn://h").is_none());
        for bad in [
            "k8s://gw:l",
            "k8s://ns/gw",
            "k8s://ns/:l",
            "k8s://ns/gw:l/x",
        ] {
            assert!(K8sTarget::parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_listener_and_credentials() {
        let mut c = StunnerConfig::default();
        c.admin.name = "ns/gw".into();
        c.auth.auth_type = AuthType::Ephemeral;
        c.auth.credentials.insert("secret".into(), "s".into());
        c.listeners.push(ListenerConfig {
            name: "ns/gw/tls".into(),
            protocol: ListenerProtocol::TurnTls,
            public_address: "1.2.3.4".into(),
            public_port: 443,
            port: 5349,
            ..ListenerConfig::default()
        });
        let t = K8sTarget::parse("k8s://ns/gw:tls").unwrap().unwrap();
        let (u, auth) = t.resolve(&c, Duration::from_secs(60)).unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("1.2.3.4", 443, Transport::Tls)
        );
        assert!(matches!(auth, AuthSpec::Ephemeral { ref secret, .. } if secret == "s"));
        let other = K8sTarget::parse("k8s://ns/gw:udp").unwrap().unwrap();
        assert!(
            other
                .resolve(&c, Duration::from_secs(1))
                .unwrap_err()
                .to_string()
                .contains("not found")
        );
        c.listeners[0].public_address.clear();
        assert!(
            t.resolve(&c, Duration::from_secs(1))
                .unwrap_err()
                .to_string()
                .contains("public address")
        );
    }
}
