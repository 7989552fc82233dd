//! TURN credentials: static long-term ones, or ephemeral ones minted from a shared secret by the TURN
//! REST API scheme that STUNner's `ephemeral` auth expects (username `"<expiry-unix>[:<user>]"`,
//! password `base64(HMAC-SHA1(secret, username))`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// A username/password pair ready to authenticate with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The USERNAME attribute value.
    pub username: String,
    /// The password; the long-term key is `MD5(username:realm:password)`.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How to obtain credentials for each new allocation.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthSpec {
    /// Fixed username and password (STUNner `static` auth, coturn `--user`).
    Static(Credentials),
    /// TURN REST API credentials minted from `secret`, valid for `ttl`, with an optional user id.
    Ephemeral {
        /// The shared secret configured on the server.
        secret: String,
        /// Appended as `:<user>` to the expiry timestamp when set.
        user: Option<String>,
        /// How long the minted credentials stay valid.
        ttl: Duration,
    },
}

impl std::fmt::Debug for AuthSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(c) => f.debug_tuple("Static").field(c).finish(),
            Self::Ephemeral { user, ttl, .. } => f
                .debug_struct("Ephemeral")
                .field("user", user)
                .field("ttl", ttl)
                .finish_non_exhaustive(),
        }
    }
}

impl AuthSpec {
    /// Credentials to use for an allocation created at `now`.
    pub fn credentials(&self, now: SystemTime) -> Credentials {
        match self {
            Self::Static(c) => c.clone(),
            Self::Ephemeral { secret, user, ttl } => ephemeral(secret, user.as_deref(), *ttl, now),
        }
    }
}

/// Mints TURN REST API credentials valid until `now + ttl`.
pub fn ephemeral(secret: &str, user: Option<&str>, ttl: Duration, now: SystemTime) -> Credentials {
    let expiry = (now + ttl)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let username = match user {
        Some(u) if !u.is_empty() => format!("{expiry}:{u}"),
        _ => expiry.to_string(),
    };
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Credentials { username, password }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_matches_turn_rest_scheme() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = ephemeral("my-secret", Some("alice"), Duration::from_secs(3600), now);
        assert_eq!(c.username, "1700003600:alice");
        // Independently computed: printf '1700003600:alice' | openssl dgst -sha1 -hmac my-secret -binary | base64
        assert_eq!(c.password, "EdG/c4oWEky9PFTwqKV55PIRwgE=");
        let anon = ephemeral("my-secret", None, Duration::from_secs(60), now);
        assert_eq!(anon.username, "1700000060");
    }

    #[test]
    fn debug_hides_secrets() {
        let spec = AuthSpec::Ephemeral {
            secret: "s3cr3t".into(),
            user: None,
            ttl: Duration::from_secs(1),
        };
        assert!(!format!("{spec:?}").contains("s3cr3t"));
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
