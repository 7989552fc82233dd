//! TURN-TCP: accept loops (one SO_REUSEPORT socket per worker) and one task per connection that cuts
//! the byte stream into STUN messages and ChannelData frames (`stream_frame_len`) and feeds them to
//! the engine. A connection carries at most one allocation; closing the connection releases it.
//! Broken framing closes the connection (it cannot be resynchronised). TURN-TLS listeners run the
//! same path behind a TLS handshake (`tls.rs`).
//!
//! Hostile clients are bounded: connections are admitted under per-listener and per-IP limits
//! (`conns.rs`), the first whole frame must arrive within `first_request_timeout` of the accept
//! (TLS handshake included), a connection without allocation is closed after `idle_timeout` of
//! silence, and the receive buffer starts small and grows only to the size of a frame being read.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::turn::stream_frame_len;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

use super::tls::{self, TlsAcceptor};
use super::worker::{ClientSink, RelayIp, Worker};
use crate::engine::{Action, DropReason, ListenerId, ListenerStats};

/// Largest receive buffer of a connection: room for two maximum-size frames.
const CONN_BUF: usize = 2 * (65_535 + 24);
/// Receive buffer of a connection that is not reading a large frame (what a silent one costs).
const SMALL_BUF: usize = 2048;
/// Pause after a failed accept (e.g. out of descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The write side of a client connection (plain TCP, TLS or DTLS), shared by its connection task
/// and its relay task.
pub(crate) struct TcpSink {
    wr: Writer,
    stats: Arc<ListenerStats>,
}

/// How frames reach a connection-oriented client.
enum Writer {
    /// A byte stream (TCP or TLS): whole frames, never interleaved.
    Stream(Mutex<Box<dyn AsyncWrite + Unpin>>),
    /// A DTLS association: one frame per record.
    Dtls(Arc<dtls::conn::DTLSConn>),
}

impl std::fmt::Debug for TcpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpSink").finish_non_exhaustive()
    }
}

impl TcpSink {
    /// Writes one whole frame (frames from different tasks never interleave) and flushes it (a
    /// no-op on plain TCP; pushes the TLS record out).
    pub(crate) async fn send(&self, frame: &[u8]) {
        let sent = match &self.wr {
            Writer::Stream(wr) => {
                let mut wr = wr.lock().await;
                wr.write_all(frame).await.is_ok() && wr.flush().await.is_ok()
            }
            Writer::Dtls(conn) => conn.write(frame, None).await.is_ok(),
        };
        if !sent {
            self.stats.drop_packet(DropReason::SendFailed);
        }
    }

    /// The sink of a DTLS association.
    pub(crate) fn dtls(conn: Arc<dtls::conn::DTLSConn>, stats: Arc<ListenerStats>) -> Self {
        Self {
            wr: Writer::Dtls(conn),
            stats,
        }
    }
}

/// Spawns one accept task per listening socket on the current worker; with `tls` every connection
/// first completes a TLS handshake (TURN-TLS).
pub(crate) fn spawn_listeners(
    worker: &Rc<Worker>,
    id: ListenerId,
    name: &Arc<str>,
    socks: Vec<std::net::TcpListener>,
    relay_ip: RelayIp,
    stats: Arc<ListenerStats>,
    tls: Option<TlsAcceptor>,
) -> Vec<AbortHandle> {
    socks
        .into_iter()
        .filter_map(|s| {
            TcpListener::from_std(s)
                .map_err(|e| tracing::error!(%e, "cannot register TCP socket"))
                .ok()
        })
        .map(|l| {
            let conn = Conn {
                worker: worker.clone(),
                id,
                client: SocketAddr::from(([0, 0, 0, 0], 0)),
                relay_ip,
                stats: stats.clone(),
                tls: tls.clone(),
            };
            let l = Rc::new(l);
            super::supervise::listener(name.clone(), stats.clone(), move || {
                accept(conn.with_client(conn.client), l.clone())
            })
        })
        .collect()
}

/// Accepts connections on `listener`; `proto` is cloned into each connection with its client address.
async fn accept(proto: Conn, listener: Rc<TcpListener>) {
    // Connection tasks are aborted with the listener, like its allocations.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => match proto.admit(client) {
                    Some(permit) => {
                        conns.spawn_local(proto.with_client(client).run(stream, permit));
                    }
                    None => {
                        tracing::debug!(%client, "connection refused by a connection limit");
                        proto.stats.drop_packet(DropReason::ConnectionLimit);
                    }
                },
                Err(error) => {
                    tracing::debug!(%error, "TCP accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(ended) = conns.join_next(), if !conns.is_empty() => {
                super::supervise::connection_ended(ended, &proto.stats);
            }
        }
    }
}

/// One client connection of a listener (also used by TURN-DTLS associations).
pub(super) struct Conn {
    pub(super) worker: Rc<Worker>,
    pub(super) id: ListenerId,
    pub(super) client: SocketAddr,
    pub(super) relay_ip: RelayIp,
    pub(super) stats: Arc<ListenerStats>,
    /// TURN-TLS: the handshake to run before serving.
    pub(super) tls: Option<TlsAcceptor>,
}

impl Conn {
    /// A copy of this (template) connection for `client`.
    pub(super) fn with_client(&self, client: SocketAddr) -> Self {
        Self {
            worker: self.worker.clone(),
            id: self.id,
            client,
            relay_ip: self.relay_ip,
            stats: self.stats.clone(),
            tls: self.tls.clone(),
        }
    }

    /// A permit for a new connection from `client` under the listener's connection limits.
    pub(super) fn admit(&self, client: SocketAddr) -> Option<super::conns::ConnPermit> {
        let l = &self.worker.limits;
        self.worker.conns.admit(
            self.id,
            client.ip(),
            (l.max_connections, l.max_connections_per_ip),
        )
    }

    async fn run(self, stream: TcpStream, _permit: super::conns::ConnPermit) {
        let first_deadline = Instant::now() + self.worker.limits.first_request_timeout;
        let _ = stream.set_nodelay(true);
        let local_ip = stream.local_addr().map(|a| a.ip()).ok();
        let _open = OpenConnection::new(&self.stats);
        match &self.tls {
            None => {
                let (rd, wr) = stream.into_split();
                self.serve(rd, Box::new(wr), local_ip, first_deadline).await;
            }
            Some(acceptor) => {
                let Some(tls) = tls::handshake(acceptor, stream, &self.stats).await else {
                    return;
                };
                let (rd, wr) = tokio::io::split(tls);
                self.serve(rd, Box::new(wr), local_ip, first_deadline).await;
            }
        }
    }

    /// Cuts the stream into frames and feeds them to the engine until the connection ends, the
    /// first frame misses `first_deadline`, or it idles out without an allocation.
    async fn serve(
        &self,
        mut rd: impl AsyncRead + Unpin,
        wr: Box<dyn AsyncWrite + Unpin>,
        local_ip: Option<std::net::IpAddr>,
        first_deadline: Instant,
    ) {
        let sink = Rc::new(TcpSink {
            wr: Writer::Stream(Mutex::new(wr)),
            stats: self.stats.clone(),
        });
        let idle = self.worker.limits.idle_timeout;
        let mut deadline = first_deadline;
        let mut buf = vec![0u8; SMALL_BUF];
        let mut out = Vec::new();
        let (mut start, mut end) = (0usize, 0usize);
        'conn: loop {
            let read = tokio::time::timeout_at(deadline.into(), rd.read(&mut buf[end..]));
            match read.await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => end += n,
                Err(_) if self.timed_out(deadline == first_deadline) => break,
                Err(_) => {
                    deadline = Instant::now() + idle;
                    continue;
                }
            }
            loop {
                let len = match stream_frame_len(&buf[start..end]) {
                    Ok(Some(len)) if end - start >= len => len,
                    Ok(Some(len)) => {
                        grow(&mut buf, start, len);
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.stats.drop_packet(DropReason::Malformed);
                        break 'conn;
                    }
                };
                if self.frame(&buf[start..start + len], local_ip, &sink, &mut out) {
                    sink.send(&out).await;
                }
                start += len;
                deadline = Instant::now() + idle;
            }
            buf.copy_within(start..end, 0);
            (end, start) = (end - start, 0);
            if end == 0 && buf.len() > SMALL_BUF {
                buf = vec![0u8; SMALL_BUF];
            }
        }
        self.worker
            .engine
            .borrow_mut()
            .client_gone(self.id, self.client);
    }

    /// A read deadline passed: true (counted) when the connection must close, i.e. no first frame
    /// yet, or idle without an allocation.
    fn timed_out(&self, first: bool) -> bool {
        if first || !self.has_allocation() {
            tracing::debug!(client = %self.client, first, "connection timed out");
            self.stats.drop_packet(DropReason::Timeout);
            return true;
        }
        false
    }

    /// Whether the client holds an allocation on this listener.
    pub(super) fn has_allocation(&self) -> bool {
        self.worker
            .engine
            .borrow()
            .allocation_of(self.id, self.client)
            .is_some()
    }

    /// Handles one frame; true when `out` holds a response to write back.
    pub(super) fn frame(
        &self,
        frame: &[u8],
        local_ip: Option<std::net::IpAddr>,
        sink: &Rc<TcpSink>,
        out: &mut Vec<u8>,
    ) -> bool {
        let now = Instant::now();
        let pending = {
            let mut engine = self.worker.engine.borrow_mut();
            match engine.handle_client(now, self.id, self.client, frame, out) {
                Action::Drop => return false,
                Action::Reply => None,
                Action::Relay { relay, peer, data } => {
                    if super::sockets::send_now(&relay.sock, data, peer).is_err() {
                        self.stats.drop_packet(DropReason::SendFailed);
                    }
                    return false;
                }
                Action::Allocate(rq) => Some(rq),
            }
        };
        if let Some(rq) = pending {
            let ip = match (self.relay_ip, local_ip) {
                (RelayIp::Fixed(ip), _) | (RelayIp::Auto, Some(ip)) => ip,
                (RelayIp::Auto, None) => self.client.ip(),
            };
            self.worker
                .allocate(now, rq, ip, ClientSink::Tcp(sink.clone()), out);
        }
        !out.is_empty()
    }
}

/// Makes room in `buf` for a frame of `len` bytes (at most a maximum-size frame) starting at
/// `start`, keeping at least [`CONN_BUF`] so that several frames can be read at once.
fn grow(buf: &mut Vec<u8>, start: usize, len: usize) {
    let need = (start + len).max(CONN_BUF);
    if buf.len() < start + len {
        buf.resize(need, 0);
    }
}

/// Counts a connection as open for as long as it lives (also when its task is aborted).
pub(super) struct OpenConnection(Arc<ListenerStats>);

impl OpenConnection {
    pub(super) fn new(stats: &Arc<ListenerStats>) -> Self {
        stats.connections.add(1);
        stats.connections_total.add(1);
        Self(stats.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.add(-1);
    }
}
