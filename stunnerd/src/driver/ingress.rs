//! Client input, for every transport: one listener as its transports see it on one worker
//! ([`Ingress`]), and the one function that feeds a client datagram or frame to the engine and
//! carries out the engine's [`Action`] (reply, relay to a peer, or bind a relay socket and
//! allocate). UDP, TCP, TLS and DTLS differ only in how they read frames and write replies.
//!
//! ```text
//!   udp / stream / dtls ─frame─▶ Ingress::input ─▶ engine.handle_client
//!        ▲                           ├─ Reply    ─▶ true: the transport writes `out` to the client
//!        └── reply ◀─────────────────├─ Relay    ─▶ sendto the peer on the allocation's relay socket
//!                                    └─ Allocate ─▶ relay::allocate (relay IP chosen here)
//! ```

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::conns::ConnPermit;
use super::shard::Shard;
use super::sink::ClientSink;
use super::{relay, sockets};
use crate::engine::{Action, DropReason, ListenerId, ListenerStats, RelayError};

/// How the relay address of an allocation is chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RelayIp {
    /// The listener's `address` (or STUNNER_ADDR): bind relays there and advertise it.
    Fixed(IpAddr),
    /// Wildcard listener without STUNNER_ADDR: the local address the client reached.
    Auto,
}

/// One listener on one worker, as its transports see it.
#[derive(Debug, Clone)]
pub(crate) struct Ingress {
    pub(crate) shard: Rc<Shard>,
    pub(crate) id: ListenerId,
    pub(crate) relay_ip: RelayIp,
    pub(crate) stats: Arc<ListenerStats>,
}

impl Ingress {
    /// Feeds one datagram or frame from `client` to the engine and carries out its action; true
    /// when `out` holds a reply to write to the client. `local_ip` is the address the client
    /// reached, when the transport knows it; `sink` makes the client's sink for a new allocation.
    pub(crate) fn input(
        &self,
        now: Instant,
        client: SocketAddr,
        local_ip: Option<IpAddr>,
        frame: &[u8],
        sink: impl FnOnce() -> ClientSink,
        out: &mut Vec<u8>,
    ) -> bool {
        let rq = {
            let mut engine = self.shard.engine.borrow_mut();
            match engine.handle_client(now, self.id, client, frame, out) {
                Action::Drop => return false,
                Action::Reply => return !out.is_empty(),
                Action::Relay { relay, peer, data } => {
                    if relay.send_to(data, peer).is_err() {
                        self.stats.drop_packet(DropReason::SendFailed);
                    }
                    return false;
                }
                Action::Allocate(rq) => rq,
            }
        };
        let ip = self.relay_ip(client, local_ip);
        relay::allocate(&self.shard, now, rq, ip, sink(), out);
        !out.is_empty()
    }

    /// The relay IP of an allocation for `client`.
    fn relay_ip(&self, client: SocketAddr, local_ip: Option<IpAddr>) -> Result<IpAddr, RelayError> {
        match (self.relay_ip, local_ip) {
            (RelayIp::Fixed(ip), _) | (RelayIp::Auto, Some(ip)) => Ok(ip),
            (RelayIp::Auto, None) => sockets::local_ip_towards(client).map_err(|error| {
                tracing::warn!(%client, %error, "no local address towards the client");
                RelayError::Capacity
            }),
        }
    }

    /// A permit for a new connection from `client` under the listener's connection limits.
    pub(crate) fn admit(&self, client: SocketAddr) -> Option<ConnPermit> {
        let env = &self.shard.env;
        let l = &env.limits;
        env.conns.admit(
            self.id,
            client.ip(),
            (l.max_connections, l.max_connections_per_ip),
        )
    }

    /// Whether `client` holds an allocation on this listener.
    pub(crate) fn has_allocation(&self, client: SocketAddr) -> bool {
        self.shard
            .engine
            .borrow()
            .allocation_of(self.id, client)
            .is_some()
    }

    /// The connection of `client` ended: its allocation goes with it.
    pub(crate) fn client_gone(&self, client: SocketAddr) {
        self.shard.engine.borrow_mut().client_gone(self.id, client);
    }
}
