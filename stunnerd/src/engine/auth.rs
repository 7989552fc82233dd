//! Long-term credential checks (RFC 8489 §9.2) for the three auth modes of the config, and the
//! stateless nonces with expiry that make 438 Stale Nonce work across shards and listener restarts.
//!
//! Nonce = 8 lowercase hex digits of its expiry (seconds since the engine epoch) + 16 lowercase hex
//! digits of HMAC-SHA1(secret, expiry, client IP). Any shard can check it; nothing is stored per
//! client. A nonce is valid only from the client IP it was issued to, only in exactly the form it
//! was issued in, and is compared in constant time.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use proto::turn::long_term_key;
use sha1::Sha1;

use super::shared::Shared;

type HmacSha1 = Hmac<Sha1>;

/// Length of the nonces this engine issues.
const NONCE_LEN: usize = 24;

/// How requests are authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No authentication (`type: none`): no MESSAGE-INTEGRITY is required or sent.
    None,
    /// One static username/password (`type: static`).
    Static {
        /// The only accepted username.
        username: String,
        /// Its long-term key MD5(username:realm:password), precomputed.
        key: [u8; 16],
    },
    /// TURN REST API credentials (`type: ephemeral`): password = base64(HMAC-SHA1(secret, username)).
    Ephemeral {
        /// The shared secret.
        secret: Vec<u8>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets or keys.
        match self {
            Self::None => f.write_str("Auth::None"),
            Self::Static { username, .. } => write!(f, "Auth::Static({username})"),
            Self::Ephemeral { .. } => f.write_str("Auth::Ephemeral"),
        }
    }
}

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The username is not known (static) or not a valid TURN REST API username (ephemeral).
    #[error("unknown username")]
    UnknownUser,
    /// A TURN REST API username whose expiry is zero or in the past.
    #[error("credentials expired")]
    Expired,
}

impl Auth {
    /// Static auth for `username`/`password` in `realm`.
    pub fn new_static(username: &str, password: &str, realm: &str) -> Self {
        Self::Static {
            username: username.to_owned(),
            key: long_term_key(username, realm, password),
        }
    }

    /// Whether requests must carry MESSAGE-INTEGRITY.
    pub fn required(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// The long-term key of `username` at unix time `unix_now`.
    pub fn key_for(
        &self,
        username: &str,
        realm: &str,
        unix_now: u64,
    ) -> Result<[u8; 16], AuthError> {
        match self {
            Self::None => Err(AuthError::UnknownUser),
            Self::Static {
                username: user,
                key,
            } if user == username => Ok(*key),
            Self::Static { .. } => Err(AuthError::UnknownUser),
            Self::Ephemeral { secret } => {
                let expiry = rest_api_expiry(username).ok_or(AuthError::UnknownUser)?;
                if expiry == 0 || expiry <= unix_now {
                    return Err(AuthError::Expired);
                }
                let password = rest_api_password(secret, username);
                Ok(long_term_key(username, realm, &password))
            }
        }
    }
}

/// The expiry of a TURN REST API username: the first `:`-separated part that parses as an integer.
fn rest_api_expiry(username: &str) -> Option<u64> {
    username
        .split(':')
        .find_map(|part| part.parse::<u64>().ok())
}

/// The TURN REST API password for `username`: base64(HMAC-SHA1(secret, username)).
pub fn rest_api_password(secret: &[u8], username: &str) -> String {
    let mut mac = HmacSha1::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac());
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// HMAC accepts keys of any length, so `new_from_slice` cannot fail; this keeps the types honest.
fn unreachable_hmac() -> HmacSha1 {
    HmacSha1::new_from_slice(&[0u8; 20])
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Issues and checks the engine's stateless nonces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Nonces {
    /// How long an issued nonce stays valid.
    pub(crate) lifetime: Duration,
}

impl Nonces {
    /// A fresh nonce for `client` valid until `now + lifetime`, written into `out`.
    pub(crate) fn issue(&self, shared: &Shared, now: Instant, client: IpAddr, out: &mut String) {
        let expiry = secs_since(shared, now).saturating_add(self.lifetime.as_secs().max(1)) as u32;
        write_nonce(shared, expiry, client, out);
    }

    /// Whether `nonce` was issued by this process (any shard) to `client` and has not expired.
    /// `Err(())` means forged, garbled, altered or issued to another address, `Ok(false)` stale.
    pub(crate) fn check(
        &self,
        shared: &Shared,
        now: Instant,
        client: IpAddr,
        nonce: &str,
    ) -> Result<bool, ()> {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return Err(());
        }
        let expiry = u32::from_str_radix(&nonce[..8], 16).map_err(|_| ())?;
        let mut expected = String::with_capacity(NONCE_LEN);
        write_nonce(shared, expiry, client, &mut expected);
        if !constant_time_eq(expected.as_bytes(), nonce.as_bytes()) {
            return Err(());
        }
        Ok(u64::from(expiry) > secs_since(shared, now))
    }
}

/// The nonce of `expiry` for `client`, in its only accepted (lowercase hex) form.
fn write_nonce(shared: &Shared, expiry: u32, client: IpAddr, out: &mut String) {
    out.clear();
    let _ = write!(out, "{expiry:08x}");
    for b in nonce_mac(shared, expiry, client) {
        let _ = write!(out, "{b:02x}");
    }
}

/// Equality whose running time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && diff == 0
}

fn secs_since(shared: &Shared, now: Instant) -> u64 {
    now.saturating_duration_since(shared.epoch).as_secs()
}

fn nonce_mac(shared: &Shared, expiry: u32, client: IpAddr) -> [u8; 8] {
    let mut mac =
        HmacSha1::new_from_slice(&shared.nonce_secret).unwrap_or_else(|_| unreachable_hmac());
    mac.update(&expiry.to_be_bytes());
    match client.to_canonical() {
        IpAddr::V4(ip) => mac.update(&ip.octets()),
        IpAddr::V6(ip) => mac.update(&ip.octets()),
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 8];
    out.copy_from_slice(&full[..8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared::new(Instant::now(), 1_000_000, [7; 20])
    }

    #[test]
    fn nonce_roundtrip_and_expiry() {
        let s = shared();
        let n = Nonces {
            lifetime: Duration::from_secs(60),
        };
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut nonce = String::new();
        n.issue(&s, s.epoch, ip, &mut nonce);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(
            n.check(&s, s.epoch + Duration::from_secs(59), ip, &nonce),
            Ok(true)
        );
        assert_eq!(
            n.check(&s, s.epoch + Duration::from_secs(61), ip, &nonce),
            Ok(false)
        );
        let mut forged = nonce.clone();
        forged.replace_range(23..24, if nonce.ends_with('0') { "1" } else { "0" });
        assert_eq!(n.check(&s, s.epoch, ip, &forged), Err(()));
        assert_eq!(n.check(&s, s.epoch, ip, "short"), Err(()));
        assert_eq!(n.check(&s, s.epoch, ip, "ééééééééééé"), Err(()));
    }

    #[test]
    fn nonces_are_bound_to_the_client_ip_and_to_their_exact_form() {
        let s = shared();
        let n = Nonces {
            lifetime: Duration::from_secs(60),
        };
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut nonce = String::new();
        n.issue(&s, s.epoch, ip, &mut nonce);
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert_eq!(n.check(&s, s.epoch, other, &nonce), Err(()));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(n.check(&s, s.epoch, mapped, &nonce), Ok(true));
        // Upper-case hex or a '+' sign decode to the same numbers but are not what we issued.
        let upper = nonce.to_uppercase();
        if upper != nonce {
            assert_eq!(n.check(&s, s.epoch, ip, &upper), Err(()));
        }
        let plus = format!("+{}", &nonce[1..]);
        assert_eq!(n.check(&s, s.epoch, ip, &plus), Err(()));
    }

    #[test]
    fn ephemeral_usernames() {
        let auth = Auth::Ephemeral {
            secret: b"s3cret".to_vec(),
        };
        let key = auth
            .key_for("2000000:alice", "r", 1_000_000)
            .expect("valid");
        let pw = rest_api_password(b"s3cret", "2000000:alice");
        assert_eq!(key, long_term_key("2000000:alice", "r", &pw));
        assert_eq!(
            auth.key_for("alice:2000000", "r", 1_000_000).map(|_| ()),
            Ok(())
        );
        assert_eq!(
            auth.key_for("999:alice", "r", 1_000_000),
            Err(AuthError::Expired)
        );
        assert_eq!(auth.key_for("0:alice", "r", 1), Err(AuthError::Expired));
        assert_eq!(auth.key_for("alice", "r", 1), Err(AuthError::UnknownUser));
    }

    #[test]
    fn static_user() {
        let auth = Auth::new_static("u", "p", "r");
        assert_eq!(auth.key_for("u", "r", 0), Ok(long_term_key("u", "r", "p")));
        assert_eq!(auth.key_for("x", "r", 0), Err(AuthError::UnknownUser));
        assert!(!Auth::None.required());
    }
}
