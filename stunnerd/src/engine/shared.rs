//! State shared by every engine shard (one per worker): the nonce secret and time base, the drain
//! flag, per-user allocation quotas and allocation counters. Touched on requests only, never per
//! relayed packet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// Outcome of an Allocate request, the `outcome` label of `stunner_allocations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocOutcome {
    /// The allocation was created.
    Created,
    /// Refused by authentication (401/438/441).
    RejectedAuth,
    /// Refused by `user_quota` (486).
    RejectedQuota,
    /// Refused because the server is draining (508).
    RejectedDraining,
    /// Refused by the per-client-IP allocation limit (486).
    RejectedClientQuota,
    /// Refused by the total allocation limit (508).
    RejectedCapacity,
}

impl AllocOutcome {
    /// Every outcome, in index order.
    pub const ALL: [Self; 6] = [
        Self::Created,
        Self::RejectedAuth,
        Self::RejectedQuota,
        Self::RejectedDraining,
        Self::RejectedClientQuota,
        Self::RejectedCapacity,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::RejectedAuth => "rejected_auth",
            Self::RejectedQuota => "rejected_quota",
            Self::RejectedDraining => "rejected_draining",
            Self::RejectedClientQuota => "rejected_client_quota",
            Self::RejectedCapacity => "rejected_capacity",
        }
    }
}

/// Process-wide engine state, shared by all shards through an `Arc`.
#[derive(Debug)]
pub struct Shared {
    /// Key of the stateless nonces (HMAC-SHA1), random per process.
    pub(crate) nonce_secret: [u8; 20],
    /// Origin of the engine's time base; nonces carry seconds since this instant.
    pub(crate) epoch: Instant,
    /// Unix time (seconds) at `epoch`, to check TURN REST API usernames without reading the clock.
    pub(crate) unix_at_epoch: u64,
    draining: AtomicBool,
    quota: Mutex<HashMap<Box<str>, u32>>,
    ip_quota: Mutex<HashMap<IpAddr, u32>>,
    active: AtomicI64,
    outcomes: [AtomicU64; AllocOutcome::ALL.len()],
    dropped: AtomicU64,
}

impl Shared {
    /// New shared state with the time base `(epoch, unix time at epoch)` and a nonce secret.
    pub fn new(epoch: Instant, unix_at_epoch: u64, nonce_secret: [u8; 20]) -> Self {
        Self {
            nonce_secret,
            epoch,
            unix_at_epoch,
            draining: AtomicBool::new(false),
            quota: Mutex::new(HashMap::new()),
            ip_quota: Mutex::new(HashMap::new()),
            active: AtomicI64::new(0),
            outcomes: Default::default(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Whether new allocations are refused (508) because the server drains.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Starts (`true`) or cancels (`false`) refusing new allocations.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::Relaxed);
    }

    /// Live allocations over all shards.
    pub fn active_allocations(&self) -> i64 {
        self.active.load(Ordering::Relaxed)
    }

    /// How many Allocate requests ended with `outcome`.
    pub fn outcome_count(&self, outcome: AllocOutcome) -> u64 {
        self.outcomes[outcome as usize].load(Ordering::Relaxed)
    }

    /// Allocations still alive when a drain deadline forced the exit.
    pub fn dropped_allocations(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records that `n` allocations are being dropped by a forced exit.
    pub fn record_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn record_outcome(&self, outcome: AllocOutcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn allocation_opened(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.record_outcome(AllocOutcome::Created);
    }

    pub(crate) fn allocation_closed(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether `user` may open one more allocation under `quota` (0 = unlimited).
    pub(crate) fn quota_allows(&self, user: &str, quota: u32) -> bool {
        quota == 0 || self.quota_of(user) < quota
    }

    /// Takes one unit of `user`'s quota; false (and nothing taken) when the quota is exhausted.
    pub(crate) fn quota_take(&self, user: &str, quota: u32) -> bool {
        let mut map = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        let used = map.entry(user.into()).or_insert(0);
        if quota != 0 && *used >= quota {
            return false;
        }
        *used += 1;
        true
    }

    /// Gives back one unit of `user`'s quota.
    pub(crate) fn quota_release(&self, user: &str) {
        let mut map = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(used) = map.get_mut(user) {
            *used = used.saturating_sub(1);
            if *used == 0 {
                map.remove(user);
            }
        }
    }

    /// Whether client `ip` may open one more allocation under `quota` (0 = unlimited).
    pub(crate) fn ip_quota_allows(&self, ip: IpAddr, quota: u32) -> bool {
        let map = self.ip_quota.lock().unwrap_or_else(|e| e.into_inner());
        quota == 0 || map.get(&ip.to_canonical()).copied().unwrap_or(0) < quota
    }

    /// Takes one unit of client `ip`'s quota; false (and nothing taken) when it is exhausted.
    pub(crate) fn ip_quota_take(&self, ip: IpAddr, quota: u32) -> bool {
        let mut map = self.ip_quota.lock().unwrap_or_else(|e| e.into_inner());
        let used = map.entry(ip.to_canonical()).or_insert(0);
        if quota != 0 && *used >= quota {
            return false;
        }
        *used += 1;
        true
    }

    /// Gives back one unit of client `ip`'s quota.
    pub(crate) fn ip_quota_release(&self, ip: IpAddr) {
        let mut map = self.ip_quota.lock().unwrap_or_else(|e| e.into_inner());
        let ip = ip.to_canonical();
        if let Some(used) = map.get_mut(&ip) {
            *used = used.saturating_sub(1);
            if *used == 0 {
                map.remove(&ip);
            }
        }
    }

    /// Whether one more allocation fits under the total limit `max` (0 = unlimited).
    pub(crate) fn capacity_allows(&self, max: u32) -> bool {
        max == 0 || self.active_allocations() < i64::from(max)
    }

    fn quota_of(&self, user: &str) -> u32 {
        let map = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        map.get(user).copied().unwrap_or(0)
    }
}
