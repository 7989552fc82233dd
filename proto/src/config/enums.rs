//! The closed vocabularies of the config: auth types, listener and cluster protocols, cluster
//! types. Parsing accepts upstream's aliases case-insensitively; serialisation writes the
//! canonical upstream spelling, so a rendered config reads the same as one from upstream.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares `parse`, `as_str`, `Display` and string serde for a config enum.
macro_rules! string_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $canon:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// Parses the upstream spelling or one of its aliases, case-insensitively.
            pub fn parse(raw: &str) -> Option<Self> {
                let lower = raw.trim().to_ascii_lowercase();
                $(
                    if lower == $canon.to_ascii_lowercase() $(|| lower == $alias)* {
                        return Some(Self::$variant);
                    }
                )+
                None
            }

            /// The canonical upstream spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $canon),+ }
            }

            /// Every accepted canonical spelling, for error messages.
            pub(crate) fn expected() -> &'static str {
                concat!($($canon, " "),+)
            }

            /// The error message for an unknown spelling.
            pub(crate) fn unknown(raw: &str) -> String {
                format!("unknown {} {:?}, expected one of: {}", $what, raw, Self::expected().trim_end())
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).ok_or_else(|| serde::de::Error::custom(Self::unknown(&raw)))
            }
        }
    };
}

/// STUN/TURN authentication mechanism (`auth.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthType {
    /// Fixed username and password (`static`, alias `plaintext`). Upstream's default.
    #[default]
    Static,
    /// TURN REST API time-windowed credentials (`ephemeral`, aliases `longterm`, `timewindowed`).
    Ephemeral,
    /// No authentication at all (`none`).
    None,
}

string_enum!(AuthType, "authentication type", {
    Static => "static" | "plaintext",
    Ephemeral => "ephemeral" | "longterm" | "timewindowed",
    None => "none",
});

/// Listener transport (`listeners[].protocol`); plain `UDP|TCP|TLS|DTLS` are aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ListenerProtocol {
    /// TURN over UDP (default).
    #[default]
    TurnUdp,
    /// TURN over a TCP control connection.
    TurnTcp,
    /// TURN over TLS/TCP.
    TurnTls,
    /// TURN over DTLS/UDP.
    TurnDtls,
}

string_enum!(ListenerProtocol, "listener protocol", {
    TurnUdp => "TURN-UDP" | "udp",
    TurnTcp => "TURN-TCP" | "tcp",
    TurnTls => "TURN-TLS" | "tls",
    TurnDtls => "TURN-DTLS" | "dtls",
});

impl ListenerProtocol {
    /// Whether the listener needs a certificate and key.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::TurnTls | Self::TurnDtls)
    }

    /// Whether the transport is datagram based (UDP or DTLS).
    pub fn is_datagram(self) -> bool {
        matches!(self, Self::TurnUdp | Self::TurnDtls)
    }
}

/// How a cluster's endpoints are resolved (`clusters[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClusterType {
    /// Endpoints are IPs or prefixes (default).
    #[default]
    Static,
    /// Endpoints are DNS names re-resolved periodically.
    StrictDns,
}

string_enum!(ClusterType, "cluster type", {
    Static => "STATIC",
    StrictDns => "STRICT_DNS",
});

/// Relay protocol towards a cluster (`clusters[].protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClusterProtocol {
    /// UDP (default).
    #[default]
    Udp,
    /// TCP (accepted for compatibility; upstream does not implement it either).
    Tcp,
}

string_enum!(ClusterProtocol, "cluster protocol", {
    Udp => "UDP",
    Tcp => "TCP",
});
