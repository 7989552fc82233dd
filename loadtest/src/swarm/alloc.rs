//! One swarm allocation: its TURN client state, its socket (UDP, or TCP with a deframer and a
//! write buffer, optionally under a sans-IO rustls client), and its send schedule.
//!
//! ```text
//!  frames ─queue─▶ wbuf ─▶ [rustls writer ─write_tls─▶] socket ─▶ server
//!  server ─▶ socket ─[read_tls ─▶ process_new_packets ─▶ rustls reader]─▶ deframer ─▶ frames
//! ```

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use tokio_rustls::rustls::ClientConnection;

use super::{SwarmConfig, Transport};
use crate::client::stream::Deframer;
use crate::client::{ClientConfig, Credentials, TurnClient};
use crate::sys::ffi::SendBatch;
use crate::sys::sockets;
use crate::tls::{self, TlsClient, TlsFailure};

/// Identifies swarm payloads (bytes 8..12) so stray datagrams are not taken for RTT samples.
pub(super) const MAGIC: u32 = 0x4C54_5354; // "LTST"
/// A TCP write buffer larger than this means the server is not reading: further data is dropped.
const MAX_TCP_BACKLOG: usize = 1 << 20;

/// A TCP connection to the server (under TLS for TURN-TLS) with its framing state.
pub(super) struct TcpIo {
    pub(super) stream: TcpStream,
    pub(super) deframer: Deframer,
    /// The TLS layer of TURN over TLS: frames are written into it, plaintext read out of it.
    tls: Option<Box<ClientConnection>>,
    /// Plaintext frames not yet taken by the socket (or by rustls, whose buffer is bounded).
    wbuf: Vec<u8>,
    wpos: usize,
}

/// The socket of an allocation.
pub(super) enum Io {
    /// A UDP socket connected to the server.
    Udp(UdpSocket),
    /// A TCP connection, plain or TLS.
    Tcp(TcpIo),
}

/// A swarm allocation.
pub(super) struct Alloc {
    pub(super) client: TurnClient,
    pub(super) io: Io,
    /// Global allocation index (written into payloads).
    pub(super) index: u32,
    /// When data may start (Ready event).
    pub(super) ready_at: Option<Instant>,
    /// End of this allocation's send window.
    pub(super) stop_at: Option<Instant>,
    /// Data packets accepted by the kernel so far.
    pub(super) sent: u64,
    /// False once failed or closed: the worker stops serving it.
    pub(super) alive: bool,
}

impl Alloc {
    /// Opens the socket and creates the client (whose first Allocate is queued). DTLS
    /// allocations are not served here (see `swarm::dtls`).
    pub(super) fn open(
        cfg: &SwarmConfig,
        tls: Option<&TlsClient>,
        index: u32,
        peer: SocketAddr,
        creds: Credentials,
        now: Instant,
    ) -> io::Result<Self> {
        let io = match cfg.transport {
            Transport::Udp => Io::Udp(UdpSocket::from_std(sockets::udp_connected(
                cfg.server,
                cfg.socket_buffer,
            )?)),
            Transport::Tcp | Transport::Tls => {
                let tls = match (cfg.transport, tls) {
                    (Transport::Tls, Some(t)) => {
                        Some(Box::new(t.connection().map_err(io::Error::other)?))
                    }
                    (Transport::Tls, None) => return Err(io::Error::other("TLS settings missing")),
                    _ => None,
                };
                let std =
                    sockets::tcp_connected(cfg.server, cfg.socket_buffer, Duration::from_secs(3))?;
                Io::Tcp(TcpIo {
                    stream: TcpStream::from_std(std),
                    deframer: Deframer::new(),
                    tls,
                    wbuf: Vec::new(),
                    wpos: 0,
                })
            }
            Transport::Dtls => return Err(io::Error::other("DTLS runs in its own worker")),
        };
        let mut ccfg = ClientConfig::new(creds, peer);
        ccfg.mode = cfg.mode;
        ccfg.stream = cfg.transport.is_stream();
        ccfg.lifetime = cfg.lifetime;
        let client = TurnClient::new(ccfg, now);
        Ok(Self {
            client,
            io,
            index,
            ready_at: None,
            stop_at: None,
            sent: 0,
            alive: true,
        })
    }

    /// Registers the socket with the worker's poll.
    pub(super) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match &mut self.io {
            Io::Udp(s) => registry.register(s, token, Interest::READABLE),
            Io::Tcp(t) => registry.register(
                &mut t.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
        }
    }

    /// Removes the socket from the poll (after failure), so it stops waking the worker.
    pub(super) fn deregister(&mut self, registry: &Registry) {
        let _ = match &mut self.io {
            Io::Udp(s) => registry.deregister(s),
            Io::Tcp(t) => registry.deregister(&mut t.stream),
        };
    }

    /// The raw fd (UDP batches).
    pub(super) fn fd(&self) -> RawFd {
        match &self.io {
            Io::Udp(s) => s.as_raw_fd(),
            Io::Tcp(t) => t.stream.as_raw_fd(),
        }
    }

    /// Whether the allocation is currently in its send window.
    pub(super) fn sending(&self, now: Instant) -> bool {
        self.alive && self.stop_at.is_some_and(|stop| now < stop)
    }

    /// Sends everything the client queued (requests, retransmissions). Errors mean the transport
    /// is broken.
    pub(super) fn flush_control(&mut self, batch: &mut SendBatch) -> io::Result<()> {
        match &mut self.io {
            Io::Udp(s) => {
                while !batch.is_full() {
                    if !self.client.poll_transmit(batch.push(None)) {
                        batch.pop();
                        break;
                    }
                }
                if batch.is_empty() {
                    Ok(())
                } else {
                    batch.flush(s.as_raw_fd()).map(drop)
                }
            }
            Io::Tcp(t) => {
                let mut msg = Vec::new();
                while self.client.poll_transmit(&mut msg) {
                    t.wbuf.extend_from_slice(&msg);
                }
                t.write_pending()
            }
        }
    }
}

impl TcpIo {
    /// Appends a frame to the write buffer; false (dropped) when the backlog is too large.
    pub(super) fn queue(&mut self, frame: &[u8]) -> bool {
        if self.wbuf.len() - self.wpos > MAX_TCP_BACKLOG {
            return false;
        }
        self.wbuf.extend_from_slice(frame);
        true
    }

    /// Writes as much of the backlog as the socket (and the TLS layer) takes.
    pub(super) fn write_pending(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => write_through_tls(tls, &mut self.stream, &self.wbuf, &mut self.wpos)?,
            None => self.write_plain()?,
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        Ok(())
    }

    fn write_plain(&mut self) -> io::Result<()> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what the socket has into the deframer, through TLS if any. `Ok(0)` is the end of
    /// the stream; a TLS failure is an `io::Error` wrapping a [`TlsFailure`].
    pub(super) fn read_some(&mut self) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.deframer.read_from(&mut self.stream);
        };
        let n = tls.read_tls(&mut self.stream)?;
        if n == 0 {
            return Ok(0);
        }
        let handshaking = tls.is_handshaking();
        let state = tls.process_new_packets().map_err(|e| {
            let server = self
                .stream
                .peer_addr()
                .map_or_else(|_| "the TURN server".to_owned(), |a| a.to_string());
            let msg = if handshaking {
                tls::handshake_failed("TLS", &server, &e).to_string()
            } else {
                format!("TLS with {server} failed: {e}")
            };
            io::Error::other(TlsFailure(msg))
        })?;
        let mut plain = state.plaintext_bytes_to_read();
        while plain > 0 {
            match self.deframer.read_from(&mut tls.reader())? {
                0 => break,
                k => plain = plain.saturating_sub(k),
            }
        }
        // Handshake replies, and frames rustls held back until the handshake completed.
        self.write_pending()?;
        Ok(n)
    }
}

/// Hands the backlog to rustls (bounded buffer: it may take part of it) and writes the records
/// to the socket until everything is out or the socket would block.
fn write_through_tls(
    tls: &mut ClientConnection,
    stream: &mut TcpStream,
    wbuf: &[u8],
    wpos: &mut usize,
) -> io::Result<()> {
    loop {
        let accepted = match wbuf.get(*wpos..) {
            Some(rest) if !rest.is_empty() => tls.writer().write(rest)?,
            _ => 0,
        };
        *wpos += accepted;
        while tls.wants_write() {
            match tls.write_tls(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if accepted == 0 {
            return Ok(());
        }
    }
}

/// An allocation's send schedule: `rate` packets per second, sent `burst` at a time (a video
/// frame of several packets), i.e. `rate / burst` send events per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Pace {
    /// Packets per second.
    pub(crate) rate: f64,
    /// Packets per send event (at least 1).
    pub(crate) burst: usize,
}

/// Packets due now from an allocation ready since `ready` sending at `pace` that has sent `sent`
/// (at most `batch`). The first event is due at once.
pub(super) fn due_packets(
    ready: Instant,
    now: Instant,
    pace: Pace,
    sent: u64,
    batch: usize,
) -> usize {
    let burst = pace.burst.max(1) as f64;
    let elapsed = now.saturating_duration_since(ready).as_secs_f64();
    let events = (elapsed * pace.rate / burst) as u64 + 1;
    let due_total = events * burst as u64;
    due_total.saturating_sub(sent).min(batch as u64) as usize
}

/// When the next send event of an allocation ready since `ready` that has sent `sent` packets is
/// due: event k (0-based) is due `k · burst / rate` after ready, and `sent / burst` events are done.
pub(super) fn next_due(ready: Instant, pace: Pace, sent: u64) -> Instant {
    let burst = pace.burst.max(1) as u64;
    let events_done = sent / burst;
    let secs = (events_done * burst) as f64 / pace.rate.max(1e-9);
    ready + Duration::from_secs_f64(secs.min(1e6))
}

/// Writes the swarm payload header: send time (ns since the worker epoch), magic, allocation index.
pub(super) fn write_payload(payload: &mut [u8], ts_ns: u64, index: u32) {
    payload[..8].copy_from_slice(&ts_ns.to_be_bytes());
    payload[8..12].copy_from_slice(&MAGIC.to_be_bytes());
    payload[12..16].copy_from_slice(&index.to_be_bytes());
}

/// Reads a payload header back: `(send time, allocation index)` if it is one of ours.
pub(super) fn read_payload(payload: &[u8]) -> Option<(u64, u32)> {
    let ts = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let magic = u32::from_be_bytes(payload.get(8..12)?.try_into().ok()?);
    let index = u32::from_be_bytes(payload.get(12..16)?.try_into().ok()?);
    (magic == MAGIC).then_some((ts, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_due_is_the_next_event() {
        let t0 = Instant::now();
        let audio = Pace {
            rate: 50.0,
            burst: 1,
        };
        assert_eq!(next_due(t0, audio, 0), t0);
        assert_eq!(next_due(t0, audio, 3), t0 + Duration::from_millis(60));
        let video = Pace {
            rate: 150.0,
            burst: 5,
        };
        // Two frames sent: the third is due at 2/30 s; a partial frame is due again at once.
        let third = next_due(t0, video, 10) - t0;
        assert!((third.as_secs_f64() - 2.0 / 30.0).abs() < 1e-9, "{third:?}");
        assert_eq!(next_due(t0, video, 12), t0 + third);
    }

    #[test]
    fn due_packets_come_in_bursts() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        // 30 frames/s of 5 packets: 5 at once, nothing more until the next frame at 33.3 ms.
        let video = Pace {
            rate: 150.0,
            burst: 5,
        };
        assert_eq!(due_packets(t0, t0, video, 0, 64), 5);
        assert_eq!(due_packets(t0, at(30), video, 5, 64), 0);
        assert_eq!(due_packets(t0, at(34), video, 5, 64), 5);
    }

    #[test]
    fn due_packets_follow_the_rate_and_the_batch_cap() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let due_packets = |ready, now, rate, sent, batch| {
            due_packets(ready, now, Pace { rate, burst: 1 }, sent, batch)
        };
        assert_eq!(due_packets(t0, t0, 1000.0, 0, 64), 1, "one at once");
        assert_eq!(due_packets(t0, at(10), 1000.0, 1, 64), 10);
        assert_eq!(
            due_packets(t0, at(10), 1000.0, 11, 64),
            0,
            "ahead of schedule"
        );
        assert_eq!(
            due_packets(t0, at(1000), 1000.0, 0, 64),
            64,
            "capped per tick"
        );
        assert_eq!(
            due_packets(at(5), t0, 1000.0, 0, 64),
            1,
            "clock skew is not a panic"
        );
    }

    #[test]
    fn payload_round_trip() {
        let mut p = [0u8; 20];
        write_payload(&mut p, 123_456_789, 42);
        assert_eq!(read_payload(&p), Some((123_456_789, 42)));
        p[9] ^= 1;
        assert_eq!(read_payload(&p), None);
        assert_eq!(read_payload(&p[..10]), None);
    }
}
