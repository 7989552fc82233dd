//! One swarm allocation: its TURN client state, its socket (UDP, or TCP with a deframer and a
//! write buffer), and its send schedule.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};

use super::{SwarmConfig, Transport};
use crate::client::stream::Deframer;
use crate::client::{ClientConfig, Credentials, TurnClient};
use crate::sys::ffi::SendBatch;
use crate::sys::sockets;

/// Identifies swarm payloads (bytes 8..12) so stray datagrams are not taken for RTT samples.
pub(super) const MAGIC: u32 = 0x4C54_5354; // "LTST"
/// A TCP write buffer larger than this means the server is not reading: further data is dropped.
const MAX_TCP_BACKLOG: usize = 1 << 20;

/// A TCP connection to the server with its framing state.
pub(super) struct TcpIo {
    pub(super) stream: TcpStream,
    pub(super) deframer: Deframer,
    wbuf: Vec<u8>,
    wpos: usize,
}

/// The socket of an allocation.
pub(super) enum Io {
    /// A UDP socket connected to the server.
    Udp(UdpSocket),
    /// A TCP connection.
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
    /// Opens the socket and creates the client (whose first Allocate is queued).
    pub(super) fn open(
        cfg: &SwarmConfig,
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
            Transport::Tcp => {
                let std =
                    sockets::tcp_connected(cfg.server, cfg.socket_buffer, Duration::from_secs(3))?;
                let stream = TcpStream::from_std(std);
                Io::Tcp(TcpIo {
                    stream,
                    deframer: Deframer::new(),
                    wbuf: Vec::new(),
                    wpos: 0,
                })
            }
        };
        let mut ccfg = ClientConfig::new(creds, peer);
        ccfg.mode = cfg.mode;
        ccfg.stream = cfg.transport == Transport::Tcp;
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

    /// Writes as much of the backlog as the socket takes.
    pub(super) fn write_pending(&mut self) -> io::Result<()> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        Ok(())
    }
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
    fn payload_round_trip() {
        let mut p = [0u8; 20];
        write_payload(&mut p, 123_456_789, 42);
        assert_eq!(read_payload(&p), Some((123_456_789, 42)));
        p[9] ^= 1;
        assert_eq!(read_payload(&p), None);
        assert_eq!(read_payload(&p[..10]), None);
    }
}
