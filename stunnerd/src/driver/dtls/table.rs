//! The associations of one TURN-DTLS listener, by client address. Entries exist only for clients
//! that returned a valid cookie (`dtls12::accept`), so spoofed sources cannot make any; still, at
//! most [`MAX_HALF_OPEN`] handshakes are pending at once (a new one beyond that evicts the oldest,
//! so hosts that hold handshakes open cannot lock the table) and one source IP holds at most
//! [`MAX_HALF_OPEN_PER_IP`] of them (beyond that its new ones are refused, and their clients
//! retransmit: a burst of clients behind one NAT completes in rounds instead of evicting its own
//! nearly done handshakes, and one host cannot push out the handshakes of others).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;

/// Most handshakes in progress at once per listener (a few KiB each: the transcript and flight 4).
pub(crate) const MAX_HALF_OPEN: usize = 256;
/// Most handshakes in progress at once from one source IP.
pub(crate) const MAX_HALF_OPEN_PER_IP: usize = 64;

/// A new handshake from an IP that already has [`MAX_HALF_OPEN_PER_IP`] in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refused;

/// The client table of one listener (`C`: what is kept per client).
pub(super) struct Table<C> {
    clients: HashMap<SocketAddr, Rc<C>>,
    /// Entries still handshaking, oldest first.
    half_open: VecDeque<SocketAddr>,
}

impl<C> Default for Table<C> {
    fn default() -> Self {
        Self {
            clients: HashMap::new(),
            half_open: VecDeque::new(),
        }
    }
}

impl<C> Table<C> {
    pub(super) fn get(&self, client: &SocketAddr) -> Option<Rc<C>> {
        self.clients.get(client).cloned()
    }

    /// Adds a new (handshaking) client, evicting the oldest pending handshake first when the
    /// table is at its limit (returned); refused when `addr`'s IP is at its own.
    pub(super) fn insert(
        &mut self,
        addr: SocketAddr,
        c: C,
    ) -> Result<Option<(SocketAddr, Rc<C>)>, Refused> {
        let ip = addr.ip();
        let same_ip = self.half_open.iter().filter(|a| a.ip() == ip).count();
        if same_ip >= MAX_HALF_OPEN_PER_IP {
            return Err(Refused);
        }
        let evicted = self.make_room();
        self.remove(addr);
        self.half_open.push_back(addr);
        self.clients.insert(addr, Rc::new(c));
        Ok(evicted)
    }

    /// The handshake of `addr` completed: it no longer counts as half-open.
    pub(super) fn established(&mut self, addr: SocketAddr) {
        self.half_open.retain(|&a| a != addr);
    }

    /// Drops the entry of `addr`.
    pub(super) fn remove(&mut self, addr: SocketAddr) -> Option<Rc<C>> {
        self.half_open.retain(|&a| a != addr);
        self.clients.remove(&addr)
    }

    /// Every entry (for the periodic timers).
    pub(super) fn entries(&self) -> Vec<(SocketAddr, Rc<C>)> {
        self.clients.iter().map(|(a, c)| (*a, c.clone())).collect()
    }

    /// Entries, and of them still handshaking.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        (self.clients.len(), self.half_open.len())
    }

    fn make_room(&mut self) -> Option<(SocketAddr, Rc<C>)> {
        if self.half_open.len() < MAX_HALF_OPEN {
            return None;
        }
        let victim = *self.half_open.front()?;
        tracing::debug!(client = %victim, "DTLS handshake evicted by a newer one");
        self.remove(victim).map(|c| (victim, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_open_entries_are_bounded_and_established_ones_stay() {
        let mut t = Table::default();
        let addr = |n: u16| SocketAddr::from(([127, 0, (n >> 8) as u8, n as u8], 4000 + n));
        let first = addr(1);
        assert_eq!(t.insert(first, ()), Ok(None));
        t.established(first);
        for n in 2..=(MAX_HALF_OPEN as u16 * 3) {
            assert!(t.insert(addr(n), ()).is_ok(), "one address per IP here");
            assert!(t.counts().1 <= MAX_HALF_OPEN);
        }
        assert_eq!(t.counts(), (MAX_HALF_OPEN + 1, MAX_HALF_OPEN));
        assert!(
            t.get(&first).is_some(),
            "an established association is never evicted"
        );
        assert!(t.get(&addr(2)).is_none(), "the oldest handshake went first");
        assert!(t.remove(first).is_some() && t.get(&first).is_none());
    }

    #[test]
    fn one_source_is_refused_beyond_its_share_and_evicts_nobody() {
        let mut t = Table::default();
        let victim = SocketAddr::from(([10, 0, 0, 1], 5000));
        assert_eq!(t.insert(victim, ()), Ok(None));
        let flood = |port| SocketAddr::from(([10, 0, 0, 2], port));
        for port in 1..=1000u16 {
            let got = t.insert(flood(port), ());
            assert_eq!(
                got.is_ok(),
                usize::from(port) <= MAX_HALF_OPEN_PER_IP,
                "{port}"
            );
            assert_eq!(got.ok().flatten(), None, "nobody evicted at {port}");
        }
        assert_eq!(t.counts().1, 1 + MAX_HALF_OPEN_PER_IP);
        assert!(t.get(&victim).is_some());
        // Its own earlier handshakes (the ones nearly done) were kept.
        assert!(t.get(&flood(1)).is_some());
        t.remove(flood(1));
        assert!(
            t.insert(flood(2000), ()).is_ok(),
            "room again once one completed"
        );
    }
}
