//! One turncat session: a TURN allocation (own UDP socket, TCP or TLS connection, or DTLS
//! association to the server) that carries one client 5-tuple's traffic to the peer and back,
//! driven by a tokio task around the sans-IO [`TurnClient`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use dtls::conn::DTLSConn;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::TurncatConfig;
use crate::client::stream::Deframer;
use crate::client::{ClientConfig, Event, Failure, FailureKind, Input, Stage, TurnClient};
use crate::swarm::Transport;
use crate::sys::{self, sockets};
use crate::tls::TlsClient;
use crate::{Error, Result};

/// Packets from the client kept while the allocation is being set up.
const MAX_EARLY: usize = 64;

/// Where data from the peer goes.
pub(super) enum ClientSink {
    /// Back to a UDP client through the listener socket.
    Udp(Arc<UdpSocket>, SocketAddr),
    /// Into a TCP client connection (or stdout).
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
}

impl ClientSink {
    async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Udp(sock, to) => sock.send_to(data, *to).await.map(drop),
            Self::Stream(w) => {
                w.write_all(data).await?;
                w.flush().await
            }
        }
    }
}

/// The connection to the TURN server: datagrams (UDP, DTLS records) or a byte stream (TCP, TLS).
enum ServerConn {
    Udp(UdpSocket),
    Stream {
        read: Box<dyn AsyncRead + Send + Unpin>,
        write: Box<dyn AsyncWrite + Send + Unpin>,
        deframer: Deframer,
    },
    Dtls(Arc<DTLSConn>),
}

impl ServerConn {
    async fn connect(cfg: &TurncatConfig) -> Result<Self> {
        let ctx =
            |what: &str| format!("{what} TURN server {} over {:?}", cfg.server, cfg.transport);
        match cfg.transport {
            Transport::Udp => {
                let sock = UdpSocket::bind(sockets::unspecified_for(cfg.server))
                    .await
                    .map_err(|e| Error::io(ctx("bind socket for"), e))?;
                sock.connect(cfg.server)
                    .await
                    .map_err(|e| Error::io(ctx("connect to"), e))?;
                Ok(Self::Udp(sock))
            }
            Transport::Tcp => {
                let s = TcpStream::connect(cfg.server)
                    .await
                    .map_err(|e| Error::io(ctx("cannot reach"), e))?;
                let _ = s.set_nodelay(true);
                let (read, write) = s.into_split();
                Ok(Self::stream(read, write))
            }
            Transport::Tls => {
                let s = tls(cfg)?.connect_tls(cfg.server).await?;
                let (read, write) = tokio::io::split(s);
                Ok(Self::stream(read, write))
            }
            Transport::Dtls => Ok(Self::Dtls(tls(cfg)?.connect_dtls(cfg.server).await?)),
        }
    }

    fn stream(
        read: impl AsyncRead + Send + Unpin + 'static,
        write: impl AsyncWrite + Send + Unpin + 'static,
    ) -> Self {
        Self::Stream {
            read: Box::new(read),
            write: Box::new(write),
            deframer: Deframer::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Udp(s) => s.send(bytes).await.map(drop),
            Self::Stream { write, .. } => write.write_all(bytes).await,
            Self::Dtls(c) => c.write(bytes, None).await.map(drop).map_err(dtls_io),
        }
    }

    /// Waits for the next datagram or stream chunk; frames are then taken with `next_frame`.
    async fn readable(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Self::Udp(s) => {
                buf.resize(65536, 0);
                let n = s.recv(buf).await?;
                buf.truncate(n);
                Ok(())
            }
            Self::Dtls(c) => {
                buf.resize(65536, 0);
                let n = c.read(buf, None).await.map_err(dtls_io)?;
                buf.truncate(n);
                Ok(())
            }
            Self::Stream { read, deframer, .. } => {
                buf.resize(16384, 0);
                let n = read.read(buf).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ));
                }
                deframer.extend(&buf[..n]);
                buf.clear();
                Ok(())
            }
        }
    }
}

/// The TLS settings of a secure transport (built by `to_config` for every secure URI).
fn tls(cfg: &TurncatConfig) -> Result<&TlsClient> {
    cfg.tls
        .as_ref()
        .ok_or_else(|| Error::Config(format!("{:?} needs TLS settings", cfg.transport)))
}

fn dtls_io(e: dtls::Error) -> std::io::Error {
    std::io::Error::other(format!("DTLS: {e}"))
}

/// Turns a failure into the message a turncat user needs.
fn describe(f: &Failure, cfg: &TurncatConfig) -> Error {
    let server = format!("TURN server {} ({:?})", cfg.server, cfg.transport);
    Error::Turn(match (&f.kind, f.stage) {
        (FailureKind::Code(401), _) => format!(
            "authentication failed at {server}: {} — check the credentials/secret",
            f.reason
        ),
        (FailureKind::Code(403), Stage::Permission) => {
            format!(
                "permission denied by {server}: peer {} is not allowed ({})",
                cfg.peer, f.reason
            )
        }
        (FailureKind::Timeout, Stage::Allocate) => format!("{server} unreachable: {}", f.reason),
        (FailureKind::Io, _) => format!("{server} unreachable: {}", f.reason),
        (FailureKind::Tls, _) => format!("{server}: {}", f.reason),
        (_, stage) => format!("{server} refused {stage:?}: {}", f.reason),
    })
}

/// Runs one session until the client side ends (then deallocates) or the allocation fails.
pub(super) async fn run(
    cfg: Arc<TurncatConfig>,
    mut from_client: mpsc::Receiver<Vec<u8>>,
    mut sink: ClientSink,
) -> Result<()> {
    let mut conn = ServerConn::connect(&cfg).await?;
    let mut ccfg = ClientConfig::new(cfg.auth.credentials(std::time::SystemTime::now()), cfg.peer);
    ccfg.stream = cfg.transport.is_stream();
    let mut client = TurnClient::new(ccfg, Instant::now());
    let (mut out, mut rbuf) = (Vec::new(), Vec::new());
    let mut early: VecDeque<Vec<u8>> = VecDeque::new();
    let mut client_open = true;
    loop {
        while client.poll_transmit(&mut out) {
            conn.send(&out)
                .await
                .map_err(|e| Error::Turn(format!("send to TURN server {}: {e}", cfg.server)))?;
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                Event::Allocated { relayed, .. } => {
                    tracing::info!(%relayed, peer = %cfg.peer, "allocation created")
                }
                Event::Ready { latency } => {
                    tracing::info!(?latency, "relaying");
                    while let Some(d) = early.pop_front() {
                        client.encode_data(&d, &mut out);
                        conn.send(&out)
                            .await
                            .map_err(|e| Error::io("send to TURN server", e))?;
                    }
                }
                Event::Failed(f) => return Err(describe(&f, &cfg)),
                Event::Closed => return Ok(()),
            }
        }
        let wake = client.poll_timeout();
        tokio::select! {
            data = from_client.recv(), if client_open => match data {
                Some(d) if client.is_ready() => {
                    if client.encode_data(&d, &mut out) {
                        conn.send(&out).await.map_err(|e| Error::io("send to TURN server", e))?;
                    }
                }
                Some(d) => if early.len() < MAX_EARLY { early.push_back(d) },
                None => {
                    client_open = false;
                    client.close(Instant::now());
                }
            },
            r = conn.readable(&mut rbuf) => {
                if let Err(e) = r {
                    client.fail_transport(e.to_string());
                    continue;
                }
                relay_frames(&mut conn, &rbuf, &mut client, &mut sink).await?;
            }
            () = sys::sleep_until(wake) => client.handle_timeout(Instant::now()),
        }
    }
}

/// Feeds what was received to the client and forwards peer data to the client side.
async fn relay_frames(
    conn: &mut ServerConn,
    datagram: &[u8],
    client: &mut TurnClient,
    sink: &mut ClientSink,
) -> Result<()> {
    let now = Instant::now();
    match conn {
        ServerConn::Udp(_) | ServerConn::Dtls(_) => {
            if let Input::Data(p) = client.handle_input(now, datagram) {
                sink.send(p)
                    .await
                    .map_err(|e| Error::io("send to client", e))?;
            }
        }
        ServerConn::Stream { deframer, .. } => loop {
            let frame = match deframer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    client.fail_transport(format!("bad framing from server: {e}"));
                    break;
                }
            };
            if let Input::Data(p) = client.handle_input(now, frame) {
                sink.send(p)
                    .await
                    .map_err(|e| Error::io("send to client", e))?;
            }
        },
    }
    Ok(())
}
