//! CreatePermission and ChannelBind: peer filtering (403, counted), address-family checks (443),
//! channel-number rules (400) and table limits (508).

use std::net::SocketAddr;
use std::time::Instant;

use proto::turn::{CHANNEL_MIN, Class, Family, Message, code};

use super::alloc::Allocation;
use super::requests::{CHANNEL_BIND_MAX, Req};
use super::{Action, AllocId, CHANNEL_LIFETIME, Engine, PERMISSION_LIFETIME};

impl<R> Engine<R> {
    /// Counts and answers a peer refused by the listener's routes.
    fn denied<'a>(&self, out: &mut Vec<u8>, req: &Req, peer: SocketAddr) -> Action<'a, R> {
        let spec = &self.listeners[req.li].spec;
        spec.stats.permission_denied.add(1);
        tracing::debug!(listener = %spec.name, client = %req.client, %peer, method = ?req.method, "peer denied");
        self.fail(
            out,
            req,
            code::FORBIDDEN,
            "Peer not allowed by the routes of this listener",
        )
    }

    pub(super) fn create_permission<'a>(
        &mut self,
        req: &Req,
        msg: &Message<'_>,
        id: AllocId,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        let Some(a) = self.allocs.get(id) else {
            return Action::Drop;
        };
        let family = Family::of(&a.relay_addr);
        let spec = &self.listeners[req.li].spec;
        let mut count = 0;
        for peer in msg.xor_peer_addresses() {
            count += 1;
            if Family::of(&peer) != family {
                return self.fail(
                    out,
                    req,
                    code::PEER_ADDRESS_FAMILY_MISMATCH,
                    "Peer address family mismatch",
                );
            }
            if !spec.filter.allows_ip(peer.ip()) {
                return self.denied(out, req, peer);
            }
        }
        if count == 0 {
            return self.fail(out, req, code::BAD_REQUEST, "Missing XOR-PEER-ADDRESS");
        }
        let Some(a) = self.allocs.get_mut(id) else {
            return Action::Drop;
        };
        if !msg
            .xor_peer_addresses()
            .all(|peer| a.permit(peer.ip(), now + PERMISSION_LIFETIME))
        {
            return self.fail(
                out,
                req,
                code::INSUFFICIENT_CAPACITY,
                "Too many permissions",
            );
        }
        self.respond(out, req, Class::Success, |_| {});
        self.reply(req.li, out)
    }

    pub(super) fn channel_bind<'a>(
        &mut self,
        req: &Req,
        msg: &Message<'_>,
        id: AllocId,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        let (Some(number), Some(peer)) = (msg.channel_number(), msg.xor_peer_address()) else {
            return self.fail(
                out,
                req,
                code::BAD_REQUEST,
                "Missing CHANNEL-NUMBER or XOR-PEER-ADDRESS",
            );
        };
        if !(CHANNEL_MIN..=CHANNEL_BIND_MAX).contains(&number) {
            return self.fail(out, req, code::BAD_REQUEST, "Channel number out of range");
        }
        let Some(a) = self.allocs.get(id) else {
            return Action::Drop;
        };
        if Family::of(&peer) != Family::of(&a.relay_addr) {
            return self.fail(
                out,
                req,
                code::PEER_ADDRESS_FAMILY_MISMATCH,
                "Peer address family mismatch",
            );
        }
        if a.bound_differently(number, peer, now) {
            return self.fail(
                out,
                req,
                code::BAD_REQUEST,
                "Channel or peer already bound differently",
            );
        }
        let spec = &self.listeners[req.li].spec;
        let Some(cluster) = spec.filter.cluster_of(peer) else {
            return self.denied(out, req, peer);
        };
        let Some(a) = self.allocs.get_mut(id) else {
            return Action::Drop;
        };
        if !bind_channel(a, number, peer, cluster, now) {
            return self.fail(out, req, code::INSUFFICIENT_CAPACITY, "Too many channels");
        }
        self.respond(out, req, Class::Success, |_| {});
        self.reply(req.li, out)
    }
}

/// Installs or refreshes a channel binding (and the peer's permission); false when a table is full.
fn bind_channel<R>(
    a: &mut Allocation<R>,
    number: u16,
    peer: SocketAddr,
    cluster: u16,
    now: Instant,
) -> bool {
    a.bind(number, peer, cluster, now + CHANNEL_LIFETIME, now)
        && a.permit(peer.ip(), now + PERMISSION_LIFETIME)
}
