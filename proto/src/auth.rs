//! The ICE/TURN credential API an application calls (upstream l7mp/stunner-auth-service,
//! `api/stunner.yaml`): the JSON bodies of `GET /` (a TURN REST credential) and `GET /ice` (an
//! `RTCConfiguration`), the TURN REST API credential scheme stunnerd's `ephemeral` auth checks,
//! and the `turn:`/`turns:` URI of a rendered listener.
//!
//! ```text
//!  StunnerConfig (from CDS) ─┬─ auth ──────▶ credential(): static passed through, ephemeral minted
//!                            │                 username "<expiry-unix>:<user>",
//!                            │                 password base64(HMAC-SHA1(secret, username))
//!                            └─ listeners[] ─▶ listener_uri(): "turn:<public>:<port>?transport=udp"
//! ```

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use crate::config::{AuthConfig, AuthType, ListenerConfig, ListenerProtocol};

/// Default lifetime of an issued credential: one day, as upstream.
pub const DEFAULT_TTL_SECS: u64 = 86_400;
/// Default port of the credential service, as upstream (`DefaultAuthServicePort`).
pub const DEFAULT_PORT: u16 = 8088;
/// The only `service` the API knows.
pub const SERVICE_TURN: &str = "turn";

/// `GET /` body: a TURN credential (draft-uberti-behave-turn-rest-00 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnCredential {
    /// TURN username (`<expiry>:<user>` for ephemeral auth).
    pub username: String,
    /// TURN password.
    pub password: String,
    /// Lifetime in seconds from issue.
    pub ttl: u64,
    /// TURN URIs the credential is good for.
    pub uris: Vec<String>,
}

/// One `RTCIceServer` of an [`IceConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// TURN URIs of one Gateway.
    pub urls: Vec<String>,
    /// TURN username.
    pub username: String,
    /// TURN password.
    pub credential: String,
}

/// `GET /ice` body: an `RTCConfiguration` a browser can pass to `new RTCPeerConnection()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceConfig {
    /// One entry per Gateway with at least one offered listener.
    pub ice_servers: Vec<IceServer>,
    /// The policy the client should apply.
    pub ice_transport_policy: IceTransportPolicy,
}

/// `iceTransportPolicy`: which candidates the client gathers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    /// Every candidate (upstream's default).
    #[default]
    All,
    /// Public candidates only (a legacy WebRTC value upstream keeps).
    Public,
    /// Relay candidates only: every call goes through TURN.
    Relay,
}

impl IceTransportPolicy {
    /// Parses the wire spelling (`all`, `public`, `relay`), case-sensitively as the schema's enum.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "all" => Some(Self::All),
            "public" => Some(Self::Public),
            "relay" => Some(Self::Relay),
            _ => None,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Public => "public",
            Self::Relay => "relay",
        }
    }
}

impl fmt::Display for IceTransportPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why no credential can be made from a config's `auth` section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// `static` auth without `credentials.username` or `credentials.password`.
    #[error("static auth without a username and password in auth.credentials")]
    MissingStatic,
    /// `ephemeral` auth without `credentials.secret`.
    #[error("ephemeral auth without a shared secret in auth.credentials")]
    MissingSecret,
}

/// A username/password pair for one Gateway.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// TURN username.
    pub username: String,
    /// TURN password.
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The credential for `auth`: static ones passed through, ephemeral ones minted for `user`,
/// expiring at `unix_now + ttl_secs`; `none` gives empty strings (no credential is checked).
pub fn credential(
    auth: &AuthConfig,
    user: &str,
    unix_now: u64,
    ttl_secs: u64,
) -> Result<Credential, CredentialError> {
    match auth.auth_type {
        AuthType::Static => match (auth.credential("username"), auth.credential("password")) {
            (Some(u), Some(p)) => Ok(Credential {
                username: u.to_owned(),
                password: p.to_owned(),
            }),
            _ => Err(CredentialError::MissingStatic),
        },
        AuthType::Ephemeral => {
            let secret = auth
                .credential("secret")
                .ok_or(CredentialError::MissingSecret)?;
            let username = rest_username(unix_now.saturating_add(ttl_secs), user);
            let password = rest_password(secret.as_bytes(), &username);
            Ok(Credential { username, password })
        }
        AuthType::None => Ok(Credential {
            username: String::new(),
            password: String::new(),
        }),
    }
}

/// The TURN REST API username: `<expiry-unix>:<user>` (the colon stays when `user` is empty,
/// as upstream writes it).
pub fn rest_username(expiry_unix: u64, user: &str) -> String {
    format!("{expiry_unix}:{user}")
}

/// The TURN REST API password of `username`: base64(HMAC-SHA1(secret, username)).
pub fn rest_password(secret: &[u8], username: &str) -> String {
    // HMAC takes keys of any length, so the constructor cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A listener name as the operator renders it, `<namespace>/<gateway>/<listener>`, split.
pub fn split_listener_name(name: &str) -> Option<(&str, &str, &str)> {
    let mut parts = name.split('/');
    let (ns, gw, l) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && !ns.is_empty() && !gw.is_empty() && !l.is_empty())
        .then_some((ns, gw, l))
}

/// `(scheme, transport)` of a listener protocol in RFC 7065 terms.
pub fn uri_scheme(protocol: ListenerProtocol) -> (&'static str, &'static str) {
    match protocol {
        ListenerProtocol::TurnUdp => ("turn", "udp"),
        ListenerProtocol::TurnTcp => ("turn", "tcp"),
        ListenerProtocol::TurnDtls => ("turns", "udp"),
        ListenerProtocol::TurnTls => ("turns", "tcp"),
    }
}

/// The RFC 7065 URI clients use to reach listener `l` (`turn:1.2.3.4:3478?transport=udp`), at
/// `public_addr` when given, else at the listener's public address and port (the bind port when
/// no public port is known). `None` when no public address is known: the bind address is the
/// pod IP (or `$STUNNER_ADDR`), which no client outside the cluster can reach.
pub fn listener_uri(l: &ListenerConfig, public_addr: Option<&str>) -> Option<String> {
    let addr = public_addr
        .filter(|a| !a.is_empty())
        .unwrap_or(&l.public_address);
    if addr.is_empty() {
        return None;
    }
    let port = if l.public_port != 0 {
        l.public_port
    } else {
        l.port
    };
    let host = if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]")
    } else {
        addr.to_owned()
    };
    let (scheme, transport) = uri_scheme(l.protocol);
    Some(format!("{scheme}:{host}:{port}?transport={transport}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(protocol: ListenerProtocol, public: &str, public_port: u16) -> ListenerConfig {
        ListenerConfig {
            name: "ns/gw/l".into(),
            protocol,
            public_address: public.into(),
            public_port,
            address: "$STUNNER_ADDR".into(),
            port: 3478,
            ..ListenerConfig::default()
        }
    }

    #[test]
    fn uris_follow_rfc7065_and_upstream() {
        use ListenerProtocol::*;
        for (p, want) in [
            (TurnUdp, "turn:1.2.3.4:9991?transport=udp"),
            (TurnTcp, "turn:1.2.3.4:9991?transport=tcp"),
            (TurnDtls, "turns:1.2.3.4:9991?transport=udp"),
            (TurnTls, "turns:1.2.3.4:9991?transport=tcp"),
        ] {
            assert_eq!(
                listener_uri(&listener(p, "1.2.3.4", 9991), None).as_deref(),
                Some(want)
            );
        }
        let no_port = listener(TurnUdp, "lb.example.com", 0);
        assert_eq!(
            listener_uri(&no_port, None).as_deref(),
            Some("turn:lb.example.com:3478?transport=udp")
        );
        let v6 = listener(TurnTcp, "2001:db8::1", 443);
        assert_eq!(
            listener_uri(&v6, None).as_deref(),
            Some("turn:[2001:db8::1]:443?transport=tcp")
        );
        let unknown = listener(TurnUdp, "", 0);
        assert_eq!(listener_uri(&unknown, None), None);
        assert_eq!(
            listener_uri(&unknown, Some("5.6.7.8")).as_deref(),
            Some("turn:5.6.7.8:3478?transport=udp")
        );
    }

    #[test]
    fn ephemeral_credentials_match_the_turn_rest_scheme() {
        // Vector computed independently: printf '1700000000:alice' | openssl dgst -sha1 -hmac s3cret -binary | base64
        assert_eq!(
            rest_password(b"s3cret", "1700000000:alice"),
            "TtElzSjT0GdnTQ9xdcRNxx96yQs="
        );
        let mut auth = AuthConfig {
            auth_type: AuthType::Ephemeral,
            ..AuthConfig::default()
        };
        assert_eq!(
            credential(&auth, "alice", 1, 2),
            Err(CredentialError::MissingSecret)
        );
        auth.credentials.insert("secret".into(), "s3cret".into());
        let c = credential(&auth, "alice", 1_699_999_000, 1000).unwrap();
        assert_eq!(c.username, "1700000000:alice");
        assert_eq!(c.password, rest_password(b"s3cret", "1700000000:alice"));
        assert_eq!(credential(&auth, "", 5, 5).unwrap().username, "10:");
    }

    #[test]
    fn static_credentials_pass_through() {
        let mut auth = AuthConfig::default();
        assert_eq!(
            credential(&auth, "x", 0, 1),
            Err(CredentialError::MissingStatic)
        );
        auth.credentials.insert("username".into(), "user-1".into());
        auth.credentials.insert("password".into(), "pass-1".into());
        let c = credential(&auth, "ignored", 0, 1).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user-1", "pass-1")
        );
    }

    #[test]
    fn listener_names_and_policies() {
        assert_eq!(split_listener_name("a/b/c"), Some(("a", "b", "c")));
        for bad in ["a/b", "a/b/c/d", "/b/c", "a//c", "a/b/"] {
            assert_eq!(split_listener_name(bad), None, "{bad}");
        }
        assert_eq!(
            IceTransportPolicy::parse("relay"),
            Some(IceTransportPolicy::Relay)
        );
        assert_eq!(IceTransportPolicy::parse("RELAY"), None);
        let json = serde_json::to_string(&IceConfig {
            ice_servers: vec![],
            ice_transport_policy: IceTransportPolicy::Relay,
        })
        .unwrap();
        assert_eq!(json, r#"{"iceServers":[],"iceTransportPolicy":"relay"}"#);
    }
}
