//! Issuing credentials, a pure function of the configs, the request and the clock: one ICE server
//! per Gateway that has a listener passing the request's filters, its URIs built from the
//! listeners' public addresses, its credential from the Gateway's `auth` section (upstream
//! stunner-auth-service's `getIceServerConf`).

use proto::auth::{
    CredentialError, IceConfig, IceServer, IceTransportPolicy, TurnCredential, credential,
    listener_uri, split_listener_name,
};
use proto::config::StunnerConfig;

use crate::store::Gateways;

/// A validated request (see `query` for how the query string maps to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// User id appended to ephemeral usernames.
    pub username: String,
    /// Credential lifetime in seconds (> 0).
    pub ttl: u64,
    /// Only Gateways in this namespace.
    pub namespace: Option<String>,
    /// Only this Gateway (with `namespace`).
    pub gateway: Option<String>,
    /// Only this listener (with `gateway`).
    pub listener: Option<String>,
    /// Address written into every URI instead of the listeners' public addresses.
    pub public_addr: Option<String>,
    /// `iceTransportPolicy` echoed in `/ice`.
    pub policy: IceTransportPolicy,
}

/// Why nothing could be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// No config has arrived from CDS yet (or every Gateway is gone).
    #[error("no STUNner configuration available")]
    NoConfig,
    /// Configs exist but no listener passed the filters with a known public address.
    #[error("no listener found{0}")]
    NoListener(String),
}

/// The `/ice` answer for `req` at unix time `now`; `default_public` is the service's
/// `STUNNER_PUBLIC_ADDR`, used when the request names none.
pub fn ice_config(
    gws: &Gateways,
    req: &Request,
    now: u64,
    default_public: Option<&str>,
) -> Result<IceConfig, IssueError> {
    if gws.is_empty() {
        return Err(IssueError::NoConfig);
    }
    let public = req.public_addr.as_deref().or(default_public);
    let ice_servers: Vec<IceServer> = gws
        .values()
        .filter_map(|c| server_for(c, req, now, public))
        .collect();
    if ice_servers.is_empty() {
        return Err(IssueError::NoListener(filter_text(req)));
    }
    Ok(IceConfig {
        ice_servers,
        ice_transport_policy: req.policy,
    })
}

/// The `/` answer: the credential of the first Gateway that qualifies (as upstream; `/ice`
/// lists them all).
pub fn turn_credential(
    gws: &Gateways,
    req: &Request,
    now: u64,
    default_public: Option<&str>,
) -> Result<TurnCredential, IssueError> {
    let ice = ice_config(gws, req, now, default_public)?;
    let first = ice.ice_servers.into_iter().next();
    let first = first.ok_or_else(|| IssueError::NoListener(filter_text(req)))?;
    Ok(TurnCredential {
        username: first.username,
        password: first.credential,
        ttl: req.ttl,
        uris: first.urls,
    })
}

fn filter_text(req: &Request) -> String {
    let parts: Vec<String> = [
        ("namespace", &req.namespace),
        ("gateway", &req.gateway),
        ("listener", &req.listener),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
    .collect();
    if parts.is_empty() {
        " with a public address".into()
    } else {
        format!(" with a public address for {}", parts.join(", "))
    }
}

/// The ICE server of one Gateway, `None` when no listener qualifies or its auth is unusable.
fn server_for(
    c: &StunnerConfig,
    req: &Request,
    now: u64,
    public: Option<&str>,
) -> Option<IceServer> {
    let urls: Vec<String> = c
        .listeners
        .iter()
        .filter(|l| split_listener_name(&l.name).is_some_and(|n| selected(req, n)))
        .filter_map(|l| listener_uri(l, public))
        .collect();
    if urls.is_empty() {
        return None;
    }
    match credential(&c.auth, &req.username, now, req.ttl) {
        Ok(cred) => Some(IceServer {
            urls,
            username: cred.username,
            credential: cred.password,
        }),
        Err(error) => {
            skip(&c.admin.name, &error);
            None
        }
    }
}

fn skip(gateway: &str, error: &CredentialError) {
    tracing::warn!(%gateway, %error, "no credential for this Gateway; left out");
}

fn selected(req: &Request, (ns, gw, l): (&str, &str, &str)) -> bool {
    let is = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
    is(&req.namespace, ns) && is(&req.gateway, gw) && is(&req.listener, l)
}

#[cfg(test)]
mod tests {
    use proto::config::{AuthType, ListenerConfig, ListenerProtocol};

    use super::*;

    fn gw(name: &str, listeners: &[(&str, ListenerProtocol, &str)]) -> StunnerConfig {
        let mut c = StunnerConfig::default();
        c.admin.name = name.into();
        c.auth.auth_type = AuthType::Ephemeral;
        c.auth.credentials.insert("secret".into(), "s".into());
        c.listeners = listeners
            .iter()
            .map(|(l, protocol, public)| ListenerConfig {
                name: format!("{name}/{l}"),
                protocol: *protocol,
                public_address: (*public).into(),
                port: 3478,
                ..ListenerConfig::default()
            })
            .collect();
        c
    }

    fn req() -> Request {
        Request {
            username: "bob".into(),
            ttl: 60,
            namespace: None,
            gateway: None,
            listener: None,
            public_addr: None,
            policy: IceTransportPolicy::All,
        }
    }

    fn gateways() -> Gateways {
        use ListenerProtocol::*;
        [
            gw(
                "a/udp",
                &[("u", TurnUdp, "1.1.1.1"), ("t", TurnTcp, "1.1.1.1")],
            ),
            gw(
                "b/tls",
                &[("s", TurnTls, "2.2.2.2"), ("hidden", TurnUdp, "")],
            ),
        ]
        .into_iter()
        .map(|c| (c.admin.name.clone(), c))
        .collect()
    }

    #[test]
    fn one_server_per_gateway_with_filters() {
        let g = gateways();
        let all = ice_config(&g, &req(), 100, None).unwrap();
        let urls: Vec<_> = all.ice_servers.iter().map(|s| s.urls.clone()).collect();
        assert_eq!(
            urls,
            [
                vec![
                    "turn:1.1.1.1:3478?transport=udp",
                    "turn:1.1.1.1:3478?transport=tcp"
                ],
                vec!["turns:2.2.2.2:3478?transport=tcp"],
            ]
        );
        assert_eq!(all.ice_servers[0].username, "160:bob");
        let r = Request {
            namespace: Some("a".into()),
            gateway: Some("udp".into()),
            listener: Some("t".into()),
            ..req()
        };
        let one = ice_config(&g, &r, 100, None).unwrap();
        assert_eq!(one.ice_servers.len(), 1);
        assert_eq!(one.ice_servers[0].urls, ["turn:1.1.1.1:3478?transport=tcp"]);
        let r = Request {
            namespace: Some("c".into()),
            ..req()
        };
        let e = ice_config(&g, &r, 100, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no listener found with a public address for namespace=c"
        );
        assert_eq!(
            ice_config(&Gateways::new(), &req(), 1, None),
            Err(IssueError::NoConfig)
        );
    }

    #[test]
    fn public_addr_override_and_turn_credential() {
        let g = gateways();
        let r = Request {
            public_addr: Some("9.9.9.9".into()),
            ..req()
        };
        let c = turn_credential(&g, &r, 100, Some("8.8.8.8")).unwrap();
        assert_eq!(c.ttl, 60);
        assert_eq!(
            c.uris,
            [
                "turn:9.9.9.9:3478?transport=udp",
                "turn:9.9.9.9:3478?transport=tcp"
            ]
        );
        let b = ice_config(&g, &req(), 100, Some("8.8.8.8")).unwrap();
        assert!(
            b.ice_servers[1]
                .urls
                .contains(&"turn:8.8.8.8:3478?transport=udp".to_owned())
        );
    }

    #[test]
    fn gateway_with_broken_auth_is_left_out() {
        let mut g = gateways();
        if let Some(c) = g.get_mut("a/udp") {
            c.auth.credentials.clear();
        }
        let ice = ice_config(&g, &req(), 100, None).unwrap();
        assert_eq!(ice.ice_servers.len(), 1);
        assert_eq!(
            ice.ice_servers[0].urls,
            ["turns:2.2.2.2:3478?transport=tcp"]
        );
    }
}
