//! TURN-UDP: the receive loop of a listener socket and the receive loop of an allocation's relay
//! socket. Each wakes on readiness, then drains its socket with non-blocking calls: one `recvfrom`
//! and at most one `sendto` per packet, borrowing the worker's buffers, allocating nothing.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::sockets;
use super::worker::{ClientSink, RelayIp, Worker};
use crate::engine::{Action, AllocId, DropReason, ListenerId, ListenerStats};

/// Packets handled per wake-up before yielding to the worker's other tasks.
const BATCH: usize = 64;

/// Spawns one receive task per socket of a UDP listener on the current worker.
pub(crate) fn spawn_listeners(
    worker: &Rc<Worker>,
    id: ListenerId,
    name: &Arc<str>,
    socks: Vec<std::net::UdpSocket>,
    relay_ip: RelayIp,
    stats: Arc<ListenerStats>,
) -> Vec<AbortHandle> {
    socks
        .into_iter()
        .filter_map(|s| match UdpSocket::from_std(s) {
            Ok(sock) => Some(sock),
            Err(error) => {
                tracing::error!(%error, "cannot register a UDP listener socket");
                None
            }
        })
        .map(|sock| {
            let ctx = Listen {
                worker: worker.clone(),
                id,
                sock: Rc::new(sock),
                relay_ip,
                stats: stats.clone(),
            };
            super::supervise::listener(name.clone(), stats.clone(), move || ctx.clone().run())
        })
        .collect()
}

#[derive(Clone)]
struct Listen {
    worker: Rc<Worker>,
    id: ListenerId,
    sock: Rc<UdpSocket>,
    relay_ip: RelayIp,
    stats: Arc<ListenerStats>,
}

impl Listen {
    async fn run(self) {
        loop {
            if let Err(error) = self.sock.readable().await {
                tracing::error!(%error, "UDP listener socket failed");
                return;
            }
            for _ in 0..BATCH {
                if !self.one() {
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
    }

    /// Receives and handles one datagram; false when the socket is drained.
    fn one(&self) -> bool {
        let mut bufs = self.worker.bufs.borrow_mut();
        let bufs = &mut *bufs;
        let (n, client) = match self.sock.try_recv_from(&mut bufs.rx) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(error) => {
                tracing::debug!(%error, "UDP receive error");
                return true;
            }
        };
        let now = Instant::now();
        let pending = {
            let mut engine = self.worker.engine.borrow_mut();
            match engine.handle_client(now, self.id, client, &bufs.rx[..n], &mut bufs.out) {
                Action::Drop => return true,
                Action::Reply => None,
                Action::Relay { relay, peer, data } => {
                    if sockets::send_now(&relay.sock, data, peer).is_err() {
                        self.stats.drop_packet(DropReason::SendFailed);
                    }
                    return true;
                }
                Action::Allocate(rq) => Some(rq),
            }
        };
        if let Some(rq) = pending {
            let sink = ClientSink::Udp {
                sock: self.sock.clone(),
                client,
                stats: self.stats.clone(),
            };
            let ip = match self.relay_ip {
                RelayIp::Fixed(ip) => Ok(ip),
                RelayIp::Auto => sockets::local_ip_towards(client),
            };
            match ip {
                Ok(ip) => self.worker.allocate(now, rq, ip, sink, &mut bufs.out),
                Err(_) => self.worker.engine.borrow_mut().complete_allocate(
                    now,
                    rq,
                    Err(crate::engine::RelayError::Capacity),
                    &mut bufs.out,
                ),
            };
        }
        send_to_client(&self.sock, &bufs.out, client, &self.stats);
        true
    }
}

/// Sends `out` (if any) to a UDP client, counting a failure.
#[inline]
fn send_to_client(sock: &UdpSocket, out: &[u8], client: SocketAddr, stats: &ListenerStats) {
    if !out.is_empty() && sockets::send_now(sock, out, client).is_err() {
        stats.drop_packet(DropReason::SendFailed);
    }
}

/// Reads the relay socket of allocation `id` and forwards peer data to the client through `sink`.
/// Aborted when the allocation goes away (see `worker::Relay`).
pub(crate) async fn relay(worker: Rc<Worker>, id: AllocId, sock: Rc<UdpSocket>, sink: ClientSink) {
    let mut frame = Vec::new();
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        for _ in 0..BATCH {
            match relay_one(&worker, id, &sock, &sink, &mut frame) {
                RelayStep::Again => {}
                RelayStep::Drained => break,
                RelayStep::Stream => {
                    if let ClientSink::Tcp(conn) = &sink {
                        conn.send(&frame).await;
                    }
                }
            }
        }
        tokio::task::yield_now().await;
    }
}

enum RelayStep {
    /// Handled one datagram.
    Again,
    /// Nothing more to read.
    Drained,
    /// `frame` holds data for a TCP client: write it (outside of any borrow).
    Stream,
}

fn relay_one(
    worker: &Worker,
    id: AllocId,
    sock: &UdpSocket,
    sink: &ClientSink,
    frame: &mut Vec<u8>,
) -> RelayStep {
    let mut bufs = worker.bufs.borrow_mut();
    let bufs = &mut *bufs;
    let (n, peer) = match sock.try_recv_from(&mut bufs.rx) {
        Ok(got) => got,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return RelayStep::Drained,
        Err(_) => return RelayStep::Again,
    };
    let now = Instant::now();
    if !worker
        .engine
        .borrow_mut()
        .handle_peer(now, id, peer, &bufs.rx[..n], &mut bufs.out)
    {
        return RelayStep::Again;
    }
    match sink {
        ClientSink::Udp {
            sock,
            client,
            stats,
        } => {
            send_to_client(sock, &bufs.out, *client, stats);
            RelayStep::Again
        }
        ClientSink::Tcp(_) => {
            frame.clear();
            frame.extend_from_slice(&bufs.out);
            RelayStep::Stream
        }
    }
}
