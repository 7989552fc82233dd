//! Allocation state: the relay handle, lifetime, permissions and channel bindings of one client
//! 5-tuple, and the generational slab that stores allocations of one shard.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use proto::turn::TransactionId;

use super::ListenerId;

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

/// A channel binding between `number` and `peer` until `expires`; `cluster` caches the peer filter
/// verdict (recomputed when the listener's filter changes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Channel {
    pub(crate) number: u16,
    pub(crate) peer: SocketAddr,
    pub(crate) expires: Instant,
    pub(crate) cluster: Option<u16>,
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
    pub(crate) permissions: Vec<Permission>,
    pub(crate) channels: Vec<Channel>,
}

impl<R> Allocation<R> {
    /// Whether a live permission exists for `ip`.
    #[inline]
    pub(crate) fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions
            .iter()
            .any(|p| p.ip == ip && p.expires > now)
    }

    /// Installs or refreshes the permission for `ip`; false when the table is full.
    pub(crate) fn permit(&mut self, ip: IpAddr, expires: Instant) -> bool {
        if let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip) {
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
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
    }

    /// The live channel bound to `peer`.
    #[inline]
    pub(crate) fn channel_to(&self, peer: SocketAddr, now: Instant) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
    }

    /// Drops expired permissions and channels.
    pub(crate) fn purge(&mut self, now: Instant) {
        self.permissions.retain(|p| p.expires > now);
        self.channels.retain(|c| c.expires > now);
    }
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
