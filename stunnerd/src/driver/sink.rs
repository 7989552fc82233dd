//! Where data for a client goes: a datagram on the listener socket the client talks to (for a
//! TURN-DTLS client, a record sealed on the way into the batch), or a frame on its TCP or TLS
//! connection ([`FrameSink`]). Both the input path (responses) and the relay path (peer data) write
//! through these.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;

use super::batch::SendBatch;
use crate::engine::{DropReason, ListenerStats};

/// Where data for one client goes.
#[derive(Debug, Clone)]
pub(crate) enum ClientSink {
    /// A datagram on the listener socket the client talks to.
    Udp(UdpClient),
    /// A frame on the client's TCP or TLS connection (written by an awaiting task).
    Framed(Rc<FrameSink>),
}

/// A client on a datagram listener (TURN-UDP, or TURN-DTLS with `dtls` set): the listener socket
/// that received its Allocate and its address.
#[derive(Clone)]
pub(crate) struct UdpClient {
    /// The listener socket.
    pub(crate) sock: Rc<UdpSocket>,
    /// The client's address.
    pub(crate) client: SocketAddr,
    /// The listener's counters (send failures).
    pub(crate) stats: Arc<ListenerStats>,
    /// A TURN-DTLS client's association: each datagram is sealed into a record of it on the way
    /// out (by the listener task for replies, by the relay poll for peer data).
    pub(crate) dtls: Option<Rc<RefCell<dtls12::Association>>>,
}

impl std::fmt::Debug for UdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpClient")
            .field("client", &self.client)
            .field("dtls", &self.dtls.is_some())
            .finish_non_exhaustive()
    }
}

/// Datagrams for TURN-UDP clients, queued and sent with one `sendmmsg` per listener socket (a burst
/// to one client as one GSO datagram); whoever queues must [`flush`](Self::flush) before it awaits.
#[derive(Debug, Default)]
pub(crate) struct ClientBatch {
    batch: SendBatch,
    /// The listener socket the queued datagrams leave from, and its counters.
    from: Option<(Rc<UdpSocket>, Arc<ListenerStats>)>,
    /// A DTLS record being sealed (reused: nothing allocated per packet once grown).
    record: Vec<u8>,
}

impl ClientBatch {
    /// Queues `payload` for `client` (sending what is queued first when it leaves from another
    /// socket or the batch is full); for a DTLS client, the record that carries it.
    #[inline]
    pub(crate) fn push(&mut self, client: &UdpClient, payload: &[u8]) {
        let Some(assoc) = &client.dtls else {
            self.push_from(&client.sock, &client.stats, client.client, payload);
            return;
        };
        let mut record = std::mem::take(&mut self.record);
        record.clear();
        // Never borrowed elsewhere while a batch is filled; a failed borrow drops the packet.
        let sealed = assoc
            .try_borrow_mut()
            .is_ok_and(|mut a| a.seal(payload, &mut record).is_ok());
        if sealed {
            self.push_from(&client.sock, &client.stats, client.client, &record);
        } else {
            client.stats.drop_packet(DropReason::SendFailed);
        }
        self.record = record;
    }

    /// Queues `payload` for `to`, leaving from listener socket `sock`.
    pub(crate) fn push_from(
        &mut self,
        sock: &Rc<UdpSocket>,
        stats: &Arc<ListenerStats>,
        to: SocketAddr,
        payload: &[u8],
    ) {
        let other = self
            .from
            .as_ref()
            .is_some_and(|(s, _)| !Rc::ptr_eq(s, sock));
        if other || self.batch.is_full() {
            self.flush();
        }
        if self.from.is_none() {
            self.from = Some((sock.clone(), stats.clone()));
        }
        self.batch.push(payload, to);
    }

    /// Sends everything queued, counting refused datagrams as send failures.
    pub(crate) fn flush(&mut self) {
        if let Some((sock, stats)) = self.from.take() {
            let failed = self.batch.flush(&*sock);
            for _ in 0..failed {
                stats.drop_packet(DropReason::SendFailed);
            }
        }
    }
}

/// The write side of a client on a byte stream (TCP or TLS), shared by its connection task and its
/// relay task: whole frames, never interleaved.
pub(crate) struct FrameSink {
    wr: Mutex<Box<dyn AsyncWrite + Unpin>>,
    stats: Arc<ListenerStats>,
}

impl std::fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSink").finish_non_exhaustive()
    }
}

impl FrameSink {
    /// The sink of a TCP or TLS byte stream.
    pub(crate) fn stream(wr: Box<dyn AsyncWrite + Unpin>, stats: Arc<ListenerStats>) -> Self {
        Self {
            wr: Mutex::new(wr),
            stats,
        }
    }

    /// Writes one whole frame (frames from different tasks never interleave) and flushes it (a
    /// no-op on plain TCP; pushes the TLS record out).
    pub(crate) async fn send(&self, frame: &[u8]) {
        let mut wr = self.wr.lock().await;
        let sent = wr.write_all(frame).await.is_ok() && wr.flush().await.is_ok();
        if !sent {
            self.stats.drop_packet(DropReason::SendFailed);
        }
    }
}
