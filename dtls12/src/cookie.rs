//! Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1): `Cookie = HMAC(Secret, Client-IP,
//! Client-Parameters)`, here with a time period so that a cookie expires and the secret's use is
//! bounded. A server keeps nothing between a ClientHello and the HelloVerifyRequest it answers; only
//! a ClientHello that returns a valid cookie (so its source address can receive) creates state.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::Error;
use crate::codec::ClientHello;

/// How long one period lasts; a cookie is valid in its period and the next one.
pub const PERIOD: Duration = Duration::from_secs(30);
/// Bytes of a cookie: one for the period, the rest HMAC-SHA256.
pub(crate) const LEN: usize = 20;

/// The secret of a server's cookies.
pub(crate) struct CookieKey {
    key: hmac::Key,
    base: Instant,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieKey").finish_non_exhaustive()
    }
}

impl CookieKey {
    /// A fresh random secret; periods count from `now`.
    pub(crate) fn new(rng: &SystemRandom, now: Instant) -> Result<Self, Error> {
        let mut secret = [0; 32];
        rng.fill(&mut secret)
            .map_err(|_| Error::Crypto("random cookie secret"))?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            base: now,
        })
    }

    fn period(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_secs() / PERIOD.as_secs()
    }

    /// The cookie for `hello` from `client` at `now`.
    pub(crate) fn make(
        &self,
        now: Instant,
        client: SocketAddr,
        hello: &ClientHello<'_>,
    ) -> [u8; LEN] {
        self.at(self.period(now), client, hello)
    }

    fn at(&self, period: u64, client: SocketAddr, hello: &ClientHello<'_>) -> [u8; LEN] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&period.to_be_bytes());
        let ip = match client {
            SocketAddr::V4(a) => a.ip().to_ipv6_mapped().octets(),
            SocketAddr::V6(a) => a.ip().octets(),
        };
        ctx.update(&ip);
        ctx.update(&client.port().to_be_bytes());
        // The parameters the handshake goes on with: what the cookie vouches for.
        for field in [hello.random, hello.session_id, hello.suites] {
            ctx.update(&(field.len() as u16).to_be_bytes());
            ctx.update(field);
        }
        let tag = ctx.sign();
        let mut cookie = [0; LEN];
        cookie[0] = period as u8;
        cookie[1..].copy_from_slice(&tag.as_ref()[..LEN - 1]);
        cookie
    }

    /// Whether `hello` carries a cookie this key made for `client` in the current or the previous
    /// period (compared in constant time).
    pub(crate) fn verify(&self, now: Instant, client: SocketAddr, hello: &ClientHello<'_>) -> bool {
        let Ok(got) = <[u8; LEN]>::try_from(hello.cookie) else {
            return false;
        };
        let now = self.period(now);
        [Some(now), now.checked_sub(1)]
            .into_iter()
            .flatten()
            .filter(|p| *p as u8 == got[0])
            .any(|p| {
                let want = self.at(p, client, hello);
                want.iter().zip(got).fold(0, |d, (a, b)| d | (a ^ b)) == 0
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello<'a>(random: &'a [u8], cookie: &'a [u8]) -> ClientHello<'a> {
        ClientHello {
            version: 0xfefd,
            random,
            session_id: &[],
            cookie,
            suites: &[0xc0, 0x2b],
            groups: &[],
            sig_algs: &[],
            ems: true,
            reneg: true,
            point_formats: false,
            null_compression: true,
        }
    }

    #[test]
    fn a_cookie_is_bound_to_the_address_the_hello_and_two_periods() {
        let t0 = Instant::now();
        let key = CookieKey::new(&SystemRandom::new(), t0).expect("key");
        let a: SocketAddr = "192.0.2.1:5000".parse().expect("addr");
        let b: SocketAddr = "192.0.2.1:5001".parse().expect("addr");
        let cookie = key.make(t0, a, &hello(&[1; 32], &[]));
        assert!(key.verify(t0, a, &hello(&[1; 32], &cookie)));
        assert!(key.verify(t0 + PERIOD, a, &hello(&[1; 32], &cookie)));
        assert!(!key.verify(t0 + 2 * PERIOD, a, &hello(&[1; 32], &cookie)));
        assert!(!key.verify(t0, b, &hello(&[1; 32], &cookie)), "other port");
        assert!(
            !key.verify(t0, a, &hello(&[2; 32], &cookie)),
            "other random"
        );
        let mut bad = cookie;
        bad[LEN - 1] ^= 1;
        assert!(!key.verify(t0, a, &hello(&[1; 32], &bad)));
        assert!(!key.verify(t0, a, &hello(&[1; 32], &cookie[..LEN - 1])));
        let other = CookieKey::new(&SystemRandom::new(), t0).expect("key");
        assert!(
            !other.verify(t0, a, &hello(&[1; 32], &cookie)),
            "other secret"
        );
    }
}
