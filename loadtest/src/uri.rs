//! TURN server URIs as turncat and the swarm accept them (upstream turncat's syntax):
//! `turn[s]://[<user>:<password>@|<secret>@]<host>[:<port>][?transport=udp|tcp|tls|dtls]`.
//! `turn:host:port` (RFC 7065, no `//`) is accepted too.
//!
//! | scheme  | `?transport=`    | transport |
//! |---------|------------------|-----------|
//! | `turn`  | (none), `udp`    | UDP       |
//! | `turn`  | `tcp`            | TCP       |
//! | any     | `tls` / `dtls`   | TLS / DTLS (upstream STUNner's form) |
//! | `turns` | (none), `tcp`    | TLS (RFC 7065) |
//! | `turns` | `udp`            | DTLS (RFC 7065) |
//!
//! Decisions: the default port of TLS and DTLS is 443, as upstream STUNner's `ParseUri` has it
//! (not RFC 7065's 5349: STUNner's TLS listeners sit on 443 to pass strict firewalls). A bare
//! `turns:host` means TLS over TCP as RFC 7065 and browsers read it; upstream's `ParseUri` would
//! take it as DTLS (its default transport is `udp` whatever the scheme), but upstream turncat
//! accepts no `turns` scheme at all, so no upstream command line changes meaning.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::client::{AuthSpec, Credentials};

use crate::swarm::Transport;
use crate::{Error, Result};

/// Default TURN port (RFC 8656).
pub const DEFAULT_PORT: u16 = 3478;
/// Default port of TURN over TLS and DTLS (upstream STUNner's choice).
pub const DEFAULT_SECURE_PORT: u16 = 443;

/// Credentials found in the URI's user-info part.
#[derive(Clone, PartialEq, Eq)]
pub enum UriAuth {
    /// No user-info.
    None,
    /// `user:password@`.
    Static {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
    /// `secret@`: a TURN REST shared secret (ephemeral auth).
    Secret(String),
}

impl std::fmt::Debug for UriAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Static { username, .. } => write!(f, "Static({username}:***)"),
            Self::Secret(_) => f.write_str("Secret(***)"),
        }
    }
}

/// A parsed TURN URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnUri {
    /// Host name or IP literal (brackets removed).
    pub host: String,
    /// Port (3478 when absent; 443 for TLS and DTLS).
    pub port: u16,
    /// From the scheme and `?transport=` (see the module table).
    pub transport: Transport,
    /// User-info credentials.
    pub auth: UriAuth,
}

impl TurnUri {
    /// Parses a `turn:` or `turns:` URI.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("invalid TURN URI {:?}: {why}", redact(s)));
        let (secure, rest) = match s.split_once(':') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("turn") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("turns") => (true, rest),
            _ => return Err(bad("expected turn:// or turns://")),
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let auth = match userinfo {
            None => UriAuth::None,
            Some(u) => match u.split_once(':') {
                Some((user, pass)) if !user.is_empty() => UriAuth::Static {
                    username: user.into(),
                    password: pass.into(),
                },
                Some(_) => return Err(bad("empty username")),
                None if u.is_empty() => return Err(bad("empty user-info")),
                None => UriAuth::Secret(u.into()),
            },
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
        let transport = parse_query(query, secure).map_err(|w| bad(&w))?;
        let port = port.unwrap_or(if transport.is_secure() {
            DEFAULT_SECURE_PORT
        } else {
            DEFAULT_PORT
        });
        Ok(Self {
            host,
            port,
            transport,
            auth,
        })
    }

    /// Resolves the host to the first address.
    pub fn resolve(&self) -> Result<SocketAddr> {
        let target = (self.host.as_str(), self.port);
        let mut addrs = target
            .to_socket_addrs()
            .map_err(|e| Error::io(format_args!("resolve {}", self.host), e))?;
        addrs
            .next()
            .ok_or_else(|| Error::Config(format!("{} resolves to no address", self.host)))
    }
}

fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// The transport named by the scheme (`secure` for `turns`) and the query (module table).
fn parse_query(q: &str, secure: bool) -> Result<Transport, String> {
    let mut transport = if secure {
        Transport::Tls
    } else {
        Transport::Udp
    };
    for kv in q.split('&').filter(|kv| !kv.is_empty()) {
        let Some(("transport", v)) = kv.split_once('=') else {
            return Err(format!("unknown query parameter {kv:?}"));
        };
        transport = match (v.to_ascii_lowercase().as_str(), secure) {
            ("udp", false) => Transport::Udp,
            ("tcp", false) => Transport::Tcp,
            ("tcp", true) | ("tls", _) => Transport::Tls,
            ("udp", true) | ("dtls", _) => Transport::Dtls,
            _ => {
                return Err(format!(
                    "unsupported transport {v:?} (udp, tcp, tls or dtls)"
                ));
            }
        };
    }
    Ok(transport)
}

/// Which long-term credential mechanism to use (`--auth`, upstream's names and aliases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthKind {
    /// Fixed username/password from the URI.
    #[value(alias = "plaintext")]
    Static,
    /// TURN REST credentials minted from a shared secret.
    #[value(alias = "longterm", alias = "timewindowed")]
    Ephemeral,
}

impl UriAuth {
    /// Combines the URI's user-info with `--auth` / `--secret` into an [`AuthSpec`].
    pub fn into_spec(
        self,
        kind: Option<AuthKind>,
        secret: Option<String>,
        ttl: Duration,
    ) -> Result<AuthSpec> {
        let ephemeral =
            |secret: String, user: Option<String>| AuthSpec::Ephemeral { secret, user, ttl };
        match (kind, self, secret) {
            (Some(AuthKind::Ephemeral) | None, Self::Secret(s), None) => Ok(ephemeral(s, None)),
            (Some(AuthKind::Ephemeral) | None, Self::None, Some(s)) => Ok(ephemeral(s, None)),
            (Some(AuthKind::Ephemeral) | None, Self::Static { username, .. }, Some(s)) => Ok(ephemeral(s, Some(username))),
            (Some(AuthKind::Static) | None, Self::Static { username, password }, None) => {
                Ok(AuthSpec::Static(Credentials { username, password }))
            }
            (Some(AuthKind::Ephemeral), _, None) => Err(Error::Config("ephemeral auth needs --secret or turn://<secret>@host".into())),
            (Some(AuthKind::Static), _, _) => Err(Error::Config("static auth needs turn://<user>:<password>@host".into())),
            _ => Err(Error::Config("credentials required: turn://<user>:<password>@host, turn://<secret>@host or --secret".into())),
        }
    }
}

/// The URI with any user-info replaced by `***` (for error messages and logs).
pub fn redact(s: &str) -> String {
    match (
        s.find("://")
            .map(|i| i + 3)
            .or_else(|| s.find(':').map(|i| i + 1)),
        s.rfind('@'),
    ) {
        (Some(start), Some(at)) if at > start => format!("{}***{}", &s[..start], &s[at..]),
        _ => s.to_owned(),
    }
}

/// Parses `udp://host:port` (turncat's peer and client addresses) into its host and port part.
pub fn strip_scheme<'a>(s: &'a str, scheme: &str) -> Option<&'a str> {
    s.strip_prefix(scheme)?.strip_prefix("://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_tcp() {
        let u = TurnUri::parse("turn://user:pa:ss@example.com:3479?transport=tcp").unwrap();
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, 3479);
        assert_eq!(u.transport, Transport::Tcp);
        assert_eq!(
            u.auth,
            UriAuth::Static {
                username: "user".into(),
                password: "pa:ss".into()
            }
        );
    }

    #[test]
    fn secret_default_port_v6() {
        let u = TurnUri::parse("turn://s3cret@[::1]").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("::1", 3478, Transport::Udp)
        );
        assert_eq!(u.auth, UriAuth::Secret("s3cret".into()));
        assert_eq!(
            u.resolve().unwrap(),
            "[::1]:3478".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn rfc7065_form_and_errors() {
        let u = TurnUri::parse("turn:127.0.0.1:5000?transport=udp").unwrap();
        assert_eq!((u.port, u.auth), (5000, UriAuth::None));
        for bad in [
            "http://x",
            "turns://a:b@h?transport=sctp",
            "turn://h?foo=bar",
            "turn://a:b@h:notaport",
            "turn://h?transport=sctp",
            "turn://:p@h",
            "turn://u:p@",
        ] {
            let e = TurnUri::parse(bad).unwrap_err();
            assert!(e.is_config(), "{bad}: {e}");
        }
        let e = TurnUri::parse("turn://user:hunter2@h:x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn secure_schemes_transports_and_default_ports() {
        for (uri, transport, port) in [
            ("turns://u:p@h", Transport::Tls, 443),
            ("turns:h:5349", Transport::Tls, 5349),
            ("turns://h?transport=tcp", Transport::Tls, 443),
            ("TURNS://h?transport=UDP", Transport::Dtls, 443),
            ("turns:h:3479?transport=udp", Transport::Dtls, 3479),
            ("turn://u:p@h?transport=tls", Transport::Tls, 443),
            ("turn://h:5349?transport=dtls", Transport::Dtls, 5349),
            ("turns://h?transport=dtls", Transport::Dtls, 443),
            ("turn://h", Transport::Udp, 3478),
            ("turn://h?transport=tcp", Transport::Tcp, 3478),
        ] {
            let u = TurnUri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(
                (u.host.as_str(), u.transport, u.port),
                ("h", transport, port),
                "{uri}"
            );
        }
        let u = TurnUri::parse("turns://s3cret@[::1]:5349").unwrap();
        assert_eq!(u.auth, UriAuth::Secret("s3cret".into()));
        assert_eq!(
            u.resolve().unwrap(),
            "[::1]:5349".parse::<SocketAddr>().unwrap()
        );
        assert!(redact("turns://u:hunter2@h").ends_with("***@h"));
    }

    #[test]
    fn auth_combinations() {
        let ttl = Duration::from_secs(60);
        let st = || UriAuth::Static {
            username: "u".into(),
            password: "p".into(),
        };
        let spec = st().into_spec(None, None, ttl).unwrap();
        assert_eq!(
            spec,
            AuthSpec::Static(Credentials {
                username: "u".into(),
                password: "p".into()
            })
        );
        let spec = UriAuth::Secret("s".into())
            .into_spec(None, None, ttl)
            .unwrap();
        assert!(
            matches!(spec, AuthSpec::Ephemeral { ref secret, user: None, .. } if secret == "s")
        );
        let spec = st()
            .into_spec(Some(AuthKind::Ephemeral), Some("s".into()), ttl)
            .unwrap();
        assert!(matches!(spec, AuthSpec::Ephemeral { user: Some(ref u), .. } if u == "u"));
        assert!(
            UriAuth::None
                .into_spec(None, None, ttl)
                .unwrap_err()
                .is_config()
        );
        assert!(
            st().into_spec(Some(AuthKind::Ephemeral), None, ttl)
                .unwrap_err()
                .is_config()
        );
        assert!(
            UriAuth::Secret("s".into())
                .into_spec(Some(AuthKind::Static), None, ttl)
                .unwrap_err()
                .is_config()
        );
    }
}
