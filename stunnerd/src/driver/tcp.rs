//! TURN-TCP: accept loops (one SO_REUSEPORT socket per worker) and one task per connection that cuts
//! the byte stream into STUN messages and ChannelData frames (`stream_frame_len`) and feeds them to
//! the engine. A connection carries at most one allocation; closing the connection releases it.
//! Broken framing closes the connection (it cannot be resynchronised).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use proto::turn::stream_frame_len;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

use super::worker::{ClientSink, RelayIp, Worker};
use crate::engine::{Action, DropReason, ListenerId, ListenerStats};

/// Receive buffer of a connection: room for two maximum-size frames.
const CONN_BUF: usize = 2 * (65_535 + 24);

/// The write side of a client connection, shared by its connection task and its relay task.
#[derive(Debug)]
pub(crate) struct TcpSink {
    wr: Mutex<OwnedWriteHalf>,
    stats: Arc<ListenerStats>,
}

impl TcpSink {
    /// Writes one whole frame (frames from different tasks never interleave).
    pub(crate) async fn send(&self, frame: &[u8]) {
        if self.wr.lock().await.write_all(frame).await.is_err() {
            self.stats.drop_packet(DropReason::SendFailed);
        }
    }
}

/// Spawns one accept task per listening socket on the current worker.
pub(crate) fn spawn_listeners(
    worker: &Rc<Worker>,
    id: ListenerId,
    socks: Vec<std::net::TcpListener>,
    relay_ip: RelayIp,
    stats: Arc<ListenerStats>,
) -> Vec<AbortHandle> {
    socks
        .into_iter()
        .filter_map(|s| {
            TcpListener::from_std(s)
                .map_err(|e| tracing::error!(%e, "cannot register TCP socket"))
                .ok()
        })
        .map(|l| {
            tokio::task::spawn_local(accept(worker.clone(), id, l, relay_ip, stats.clone()))
                .abort_handle()
        })
        .collect()
}

async fn accept(
    worker: Rc<Worker>,
    id: ListenerId,
    listener: TcpListener,
    relay_ip: RelayIp,
    stats: Arc<ListenerStats>,
) {
    // Connection tasks are aborted with the listener, like its allocations.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => {
                    let conn = Conn { worker: worker.clone(), id, client, relay_ip, stats: stats.clone() };
                    conns.spawn_local(conn.run(stream));
                }
                Err(error) => tracing::debug!(%error, "TCP accept failed"),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

struct Conn {
    worker: Rc<Worker>,
    id: ListenerId,
    client: SocketAddr,
    relay_ip: RelayIp,
    stats: Arc<ListenerStats>,
}

impl Conn {
    async fn run(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let local_ip = stream.local_addr().map(|a| a.ip()).ok();
        let (mut rd, wr) = stream.into_split();
        let sink = Rc::new(TcpSink {
            wr: Mutex::new(wr),
            stats: self.stats.clone(),
        });
        let _open = OpenConnection::new(&self.stats);
        let mut buf = vec![0u8; CONN_BUF];
        let mut out = Vec::new();
        let (mut start, mut end) = (0usize, 0usize);
        'conn: loop {
            match rd.read(&mut buf[end..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => end += n,
            }
            loop {
                let len = match stream_frame_len(&buf[start..end]) {
                    Ok(Some(len)) if end - start >= len => len,
                    Ok(_) => break,
                    Err(_) => {
                        self.stats.drop_packet(DropReason::Malformed);
                        break 'conn;
                    }
                };
                if self.frame(&buf[start..start + len], local_ip, &sink, &mut out) {
                    sink.send(&out).await;
                }
                start += len;
            }
            buf.copy_within(start..end, 0);
            (end, start) = (end - start, 0);
        }
        self.worker
            .engine
            .borrow_mut()
            .client_gone(self.id, self.client);
    }

    /// Handles one frame; true when `out` holds a response to write back.
    fn frame(
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
                    if relay.sock.try_send_to(data, peer).is_err() {
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

/// Counts a connection as open for as long as it lives (also when its task is aborted).
struct OpenConnection(Arc<ListenerStats>);

impl OpenConnection {
    fn new(stats: &Arc<ListenerStats>) -> Self {
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
