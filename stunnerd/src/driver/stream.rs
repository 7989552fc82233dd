//! TURN-TCP and TURN-TLS: accept loops (one SO_REUSEPORT socket per worker) and one task per
//! connection that cuts the byte stream into STUN messages and ChannelData frames
//! (`stream_frame_len`) and feeds them to [`Ingress::input`]. A connection carries at most one
//! allocation; closing the connection releases it. Broken framing closes the connection (it cannot
//! be resynchronised). TURN-TLS runs the same path behind a TLS handshake (`tls.rs`).
//!
//! Hostile clients are bounded: connections are admitted under per-listener and per-IP limits
//! (`conns.rs`), the first whole frame must arrive within `first_request_timeout` of the accept
//! (TLS handshake included), a connection without allocation is closed after `idle_timeout` of
//! silence, and the receive buffer starts small and grows only to the size of a frame being read.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::turn::stream_frame_len;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use super::conns::{ConnPermit, OpenConnection};
use super::ingress::Ingress;
use super::sink::{ClientSink, FrameSink};
use super::tls::{self, TlsAcceptor};
use crate::engine::DropReason;

/// Largest receive buffer of a connection: room for two maximum-size frames.
const CONN_BUF: usize = 2 * (65_535 + 24);
/// Receive buffer of a connection that is not reading a large frame (what a silent one costs).
const SMALL_BUF: usize = 2048;
/// Pause after a failed accept (e.g. out of descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Spawns one supervised accept task per listening socket on the current worker; with `tls` every
/// connection first completes a TLS handshake (TURN-TLS).
pub(crate) fn spawn(
    ingress: &Ingress,
    name: &Arc<str>,
    socks: Vec<std::net::TcpListener>,
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
            let (ingress, tls, l) = (ingress.clone(), tls.clone(), Rc::new(l));
            let stats = ingress.stats.clone();
            super::supervise::listener(name.clone(), stats, move || {
                accept(ingress.clone(), tls.clone(), l.clone())
            })
        })
        .collect()
}

/// Accepts connections on `listener`, one task per admitted connection.
async fn accept(ingress: Ingress, tls: Option<TlsAcceptor>, listener: Rc<TcpListener>) {
    // Connection tasks are aborted with the listener, like its allocations.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => match ingress.admit(client) {
                    Some(permit) => {
                        let conn = Conn { ingress: ingress.clone(), client };
                        conns.spawn_local(conn.run(stream, tls.clone(), permit));
                    }
                    None => {
                        tracing::debug!(%client, "connection refused by a connection limit");
                        ingress.stats.drop_packet(DropReason::ConnectionLimit);
                    }
                },
                Err(error) => {
                    tracing::debug!(%error, "TCP accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(ended) = conns.join_next(), if !conns.is_empty() => {
                super::supervise::connection_ended(ended, &ingress.stats);
            }
        }
    }
}

/// One client connection of a listener.
struct Conn {
    ingress: Ingress,
    client: SocketAddr,
}

impl Conn {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>, _permit: ConnPermit) {
        let first_deadline = Instant::now() + self.ingress.shard.env.limits.first_request_timeout;
        let _ = stream.set_nodelay(true);
        let local_ip = stream.local_addr().map(|a| a.ip()).ok();
        let _open = OpenConnection::new(&self.ingress.stats);
        match &tls {
            None => {
                let (rd, wr) = stream.into_split();
                self.serve(rd, Box::new(wr), local_ip, first_deadline).await;
            }
            Some(acceptor) => {
                let Some(tls) = tls::handshake(acceptor, stream, &self.ingress.stats).await else {
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
        local_ip: Option<IpAddr>,
        first_deadline: Instant,
    ) {
        let sink = Rc::new(FrameSink::stream(wr, self.ingress.stats.clone()));
        let idle = self.ingress.shard.env.limits.idle_timeout;
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
                        self.ingress.stats.drop_packet(DropReason::Malformed);
                        break 'conn;
                    }
                };
                let frame = &buf[start..start + len];
                let client_sink = || ClientSink::Framed(sink.clone());
                let now = Instant::now();
                if self
                    .ingress
                    .input(now, self.client, local_ip, frame, client_sink, &mut out)
                {
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
        self.ingress.client_gone(self.client);
    }

    /// A read deadline passed: true (counted) when the connection must close, i.e. no first frame
    /// yet, or idle without an allocation.
    fn timed_out(&self, first: bool) -> bool {
        if first || !self.ingress.has_allocation(self.client) {
            tracing::debug!(client = %self.client, first, "connection timed out");
            self.ingress.stats.drop_packet(DropReason::Timeout);
            return true;
        }
        false
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
