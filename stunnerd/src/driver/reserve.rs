//! Relay port reservations (RFC 8656 §7.2, EVEN-PORT with the R bit): the odd port next to an even
//! relay port is bound at once and parked here under a random RESERVATION-TOKEN for
//! [`RESERVATION_LIFETIME`]; an Allocate carrying the token takes the socket (from any worker, as
//! the client's second 5-tuple may land on another one). Expired reservations are closed by the
//! workers' timers. Touched on Allocate requests and once a second, never per packet.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reserved port is kept for its token.
pub(crate) const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);
/// Most reservations held at once (each holds a socket); more make EVEN-PORT with R fail with 508.
const MAX_RESERVATIONS: usize = 4096;

#[derive(Debug)]
struct Reserved {
    sock: UdpSocket,
    addr: SocketAddr,
    expires: Instant,
}

/// Reserved relay sockets by token, shared by every worker.
#[derive(Debug, Default)]
pub(crate) struct Reservations {
    map: Mutex<HashMap<[u8; 8], Reserved>>,
}

impl Reservations {
    /// Parks `sock` (bound to `addr`) until `now` + [`RESERVATION_LIFETIME`]; returns its token, or
    /// `None` when the table is full.
    pub(crate) fn insert(
        &self,
        sock: UdpSocket,
        addr: SocketAddr,
        now: Instant,
    ) -> Option<[u8; 8]> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_RESERVATIONS {
            return None;
        }
        let mut token: [u8; 8] = rand::random();
        while map.contains_key(&token) {
            token = rand::random();
        }
        let expires = now + RESERVATION_LIFETIME;
        map.insert(
            token,
            Reserved {
                sock,
                addr,
                expires,
            },
        );
        Some(token)
    }

    /// Takes the socket reserved under `token`, unless unknown or expired.
    pub(crate) fn take(&self, token: [u8; 8], now: Instant) -> Option<(UdpSocket, SocketAddr)> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&token)
            .filter(|r| r.expires > now)
            .map(|r| (r.sock, r.addr))
    }

    /// Closes expired reservations (their ports become free).
    pub(crate) fn purge(&self, now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if !map.is_empty() {
            map.retain(|_, r| r.expires > now);
        }
    }

    /// Reservations currently held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_take_once_and_expire() {
        let r = Reservations::default();
        let now = Instant::now();
        let sock = || UdpSocket::bind("127.0.0.1:0").expect("bind");
        let (a, b) = (sock(), sock());
        let addr_a = a.local_addr().expect("addr");
        let ta = r.insert(a, addr_a, now).expect("token");
        let tb = r.insert(b, addr_a, now).expect("token");
        assert_ne!(ta, tb);
        assert_eq!(r.take(ta, now).map(|(_, addr)| addr), Some(addr_a));
        assert!(r.take(ta, now).is_none(), "a token is used once");
        let late = now + RESERVATION_LIFETIME;
        assert!(r.take(tb, late).is_none(), "expired");
        let c = sock();
        r.insert(c, addr_a, now).expect("token");
        r.purge(now + Duration::from_secs(1));
        assert_eq!(r.len(), 1);
        r.purge(late);
        assert_eq!(r.len(), 0);
    }
}
