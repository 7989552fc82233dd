//! The associations of one TURN-DTLS listener, by client address. Entries exist only for clients
//! that returned a valid cookie (`dtls12::accept`), so spoofed sources cannot make any; still, at
//! most [`MAX_HALF_OPEN`] handshakes are pending at once (a new one beyond that evicts the oldest)
//! and one source IP holds at most [`MAX_HALF_OPEN_PER_IP`] of them (it evicts its own oldest), so
//! one host cannot push out the handshakes of others.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;

/// Most handshakes in progress at once per listener.
pub(crate) const MAX_HALF_OPEN: usize = 128;
/// Most handshakes in progress at once from one source IP.
pub(crate) const MAX_HALF_OPEN_PER_IP: usize = 32;

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

    /// Adds a new (handshaking) client, evicting a pending handshake first when `addr`'s IP or the
    /// whole table is at its limit; returns the evicted entry.
    pub(super) fn insert(&mut self, addr: SocketAddr, c: C) -> Option<(SocketAddr, Rc<C>)> {
        let evicted = self.make_room(addr);
        self.remove(addr);
        self.half_open.push_back(addr);
        self.clients.insert(addr, Rc::new(c));
        evicted
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

    fn make_room(&mut self, addr: SocketAddr) -> Option<(SocketAddr, Rc<C>)> {
        let ip = addr.ip();
        let same_ip = self.half_open.iter().filter(|a| a.ip() == ip).count();
        let victim = if same_ip >= MAX_HALF_OPEN_PER_IP {
            self.half_open.iter().find(|a| a.ip() == ip).copied()
        } else if self.half_open.len() >= MAX_HALF_OPEN {
            self.half_open.front().copied()
        } else {
            None
        }?;
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
        t.insert(first, ());
        t.established(first);
        for n in 2..=(MAX_HALF_OPEN as u16 * 3) {
            t.insert(addr(n), ());
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
    fn one_source_cannot_evict_the_handshakes_of_others() {
        let mut t = Table::default();
        let victim = SocketAddr::from(([10, 0, 0, 1], 5000));
        t.insert(victim, ());
        for port in 1..=1000u16 {
            if let Some((gone, ())) = t
                .insert(SocketAddr::from(([10, 0, 0, 2], port)), ())
                .map(|(a, c)| (a, *c))
            {
                assert_ne!(gone, victim, "victim evicted at {port}");
            }
            assert!(t.counts().1 <= 1 + MAX_HALF_OPEN_PER_IP);
        }
        assert!(t.get(&victim).is_some());
    }
}
