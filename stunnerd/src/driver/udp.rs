//! TURN-UDP: the receive loop of a listener socket. It wakes on readiness, then drains the socket a
//! batch at a time (one `recvmmsg`), feeds each datagram to [`Ingress::input`] and sends the replies
//! from the same socket (one `sendmmsg`), borrowing the worker's buffers and allocating nothing. A
//! short batch means the socket is empty: no further call is made to learn so.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::batch::SLOTS;
use super::ingress::Ingress;
use super::shard::Bufs;
use super::sink::{ClientSink, UdpClient};
use crate::engine::DropReason;

/// Full batches handled per wake-up before the worker's other tasks get a turn.
const BUDGET: usize = 4;

/// Spawns one supervised receive task per socket of a UDP listener on the current worker.
pub(crate) fn spawn(
    ingress: &Ingress,
    name: &Arc<str>,
    socks: Vec<std::net::UdpSocket>,
) -> Vec<AbortHandle> {
    socks
        .into_iter()
        .filter_map(|s| match UdpSocket::from_std(s) {
            Ok(sock) => Some(Rc::new(sock)),
            Err(error) => {
                tracing::error!(%error, "cannot register a UDP listener socket");
                None
            }
        })
        .map(|sock| {
            let ingress = ingress.clone();
            let stats = ingress.stats.clone();
            super::supervise::listener(name.clone(), stats, move || {
                run(ingress.clone(), sock.clone())
            })
        })
        .collect()
}

async fn run(ingress: Ingress, sock: Rc<UdpSocket>) {
    loop {
        if let Err(error) = sock.readable().await {
            tracing::error!(%error, "UDP listener socket failed");
            return;
        }
        let mut batches = 0;
        while serve_batch(&ingress, &sock) {
            batches += 1;
            if batches == BUDGET {
                tokio::task::yield_now().await;
                batches = 0;
            }
        }
    }
}

/// Receives one batch of datagrams (one `recvmmsg`), feeds each to the engine and sends the replies
/// (one `sendmmsg`); true when the socket may hold more.
fn serve_batch(ingress: &Ingress, sock: &Rc<UdpSocket>) -> bool {
    let mut bufs = ingress.shard.bufs.borrow_mut();
    let Bufs { rx, out, tx } = &mut *bufs;
    let n = rx.recv_ready(sock, SLOTS).unwrap_or_else(|error| {
        tracing::debug!(%error, "UDP receive error");
        0
    });
    let now = Instant::now();
    for i in 0..n {
        let Some((frame, client)) = rx.get(i) else {
            ingress.stats.drop_packet(DropReason::Malformed);
            continue;
        };
        let sink = || {
            ClientSink::Udp(UdpClient {
                sock: sock.clone(),
                client,
                stats: ingress.stats.clone(),
                dtls: None,
            })
        };
        if ingress.input(now, client, None, frame, sink, out) {
            tx.push_from(sock, &ingress.stats, client, out);
        }
    }
    tx.flush();
    n == SLOTS
}
