//! Where data for a client goes: a datagram on the UDP listener socket the client talks to, or a
//! frame on its connection ([`FrameSink`]: a TCP or TLS byte stream, or a DTLS association). Both
//! the input path (responses) and the relay path (peer data) write through these.

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
    /// A frame on the client's connection (written by an awaiting task).
    Framed(Rc<FrameSink>),
}

/// A TURN-UDP client: the listener socket that received its Allocate and its address.
#[derive(Debug, Clone)]
pub(crate) struct UdpClient {
    /// The listener socket.
    pub(crate) sock: Rc<UdpSocket>,
    /// The client's address.
    pub(crate) client: SocketAddr,
    /// The listener's counters (send failures).
    pub(crate) stats: Arc<ListenerStats>,
}

/// Datagrams for TURN-UDP clients, queued and sent with one `sendmmsg` per listener socket (a burst
/// to one client as one GSO datagram); whoever queues must [`flush`](Self::flush) before it awaits.
#[derive(Debug, Default)]
pub(crate) struct ClientBatch {
    batch: SendBatch,
    /// The listener socket the queued datagrams leave from, and its counters.
    from: Option<(Rc<UdpSocket>, Arc<ListenerStats>)>,
}

impl ClientBatch {
    /// Queues `payload` for `client` (sending what is queued first when it leaves from another
    /// socket or the batch is full).
    #[inline]
    pub(crate) fn push(&mut self, client: &UdpClient, payload: &[u8]) {
        self.push_from(&client.sock, &client.stats, client.client, payload);
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

/// The write side of a connection-oriented client, shared by its connection task and its relay
/// task: whole frames, never interleaved.
pub(crate) struct FrameSink {
    wr: Writer,
    stats: Arc<ListenerStats>,
}

/// How frames reach a connection-oriented client.
enum Writer {
    /// A byte stream (TCP or TLS).
    Stream(Mutex<Box<dyn AsyncWrite + Unpin>>),
    /// A DTLS association: one frame per record.
    Dtls(DtlsWriter),
}

/// The write side of a DTLS association: seals a frame into a record and sends it from the
/// listener socket, on the caller's thread (no task, no await but the send).
pub(crate) struct DtlsWriter {
    assoc: Rc<RefCell<dtls12::Association>>,
    sock: Rc<UdpSocket>,
    client: SocketAddr,
}

impl DtlsWriter {
    /// Writes into association `assoc` of `client` on listener socket `sock`.
    pub(crate) fn new(
        assoc: Rc<RefCell<dtls12::Association>>,
        sock: Rc<UdpSocket>,
        client: SocketAddr,
    ) -> Self {
        Self {
            assoc,
            sock,
            client,
        }
    }

    async fn send(&self, frame: &[u8]) -> bool {
        let mut record = Vec::with_capacity(frame.len() + dtls12::RECORD_OVERHEAD);
        let sealed = self.assoc.borrow_mut().seal(frame, &mut record).is_ok();
        sealed && self.sock.send_to(&record, self.client).await.is_ok()
    }
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
            wr: Writer::Stream(Mutex::new(wr)),
            stats,
        }
    }

    /// The sink of a DTLS association.
    pub(crate) fn dtls(writer: DtlsWriter, stats: Arc<ListenerStats>) -> Self {
        Self {
            wr: Writer::Dtls(writer),
            stats,
        }
    }

    /// Writes one whole frame (frames from different tasks never interleave) and flushes it (a
    /// no-op on plain TCP; pushes the TLS record out).
    pub(crate) async fn send(&self, frame: &[u8]) {
        let sent = match &self.wr {
            Writer::Stream(wr) => {
                let mut wr = wr.lock().await;
                wr.write_all(frame).await.is_ok() && wr.flush().await.is_ok()
            }
            Writer::Dtls(w) => w.send(frame).await,
        };
        if !sent {
            self.stats.drop_packet(DropReason::SendFailed);
        }
    }
}
