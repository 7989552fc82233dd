//! The engine's input entry points, i.e. the packet path: client datagrams and frames
//! (`handle_client`: STUN requests, ChannelData and Send indications towards peers) and peer
//! datagrams back to clients as ChannelData or Data indications (`handle_peer`). Nothing here
//! allocates.

use std::net::SocketAddr;
use std::time::Instant;

use proto::turn::{
    ChannelData, Class, Framing, Message, MessageBuilder, MessageType, Method, classify,
    encode_channel_data,
};

use super::alloc::Allocation;
use super::{Action, AllocId, DropReason, Engine, ListenerId};

impl<R> Engine<R> {
    /// Handles one datagram (or one stream frame) from `client` on `listener`. Responses are written
    /// into `out`; relayed payloads are borrowed from `buf`.
    pub fn handle_client<'a>(
        &'a mut self,
        now: Instant,
        listener: ListenerId,
        client: SocketAddr,
        buf: &'a [u8],
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        let Some(li) = self.listener_index(listener) else {
            return Action::Drop;
        };
        self.listeners[li].spec.stats.traffic.rx(buf.len());
        match classify(buf) {
            Framing::ChannelData => self.channel_data(now, li, client, buf),
            Framing::Stun => self.stun(now, li, client, buf, out),
            Framing::Unknown => self.dropped(li, DropReason::Malformed),
        }
    }

    /// Counts a dropped client packet.
    #[inline]
    pub(super) fn dropped<'a>(&self, li: usize, reason: DropReason) -> Action<'a, R> {
        self.listeners[li].spec.stats.drop_packet(reason);
        Action::Drop
    }

    /// The allocation of `client` on listener `li`.
    #[inline]
    fn client_allocation(&self, li: usize, client: SocketAddr) -> Option<&Allocation<R>> {
        let id = self.by_client.get(&(self.listeners[li].id, client))?;
        self.allocs.get(*id)
    }

    /// Marks `out` (already filled) as a reply and counts it.
    #[inline]
    pub(super) fn reply<'a>(&self, li: usize, out: &[u8]) -> Action<'a, R> {
        if out.is_empty() {
            return Action::Drop;
        }
        self.listeners[li].spec.stats.traffic.tx(out.len());
        Action::Reply
    }

    fn channel_data<'a>(
        &'a self,
        now: Instant,
        li: usize,
        client: SocketAddr,
        buf: &'a [u8],
    ) -> Action<'a, R> {
        let Ok(cd) = ChannelData::decode(buf) else {
            return self.dropped(li, DropReason::Malformed);
        };
        let l = &self.listeners[li];
        let Some(a) = self.client_allocation(li, client) else {
            return self.dropped(li, DropReason::NoAllocation);
        };
        let Some(ch) = a.channel(cd.channel, now) else {
            return self.dropped(li, DropReason::NoPermission);
        };
        let Some(stats) = ch.cluster.and_then(|c| l.spec.filter.stats(c)) else {
            return self.dropped(li, DropReason::Filtered);
        };
        if l.spec.filter.is_own(ch.peer) {
            return self.dropped(li, DropReason::Filtered);
        }
        stats.tx(cd.data.len());
        Action::Relay {
            relay: &a.relay,
            peer: ch.peer,
            data: cd.data,
        }
    }

    fn stun<'a>(
        &'a mut self,
        now: Instant,
        li: usize,
        client: SocketAddr,
        buf: &'a [u8],
        out: &mut Vec<u8>,
    ) -> Action<'a, R> {
        let msg = match Message::decode(buf) {
            Ok(msg) => msg,
            Err(error) => return self.undecodable(li, client, buf, error, out),
        };
        let ty = msg.message_type();
        match (ty.class, ty.method) {
            (Class::Request, Method::Binding) => self.binding(li, client, &msg, out),
            (Class::Request, _) => self.request(now, li, client, &msg, out),
            (Class::Indication, Method::Send) => self.send_indication(now, li, client, &msg),
            // Binding indications are keepalives; responses from clients are not expected.
            (Class::Indication, Method::Binding) => Action::Drop,
            _ => self.dropped(li, DropReason::Malformed),
        }
    }

    fn send_indication<'a>(
        &'a self,
        now: Instant,
        li: usize,
        client: SocketAddr,
        msg: &Message<'a>,
    ) -> Action<'a, R> {
        let l = &self.listeners[li];
        let Some(a) = self.client_allocation(li, client) else {
            return self.dropped(li, DropReason::NoAllocation);
        };
        let (Some(peer), Some(data)) = (msg.xor_peer_address(), msg.data()) else {
            return self.dropped(li, DropReason::Malformed);
        };
        if msg.unknown_comprehension_required().next().is_some() {
            return self.dropped(li, DropReason::Malformed);
        }
        if !a.permitted(peer.ip(), now) {
            return self.dropped(li, DropReason::NoPermission);
        }
        let Some(stats) = l
            .spec
            .filter
            .cluster_of(peer)
            .and_then(|c| l.spec.filter.stats(c))
        else {
            return self.dropped(li, DropReason::Filtered);
        };
        stats.tx(data.len());
        Action::Relay {
            relay: &a.relay,
            peer,
            data,
        }
    }

    /// Handles a datagram from `peer` on the relay socket of allocation `id`. Returns true when `out`
    /// holds a ChannelData or Data indication to send to the allocation's client.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        id: AllocId,
        peer: SocketAddr,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        let Some((li, channel)) = self.peer_verdict(now, id, peer, data.len()) else {
            return false;
        };
        let stream = self.listeners[li].spec.stream;
        let encoded = match channel {
            Some(number) => encode_channel_data(out, number, data, stream).is_ok(),
            None => {
                let tid = self.next_tid();
                let mut b = MessageBuilder::new(
                    out,
                    MessageType::new(Class::Indication, Method::Data),
                    tid,
                );
                b.xor_peer_address(peer).data(data);
                b.finish().is_ok()
            }
        };
        if encoded {
            self.listeners[li].spec.stats.traffic.tx(out.len());
        }
        encoded
    }

    /// Checks a peer datagram against the allocation's permissions, channels and the peer filter;
    /// returns the listener index and the bound channel, counting drops and cluster traffic.
    #[inline]
    fn peer_verdict(
        &self,
        now: Instant,
        id: AllocId,
        peer: SocketAddr,
        len: usize,
    ) -> Option<(usize, Option<u16>)> {
        let a = self.allocs.get(id)?;
        let li = self.listener_index(a.listener)?;
        let l = &self.listeners[li];
        if !a.permitted(peer.ip(), now) {
            l.spec.stats.drop_packet(DropReason::NoPermission);
            return None;
        }
        let (cluster, channel) = match a.channel_to(peer, now) {
            Some(ch) if !l.spec.filter.is_own(peer) => (ch.cluster, Some(ch.number)),
            Some(_) => (None, None),
            None => (l.spec.filter.cluster_of(peer), None),
        };
        let Some(cstats) = cluster.and_then(|c| l.spec.filter.stats(c)) else {
            l.spec.stats.drop_packet(DropReason::Filtered);
            return None;
        };
        cstats.rx(len);
        Some((li, channel))
    }
}
