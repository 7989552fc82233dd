//! Relay sockets and their readers, for every transport: binding an allocation's relay socket
//! (fresh, an EVEN-PORT pair with its odd half reserved, or a reserved one taken by token), and
//! forwarding peer datagrams to the client as ChannelData or Data indications.
//!
//! Relay sockets of TURN-UDP and TURN-DTLS clients are read by one task per worker ([`serve_polled`]) over the
//! worker's relay poll: each wake-up takes every ready socket, reads each with `recvmmsg`, and
//! sends what goes to clients with one `sendmmsg` per listener socket (a burst to one client as one
//! UDP GSO datagram, see [`super::batch::SendBatch`]; a DTLS client's datagrams are sealed into
//! records on the way in). Relay sockets of clients on a TCP or TLS connection have a reader task
//! each, as writing a frame awaits the connection.
//!
//! ```text
//!   Action::Allocate ─▶ allocate(): bind ─▶ engine.complete_allocate ─▶ attach (poll entry | task)
//!   relay poll ─ready sockets─▶ recvmmsg ─▶ engine.handle_peer ─▶ SendBatch ─sendmmsg─▶ UDP clients
//!   relay socket ─▶ its task ─▶ engine.handle_peer ─▶ FrameSink (awaited)
//! ```

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use mio::Token;
use tokio::net::UdpSocket;

use super::shard::{Bufs, Relay, Shard};
use super::sink::{ClientSink, FrameSink};
use super::sockets;
use crate::engine::{AllocId, AllocateRequest, RelayError};
use proto::turn::Family;

/// Batches read from one relay socket per turn before the others get theirs.
const BATCHES_PER_SOCKET: usize = 4;
/// Datagrams per `recvmmsg` on a relay socket: one peer's media, rarely more than a few at a time,
/// and every slot costs set-up per call.
const RELAY_SLOTS: usize = 8;

/// Binds a relay socket for `rq` and completes the allocation (the response is in `out`), then
/// ties the socket to its reader. Must be called with no engine borrow held.
pub(crate) fn allocate(
    shard: &Rc<Shard>,
    now: Instant,
    mut rq: AllocateRequest,
    relay_ip: Result<IpAddr, RelayError>,
    sink: ClientSink,
    out: &mut Vec<u8>,
) -> Option<AllocId> {
    let bound = relay_ip
        .and_then(|ip| bind_for(shard, now, &mut rq, ip))
        .and_then(|(sock, addr)| Ok((make_relay(shard, sock, addr, &sink)?, addr)));
    let mut engine = shard.engine.borrow_mut();
    let id = engine.complete_allocate(now, rq, bound, out)?;
    let relay = engine.relay(id)?;
    let frames = match sink {
        ClientSink::Framed(frames) => Some(frames),
        ClientSink::Udp(_) => None,
    };
    relay.attach(id, |sock| {
        let task = serve_framed(shard.clone(), id, sock, frames?);
        Some(tokio::task::spawn_local(task).abort_handle())
    });
    Some(id)
}

/// The relay handle of a bound socket: read by the relay poll for a datagram (UDP, DTLS) client,
/// else by a task.
fn make_relay(
    shard: &Shard,
    sock: std::net::UdpSocket,
    addr: SocketAddr,
    sink: &ClientSink,
) -> Result<Relay, RelayError> {
    let relays = &shard.env.relays;
    match sink {
        ClientSink::Udp(client) => {
            Relay::polled(sock, addr, relays, &shard.relay_poll, client.clone())
        }
        ClientSink::Framed(_) => Relay::tasked(sock, addr, relays),
    }
}

/// The relay socket of `rq`: the reserved one for a RESERVATION-TOKEN, an even/odd pair whose odd
/// half is reserved (setting `rq.issued_token`) for EVEN-PORT with R, else a fresh one.
fn bind_for(
    shard: &Shard,
    now: Instant,
    rq: &mut AllocateRequest,
    ip: IpAddr,
) -> Result<(std::net::UdpSocket, SocketAddr), RelayError> {
    let env = &shard.env;
    if let Some(token) = rq.reservation {
        return env
            .reservations
            .take(token, now)
            .ok_or(RelayError::UnknownReservation);
    }
    let ip = relay_family(ip, rq.family)?;
    let opts = sockets::RelayOpts {
        buffer: env.socket_buffer,
        ports: env.limits.relay_ports,
    };
    if !rq.reserve {
        return sockets::relay_socket(ip, rq.even_port, opts).map_err(|error| {
            tracing::warn!(%ip, %error, "cannot bind a relay socket");
            RelayError::Capacity
        });
    }
    let (even, (odd, odd_addr)) = sockets::relay_pair(ip, opts).map_err(|error| {
        tracing::warn!(%ip, %error, "cannot bind a relay port pair");
        RelayError::Capacity
    })?;
    rq.issued_token = Some(
        env.reservations
            .insert(odd, odd_addr, now)
            .ok_or(RelayError::Capacity)?,
    );
    Ok(even)
}

/// The relay IP of `family` for a listener relaying on `ip` (IPv4-mapped IPv6 becomes IPv4).
fn relay_family(ip: IpAddr, family: Family) -> Result<IpAddr, RelayError> {
    match (family, ip) {
        (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_)) => Ok(ip),
        (Family::V4, IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .ok_or(RelayError::Family),
        (Family::V6, IpAddr::V4(_)) => Err(RelayError::Family),
    }
}

/// The worker's reader of every relay socket in its relay poll (TURN-UDP and TURN-DTLS clients):
/// runs until the worker stops.
pub(crate) async fn serve_polled(shard: Rc<Shard>) {
    let mut ready: Vec<Token> = Vec::new();
    let mut again: Vec<Token> = Vec::new();
    loop {
        if again.is_empty() {
            if let Err(error) = shard.relay_poll.ready(&mut ready).await {
                tracing::error!(%error, "relay poll failed");
                return;
            }
        } else {
            // Sockets with more to read go on after the worker's other tasks had a turn.
            tokio::task::yield_now().await;
            std::mem::swap(&mut ready, &mut again);
        }
        let now = Instant::now();
        let mut bufs = shard.bufs.borrow_mut();
        for &t in &ready {
            if drain_polled(&shard, &mut bufs, now, t) {
                again.push(t);
            }
        }
        bufs.tx.flush();
        ready.clear();
    }
}

/// Reads up to [`BATCHES_PER_SOCKET`] batches from the relay socket of token `t`, queueing what
/// goes to its client; true when the socket may hold more.
fn drain_polled(shard: &Shard, bufs: &mut Bufs, now: Instant, t: Token) -> bool {
    let Bufs { rx, out, tx } = bufs;
    shard
        .relay_poll
        .with(t, |entry| {
            for _ in 0..BATCHES_PER_SOCKET {
                let n = match rx.recv(&*entry.sock, RELAY_SLOTS) {
                    Ok(n) => n,
                    Err(error) => {
                        tracing::debug!(%error, "relay socket receive error");
                        return false;
                    }
                };
                let Some(id) = entry.alloc else {
                    return n == RELAY_SLOTS;
                };
                let mut engine = shard.engine.borrow_mut();
                for (data, peer) in (0..n).filter_map(|i| rx.get(i)) {
                    if engine.handle_peer(now, id, peer, data, out) {
                        tx.push(&entry.client, out);
                    }
                }
                if n < RELAY_SLOTS {
                    return false;
                }
            }
            true
        })
        .unwrap_or(false)
}

/// Reads the relay socket of allocation `id` (a client on a connection) and writes peer data to
/// the client as frames. Aborted when the allocation goes away (see [`Relay`]).
async fn serve_framed(shard: Rc<Shard>, id: AllocId, sock: Rc<UdpSocket>, sink: Rc<FrameSink>) {
    // Frame buffers, reused: nothing is allocated per packet once they have grown.
    let mut frames: Vec<Vec<u8>> = Vec::new();
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        let (n, more) = read_framed(&shard, id, &sock, &mut frames);
        for frame in &frames[..n] {
            sink.send(frame).await;
        }
        if more {
            tokio::task::yield_now().await;
        }
    }
}

/// One batch from a framed client's relay socket into the first frames of `frames`: how many, and
/// whether the socket may hold more.
fn read_framed(
    shard: &Shard,
    id: AllocId,
    sock: &UdpSocket,
    frames: &mut Vec<Vec<u8>>,
) -> (usize, bool) {
    let mut bufs = shard.bufs.borrow_mut();
    let Bufs { rx, out, .. } = &mut *bufs;
    let n = rx.recv_ready(sock, RELAY_SLOTS).unwrap_or(0);
    let now = Instant::now();
    let mut engine = shard.engine.borrow_mut();
    let mut k = 0;
    for (data, peer) in (0..n).filter_map(|i| rx.get(i)) {
        if engine.handle_peer(now, id, peer, data, out) {
            if frames.len() == k {
                frames.push(Vec::new());
            }
            frames[k].clear();
            frames[k].extend_from_slice(out);
            k += 1;
        }
    }
    (k, n == RELAY_SLOTS)
}
