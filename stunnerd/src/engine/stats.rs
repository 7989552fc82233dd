//! Packet-path counters written by exactly one worker thread and read (summed over workers) by the
//! metrics collector at scrape time. A counter is an `AtomicU64` updated with a relaxed load + store,
//! which compiles to plain moves: no lock prefix and no cache-line sharing on the hot path.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A monotonically increasing counter with a single writer (its worker thread).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker thread may call this (single writer).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// An up/down gauge with a single writer (its worker thread).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds `n` (may be negative). Only the owning worker thread may call this.
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Why a packet was dropped instead of relayed or answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a STUN message or ChannelData, or a STUN message that failed to decode.
    Malformed,
    /// Data (Send indication, ChannelData, peer packet) for a 5-tuple or relay without an allocation.
    NoAllocation,
    /// Data to or from a peer without a permission or channel.
    NoPermission,
    /// Data to or from a peer that the listener's routes do not allow (peer filtering).
    Filtered,
    /// The socket refused the packet (send buffer full or an I/O error).
    SendFailed,
    /// A TLS connection closed before its handshake finished (plaintext or garbage on a TLS port,
    /// a failed or timed-out handshake).
    TlsHandshake,
    /// A connection refused or closed by a connection limit (per listener or per source IP).
    ConnectionLimit,
    /// A connection closed by the first-request or idle timeout.
    Timeout,
    /// An unauthenticated request over UDP not answered: its source used up its challenge budget.
    RateLimited,
}

impl DropReason {
    /// Every reason, in the order of [`ListenerStats::dropped`].
    pub const ALL: [Self; 9] = [
        Self::Malformed,
        Self::NoAllocation,
        Self::NoPermission,
        Self::Filtered,
        Self::SendFailed,
        Self::TlsHandshake,
        Self::ConnectionLimit,
        Self::Timeout,
        Self::RateLimited,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::NoAllocation => "no_allocation",
            Self::NoPermission => "no_permission",
            Self::Filtered => "filtered",
            Self::SendFailed => "send_failed",
            Self::TlsHandshake => "tls_handshake",
            Self::ConnectionLimit => "connection_limit",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// Packets and bytes exchanged each way, with a single writer (its worker thread).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Packets received (from clients, or from peers).
    pub rx_packets: Counter,
    /// Bytes received.
    pub rx_bytes: Counter,
    /// Packets sent (to clients, or to peers).
    pub tx_packets: Counter,
    /// Bytes sent.
    pub tx_bytes: Counter,
}

impl Traffic {
    /// Counts one received packet of `len` bytes.
    #[inline]
    pub fn rx(&self, len: usize) {
        self.rx_packets.add(1);
        self.rx_bytes.add(len as u64);
    }

    /// Counts one sent packet of `len` bytes.
    #[inline]
    pub fn tx(&self, len: usize) {
        self.tx_packets.add(1);
        self.tx_bytes.add(len as u64);
    }
}

/// Per-listener counters of one worker (`stunner_listener_*`).
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Packets and bytes exchanged with clients.
    pub traffic: Traffic,
    /// Open TCP connections (UDP listeners count allocations here, like upstream).
    pub connections: Gauge,
    /// TCP connections accepted / allocations created since start.
    pub connections_total: Counter,
    /// CreatePermission / ChannelBind requests refused by peer filtering.
    pub permission_denied: Counter,
    /// Dropped packets, indexed like [`DropReason::ALL`].
    pub dropped: [Counter; DropReason::ALL.len()],
    /// Listener tasks that panicked (and were restarted).
    pub listener_failures: Counter,
    /// Connection or association tasks that panicked (the connection was closed).
    pub connection_failures: Counter,
}

impl ListenerStats {
    /// Counts one dropped packet.
    #[inline]
    pub fn drop_packet(&self, reason: DropReason) {
        self.dropped[reason as usize].add(1);
    }
}

/// Per-cluster counters of one worker (`stunner_cluster_*`): traffic exchanged with the peers of the
/// cluster, `rx` from peers and `tx` to peers.
pub type ClusterStats = Traffic;
