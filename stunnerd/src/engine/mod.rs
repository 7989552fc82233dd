//! Sans-IO TURN engine (RFC 8656 over RFC 8489): the allocation state machine of one worker shard.
//!
//! ```text
//!   driver (sockets, clock, timers)                     engine (this module, no I/O)
//!   client datagram/frame ──handle_client(now,..)──▶  Action::Reply        → send `out` to the client
//!                                                     Action::Relay{..}    → send data to a peer via R
//!                                                     Action::Allocate(rq) → bind a relay socket, then
//!                                                        complete_allocate(now, rq, Ok((R, addr)), out)
//!   relay socket datagram ───handle_peer(now,..)───▶  true → send `out` to the allocation's client
//!   every poll_timeout() ────handle_timeout(now)───▶  expired allocations dropped (their R with them)
//! ```
//!
//! The engine never reads the clock or touches a socket: time is an argument, and each allocation owns
//! an opaque relay handle `R` chosen by the driver (a socket in production, `()` in tests), dropped
//! when the allocation goes away. One engine per worker; state shared between shards lives in
//! [`Shared`] and is touched only by requests, never per relayed packet.

mod alloc;
mod auth;
mod filter;
mod input;
mod permissions;
mod ratelimit;
mod requests;
mod shared;
pub mod special;
pub mod stats;
mod table;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::turn::{Family, TransactionId};

pub use alloc::AllocId;
pub use auth::{Auth, AuthError, rest_api_password};
pub use filter::{OwnAddrs, PeerFilter};
pub use shared::{AllocOutcome, Shared};
pub use stats::{ClusterStats, DropReason, ListenerStats, Traffic};

use alloc::Slab;
use auth::Nonces;

/// Allocation lifetime when the client asks for less (RFC 8656 default).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Longest allocation lifetime granted.
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// Lifetime of a permission.
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Lifetime of a channel binding.
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// How often allocations are checked for expiry.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How often expired permissions and channels are purged (they are already ignored once expired).
const PURGE_INTERVAL: Duration = Duration::from_secs(30);

/// Identifies a listener within the engine; assigned by the driver and never reused in a process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ListenerId(pub u32);

/// Engine-wide settings from the `auth` and `admin` sections of the config.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How requests are authenticated.
    pub auth: Auth,
    /// REALM sent in challenges and used in long-term keys.
    pub realm: String,
    /// Most allocations per username over all shards (0 = unlimited).
    pub user_quota: u32,
    /// Most allocations per client IP over all shards (0 = unlimited).
    pub client_quota: u32,
    /// Most allocations over all shards (0 = unlimited).
    pub max_allocations: u32,
    /// How long a nonce stays valid before 438 Stale Nonce.
    pub nonce_lifetime: Duration,
    /// SOFTWARE attribute of responses (empty = none).
    pub software: String,
    /// Lifetime of an allocation when the client asks for less ([`DEFAULT_LIFETIME`]).
    pub default_lifetime: Duration,
    /// Longest lifetime granted ([`MAX_LIFETIME`]).
    pub max_lifetime: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            auth: Auth::None,
            realm: "stunner.l7mp.io".into(),
            user_quota: 0,
            client_quota: 0,
            max_allocations: 0,
            nonce_lifetime: Duration::from_secs(600),
            software: String::new(),
            default_lifetime: DEFAULT_LIFETIME,
            max_lifetime: MAX_LIFETIME,
        }
    }
}

/// What the engine needs to know about a listener.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    /// Listener name, for logs.
    pub name: Arc<str>,
    /// Whether the client transport is a stream (TCP): ChannelData to clients is then padded.
    pub stream: bool,
    /// The peers this listener may relay to.
    pub filter: PeerFilter,
    /// This worker's counters for the listener.
    pub stats: Arc<ListenerStats>,
}

/// What the driver must do after [`Engine::handle_client`].
#[derive(Debug)]
pub enum Action<'a, R> {
    /// Nothing (dropped and counted, or an indication without answer).
    Drop,
    /// Send the `out` buffer to the client.
    Reply,
    /// Send `data` to `peer` through the allocation's relay handle.
    Relay {
        /// The relay handle of the allocation.
        relay: &'a R,
        /// Destination peer.
        peer: SocketAddr,
        /// Payload, borrowed from the input buffer.
        data: &'a [u8],
    },
    /// Bind a relay socket and call [`Engine::complete_allocate`].
    Allocate(AllocateRequest),
}

/// An authorised Allocate waiting for its relay socket.
#[derive(Debug)]
pub struct AllocateRequest {
    /// The listener the request came in on.
    pub listener: ListenerId,
    /// The client transport address.
    pub client: SocketAddr,
    /// Address family of the relay address the client wants.
    pub family: Family,
    /// Whether the client asked for an even relay port (EVEN-PORT).
    pub even_port: bool,
    /// EVEN-PORT with the R bit: also reserve port + 1 and issue a RESERVATION-TOKEN for it.
    pub reserve: bool,
    /// RESERVATION-TOKEN of the request: the relay must be the port reserved under it.
    pub reservation: Option<[u8; 8]>,
    /// Token the driver issued for the reserved port + 1 (set before `complete_allocate` when
    /// `reserve`); sent back in the Allocate success response.
    pub issued_token: Option<[u8; 8]>,
    tid: TransactionId,
    username: Box<str>,
    key: Option<[u8; 16]>,
    lifetime: Duration,
}

/// Why the driver could not provide a relay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// No relay address of the requested family can be bound (440).
    #[error("address family not supported")]
    Family,
    /// Binding failed, e.g. out of ports or descriptors (508).
    #[error("no relay socket available")]
    Capacity,
    /// The RESERVATION-TOKEN is unknown or its reservation expired (508).
    #[error("unknown or expired reservation")]
    UnknownReservation,
}

/// A small, fast hasher for socket-address keys (FxHash-style); keys are not attacker-chosen in a way
/// that helps collisions more than any 5-tuple would, and the map is per shard. It also indexes the
/// permission and channel tables of one allocation (see `table` for why that is acceptable).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One listener as the engine sees it.
#[derive(Debug)]
struct Listener {
    id: ListenerId,
    spec: ListenerSpec,
}

/// The TURN state machine of one shard. `R` is the driver's relay handle, dropped with its allocation.
#[derive(Debug)]
pub struct Engine<R> {
    cfg: Arc<EngineConfig>,
    shared: Arc<Shared>,
    nonces: Nonces,
    listeners: Vec<Listener>,
    allocs: Slab<R>,
    by_client: FxMap<(ListenerId, SocketAddr), AllocId>,
    next_sweep: Option<Instant>,
    next_purge: Option<Instant>,
    rng: u64,
    nonce_buf: String,
    /// Budget of 401/438 challenges per source (reflection).
    challenges: ratelimit::ChallengeLimiter,
}

impl<R> Engine<R> {
    /// A shard with no listeners.
    pub fn new(cfg: Arc<EngineConfig>, shared: Arc<Shared>) -> Self {
        let seed = u64::from_le_bytes(shared.nonce_secret[..8].try_into().unwrap_or([1; 8])) | 1;
        Self {
            nonces: Nonces {
                lifetime: cfg.nonce_lifetime,
            },
            cfg,
            shared,
            listeners: Vec::new(),
            allocs: Slab::default(),
            by_client: FxMap::default(),
            next_sweep: None,
            next_purge: None,
            rng: seed,
            nonce_buf: String::with_capacity(32),
            challenges: ratelimit::ChallengeLimiter::default(),
        }
    }

    /// Replaces auth/realm/quota. Live allocations keep the key they were created with.
    pub fn set_config(&mut self, cfg: Arc<EngineConfig>) {
        self.nonces = Nonces {
            lifetime: cfg.nonce_lifetime,
        };
        self.cfg = cfg;
    }

    /// The state shared with other shards.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Adds (or replaces the spec of) a listener. Replacing keeps its allocations.
    pub fn add_listener(&mut self, id: ListenerId, spec: ListenerSpec) {
        match self.listeners.iter_mut().find(|l| l.id == id) {
            Some(l) => l.spec = spec,
            None => self.listeners.push(Listener { id, spec }),
        }
        self.refresh_channel_verdicts(id);
    }

    /// Replaces the peer filter of a listener, re-checking the channels of its allocations.
    pub fn set_filter(&mut self, id: ListenerId, filter: PeerFilter) {
        if let Some(l) = self.listeners.iter_mut().find(|l| l.id == id) {
            l.spec.filter = filter;
        }
        self.refresh_channel_verdicts(id);
    }

    /// Removes a listener and every allocation made through it; returns how many were closed.
    pub fn remove_listener(&mut self, id: ListenerId) -> usize {
        let ids: Vec<AllocId> = self
            .allocs
            .iter_mut()
            .filter(|(_, a)| a.listener == id)
            .map(|(i, _)| i)
            .collect();
        for &aid in &ids {
            self.close(aid, "listener removed");
        }
        self.listeners.retain(|l| l.id != id);
        ids.len()
    }

    /// A stream client went away (TCP connection closed): its allocation, if any, is released.
    pub fn client_gone(&mut self, listener: ListenerId, client: SocketAddr) {
        if let Some(&id) = self.by_client.get(&(listener, client)) {
            self.close(id, "client connection closed");
        }
    }

    /// Closes every allocation (shutdown); returns how many there were.
    pub fn close_all(&mut self) -> usize {
        let ids: Vec<AllocId> = self.allocs.iter_mut().map(|(i, _)| i).collect();
        for &id in &ids {
            self.close(id, "shutdown");
        }
        ids.len()
    }

    /// Live allocations in this shard.
    pub fn allocation_count(&self) -> usize {
        self.allocs.len()
    }

    /// The relay handle of a live allocation.
    pub fn relay(&self, id: AllocId) -> Option<&R> {
        self.allocs.get(id).map(|a| &a.relay)
    }

    /// The relay address of a live allocation.
    pub fn relay_addr(&self, id: AllocId) -> Option<SocketAddr> {
        self.allocs.get(id).map(|a| a.relay_addr)
    }

    /// The allocation of a client 5-tuple.
    pub fn allocation_of(&self, listener: ListenerId, client: SocketAddr) -> Option<AllocId> {
        self.by_client.get(&(listener, client)).copied()
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Expires allocations (and, less often, purges expired permissions and channels).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| t > now) {
            return;
        }
        let expired: Vec<AllocId> = self
            .allocs
            .iter_mut()
            .filter(|(_, a)| a.expires <= now)
            .map(|(id, _)| id)
            .collect();
        for id in expired {
            self.close(id, "lifetime expired");
        }
        if self.next_purge.is_none_or(|t| t <= now) {
            self.allocs.iter_mut().for_each(|(_, a)| a.purge(now));
            self.next_purge = Some(now + PURGE_INTERVAL);
        }
        self.next_sweep = (self.allocs.len() > 0).then(|| now + SWEEP_INTERVAL);
    }

    /// Removes an allocation, releasing its quota and dropping its relay handle.
    fn close(&mut self, id: AllocId, why: &str) {
        let Some(a) = self.allocs.remove(id) else {
            return;
        };
        self.by_client.remove(&(a.listener, a.client));
        self.shared.quota_release(&a.username);
        self.shared.ip_quota_release(a.client.ip());
        self.shared.allocation_closed();
        if let Some(l) = self.listeners.iter().find(|l| l.id == a.listener) {
            tracing::debug!(listener = %l.spec.name, client = %a.client, relay = %a.relay_addr,
                            reason = why, "allocation closed");
        }
    }

    fn refresh_channel_verdicts(&mut self, id: ListenerId) {
        let Some(l) = self.listeners.iter().find(|l| l.id == id) else {
            return;
        };
        for (_, a) in self.allocs.iter_mut().filter(|(_, a)| a.listener == id) {
            a.recheck_channels(|peer| l.spec.filter.cluster_of(peer));
        }
    }

    #[inline]
    fn listener_index(&self, id: ListenerId) -> Option<usize> {
        self.listeners.iter().position(|l| l.id == id)
    }

    #[inline]
    fn next_tid(&mut self) -> TransactionId {
        let mut tid = [0u8; 12];
        for chunk in tid.chunks_mut(4) {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            chunk.copy_from_slice(&self.rng.to_le_bytes()[..4]);
        }
        TransactionId(tid)
    }

    /// Unix time at `now`, from the shared time base.
    fn unix_now(&self, now: Instant) -> u64 {
        self.shared.unix_at_epoch + now.saturating_duration_since(self.shared.epoch).as_secs()
    }
}

impl EngineConfig {
    /// Lifetime granted for a requested one (RFC 8656 §7.2): max(default, min(requested, max)).
    fn granted_lifetime(&self, requested: Option<u32>) -> Duration {
        let asked = requested.map_or(self.default_lifetime, |s| Duration::from_secs(u64::from(s)));
        asked
            .min(self.max_lifetime)
            .max(self.default_lifetime.min(self.max_lifetime))
    }
}
