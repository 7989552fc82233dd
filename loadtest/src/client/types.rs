//! The public vocabulary of the TURN client: its configuration, the events and failures it reports,
//! and what a received frame turned out to be.

use std::net::SocketAddr;
use std::time::Duration;

use proto::turn;

use super::Credentials;

/// How application data travels between the client and the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataMode {
    /// ChannelBind once, then 4-byte ChannelData headers (what WebRTC clients do).
    Channel,
    /// CreatePermission, then a Send indication per packet (36+ bytes of overhead).
    Send,
}

/// Settings of one allocation.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Credentials for the long-term mechanism.
    pub credentials: Credentials,
    /// The peer to permit and bind a channel to.
    pub peer: SocketAddr,
    /// Channel or Send-indication data path.
    pub mode: DataMode,
    /// True on TCP: ChannelData is padded and requests are not retransmitted.
    pub stream: bool,
    /// Requested allocation lifetime in seconds (the server may shorten it).
    pub lifetime: u32,
    /// Initial retransmission timeout (doubles per retry, UDP only).
    pub rto: Duration,
    /// Attempts per request before giving up (UDP); on streams the same total time is waited.
    pub max_attempts: u32,
    /// Channel number to bind (0x4000..=0x4FFF).
    pub channel: u16,
    /// How often permissions/channels are refreshed (they expire after 300 s / 600 s).
    pub permission_refresh: Duration,
}

impl ClientConfig {
    /// Defaults a real client would use: 600 s lifetime, 250 ms RTO, 5 attempts, refresh every 240 s.
    pub fn new(credentials: Credentials, peer: SocketAddr) -> Self {
        Self {
            credentials,
            peer,
            mode: DataMode::Channel,
            stream: false,
            lifetime: 600,
            rto: Duration::from_millis(250),
            max_attempts: 5,
            channel: turn::CHANNEL_MIN,
            permission_refresh: Duration::from_secs(240),
        }
    }
}

/// Where a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The Allocate transaction.
    Allocate,
    /// ChannelBind or CreatePermission.
    Permission,
    /// A Refresh of a live allocation.
    Refresh,
}

/// Why an allocation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The server answered with this ERROR-CODE.
    Code(u16),
    /// No response after all attempts.
    Timeout,
    /// The response made no sense (missing attribute, bad integrity).
    Protocol,
    /// The transport failed (set by drivers, e.g. ICMP port unreachable, TCP reset).
    Io,
    /// The TLS or DTLS layer failed: handshake (bad certificate, no common cipher) or a record.
    Tls,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "{c}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Protocol => f.write_str("protocol"),
            Self::Io => f.write_str("io"),
            Self::Tls => f.write_str("tls"),
        }
    }
}

/// A failed allocation: where, why, and the server's reason phrase if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The transaction that failed.
    pub stage: Stage,
    /// The kind of failure (error code, timeout...).
    pub kind: FailureKind,
    /// Human-readable detail.
    pub reason: String,
}

/// Something the driver should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The allocation exists; `latency` is from the first Allocate to its success (auth round included).
    Allocated {
        /// XOR-RELAYED-ADDRESS.
        relayed: SocketAddr,
        /// XOR-MAPPED-ADDRESS (our address as the server sees it), if sent.
        mapped: Option<SocketAddr>,
        /// Time from the first Allocate request to the success response.
        latency: Duration,
    },
    /// Permission/channel installed: data can flow. `latency` is from the first Allocate.
    Ready {
        /// Time from the first Allocate to readiness.
        latency: Duration,
    },
    /// The allocation is unusable.
    Failed(Failure),
    /// `close()` completed (or the server already forgot the allocation).
    Closed,
}

/// What a received datagram/frame was.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Application data from the peer.
    Data(&'a [u8]),
    /// A response consumed by the state machine (check `poll_event`/`poll_transmit`).
    Control,
    /// Not for us (unknown framing, wrong channel, unmatched transaction, malformed).
    Ignored,
}

/// Lifecycle of the allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Allocate in flight.
    Allocating,
    /// ChannelBind/CreatePermission in flight.
    Binding,
    /// Data may flow.
    Ready,
    /// Deallocation in flight.
    Closing,
    /// Deallocated.
    Closed,
    /// Failed; see the `Failed` event.
    Failed,
}
