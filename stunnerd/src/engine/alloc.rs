//! Allocation state: the relay handle, lifetime, permissions and channel bindings of one client
//! 5-tuple, and the generational slab that stores allocations of one shard. Permissions (by peer
//! IP) and channels (by number and by peer) live in [`Table`]s, so the per-packet lookups cost
//! O(1) however many a client binds.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use proto::turn::TransactionId;

use super::ListenerId;
use super::table::{Keyed, Table};

/// Most permissions (peer IPs) one allocation may hold; more get 508.
pub(crate) const MAX_PERMISSIONS: usize = 256;
/// Most channel bindings one allocation may hold; more get 508.
pub(crate) const MAX_CHANNELS: usize = 256;

/// Handle of an allocation within one engine shard; stale handles (of freed allocations) never
/// resolve to a newer allocation in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct AllocId {
    slot: u32,
    generation: u32,
}

/// A permission: the peer IP may send to the relay address until `expires`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Permission {
    pub(crate) ip: IpAddr,
    pub(crate) expires: Instant,
}

impl Keyed for Permission {
    type Key = IpAddr;
    fn keys(&self) -> impl Iterator<Item = IpAddr> {
        std::iter::once(self.ip)
    }
    #[inline(always)]
    fn has(&self, ip: IpAddr) -> bool {
        self.ip == ip
    }
}

/// A channel binding between `number` and `peer` until `expires`; `cluster` caches the peer filter
/// verdict (recomputed when the listener's filter changes). A number is bound to one peer and a
/// peer to one number, so either finds the binding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Channel {
    pub(crate) number: u16,
    pub(crate) peer: SocketAddr,
    pub(crate) expires: Instant,
    pub(crate) cluster: Option<u16>,
}

/// A key of a [`Channel`] in its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ChannelKey {
    Number(u16),
    Peer(SocketAddr),
}

impl Keyed for Channel {
    type Key = ChannelKey;
    fn keys(&self) -> impl Iterator<Item = ChannelKey> {
        [ChannelKey::Number(self.number), ChannelKey::Peer(self.peer)].into_iter()
    }
    #[inline(always)]
    fn has(&self, key: ChannelKey) -> bool {
        match key {
            ChannelKey::Number(n) => self.number == n,
            ChannelKey::Peer(p) => self.peer == p,
        }
    }
}

/// One allocation.
#[derive(Debug)]
pub(crate) struct Allocation<R> {
    pub(crate) listener: ListenerId,
    pub(crate) client: SocketAddr,
    pub(crate) relay: R,
    pub(crate) relay_addr: SocketAddr,
    /// Username that created the allocation (later requests must use the same, else 441).
    pub(crate) username: Box<str>,
    /// Transaction id of the Allocate that created it, to answer retransmissions.
    pub(crate) alloc_tid: TransactionId,
    /// RESERVATION-TOKEN issued with the allocation (repeated when the Allocate is retransmitted).
    pub(crate) token: Option<[u8; 8]>,
    pub(crate) expires: Instant,
    pub(crate) permissions: Table<Permission>,
    pub(crate) channels: Table<Channel>,
}

impl<R> Allocation<R> {
    /// Whether a live permission exists for `ip`.
    #[inline]
    pub(crate) fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(ip).is_some_and(|p| p.expires > now)
    }

    /// Installs or refreshes the permission for `ip`; false when the table is full.
    pub(crate) fn permit(&mut self, ip: IpAddr, expires: Instant) -> bool {
        if let Some(p) = self.permissions.get_mut(ip) {
            p.expires = expires;
            return true;
        }
        if self.permissions.len() >= MAX_PERMISSIONS {
            return false;
        }
        self.permissions.push(Permission { ip, expires });
        true
    }

    /// The live channel bound to `number`.
    #[inline]
    pub(crate) fn channel(&self, number: u16, now: Instant) -> Option<&Channel> {
        live(self.channels.get(ChannelKey::Number(number)), now)
    }

    /// The live channel bound to `peer`.
    #[inline]
    pub(crate) fn channel_to(&self, peer: SocketAddr, now: Instant) -> Option<&Channel> {
        live(self.channels.get(ChannelKey::Peer(peer)), now)
    }

    /// Whether `number` is bound to another peer or `peer` to another number (RFC 8656 §12: 400).
    pub(crate) fn bound_differently(&self, number: u16, peer: SocketAddr, now: Instant) -> bool {
        self.channel(number, now).is_some_and(|c| c.peer != peer)
            || self
                .channel_to(peer, now)
                .is_some_and(|c| c.number != number)
    }

    /// Binds `number` to `peer` until `expires`, or refreshes that binding; false when the table is
    /// full. Expired bindings of `number` or of `peer` go first; live ones must be this binding (the
    /// caller checked [`Self::bound_differently`]).
    pub(crate) fn bind(
        &mut self,
        number: u16,
        peer: SocketAddr,
        cluster: u16,
        expires: Instant,
        now: Instant,
    ) -> bool {
        let expired = |key| self.channels.get(key).is_some_and(|c| c.expires <= now);
        if expired(ChannelKey::Number(number)) || expired(ChannelKey::Peer(peer)) {
            self.channels
                .retain(|c| c.expires > now || (c.number != number && c.peer != peer));
        }
        if let Some(c) = self.channels.get_mut(ChannelKey::Number(number)) {
            c.expires = expires;
            return true;
        }
        if self.channels.len() >= MAX_CHANNELS {
            return false;
        }
        self.channels.push(Channel {
            number,
            peer,
            expires,
            cluster: Some(cluster),
        });
        true
    }

    /// Re-caches the peer filter verdict of every channel.
    pub(crate) fn recheck_channels(&mut self, cluster_of: impl Fn(SocketAddr) -> Option<u16>) {
        self.channels
            .for_each_mut(|c| c.cluster = cluster_of(c.peer));
    }

    /// Drops expired permissions and channels.
    pub(crate) fn purge(&mut self, now: Instant) {
        self.permissions.retain(|p| p.expires > now);
        self.channels.retain(|c| c.expires > now);
    }
}

/// `c` if it is still live at `now`.
#[inline]
fn live(c: Option<&Channel>, now: Instant) -> Option<&Channel> {
    c.filter(|c| c.expires > now)
}

/// Generational slab of allocations.
#[derive(Debug)]
pub(crate) struct Slab<R> {
    entries: Vec<(u32, Option<Allocation<R>>)>,
    free: Vec<u32>,
    len: usize,
}

impl<R> Default for Slab<R> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<R> Slab<R> {
    /// Stores `a`, returning its handle.
    pub(crate) fn insert(&mut self, a: Allocation<R>) -> AllocId {
        self.len += 1;
        if let Some(slot) = self.free.pop() {
            let e = &mut self.entries[slot as usize];
            e.0 = e.0.wrapping_add(1);
            e.1 = Some(a);
            return AllocId {
                slot,
                generation: e.0,
            };
        }
        let slot = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        self.entries.push((0, Some(a)));
        AllocId {
            slot,
            generation: 0,
        }
    }

    /// The allocation behind `id`, if still alive.
    #[inline]
    pub(crate) fn get(&self, id: AllocId) -> Option<&Allocation<R>> {
        match self.entries.get(id.slot as usize) {
            Some((g, Some(a))) if *g == id.generation => Some(a),
            _ => None,
        }
    }

    /// Mutable access to the allocation behind `id`, if still alive.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: AllocId) -> Option<&mut Allocation<R>> {
        match self.entries.get_mut(id.slot as usize) {
            Some((g, Some(a))) if *g == id.generation => Some(a),
            _ => None,
        }
    }

    /// Removes and returns the allocation behind `id`.
    pub(crate) fn remove(&mut self, id: AllocId) -> Option<Allocation<R>> {
        let (g, entry) = self.entries.get_mut(id.slot as usize)?;
        if *g != id.generation {
            return None;
        }
        let a = entry.take()?;
        self.free.push(id.slot);
        self.len -= 1;
        Some(a)
    }

    /// Number of live allocations.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Handles and allocations of every live allocation.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (AllocId, &mut Allocation<R>)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(slot, (g, a))| {
                a.as_mut().map(|a| {
                    (
                        AllocId {
                            slot: slot as u32,
                            generation: *g,
                        },
                        a,
                    )
                })
            })
    }
}
