//! The UDP echo peer: every datagram received is sent back to its source unchanged, so the
//! swarm measures round-trip time end to end through the TURN relay.
//!
//! One socket, `recvmmsg` in and `sendmmsg` out, no allocation per packet. The swarm embeds an
//! [`EchoPeer`] in each worker's event loop; `loadtest peer` runs [`run_blocking`] on a thread.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::sys::ffi::{RecvBatch, SendBatch};
use crate::sys::sockets;
use crate::{Error, Result};

/// Datagrams handled per syscall.
const BATCH: usize = 64;
/// Largest datagram echoed unchanged (longer ones are truncated to this).
const SLOT: usize = 2048;
/// Socket buffer size of the peer socket.
pub const PEER_SOCKET_BUFFER: usize = 4 << 20;

/// Counters of an echo peer, readable from other threads.
#[derive(Debug, Default)]
pub struct PeerCounters {
    /// Datagrams received (= relayed by the server towards the peer).
    pub received: AtomicU64,
    /// Datagrams the kernel accepted for sending back.
    pub echoed: AtomicU64,
}

/// A non-blocking echo socket.
pub struct EchoPeer {
    sock: UdpSocket,
    recv: RecvBatch,
    send: SendBatch,
}

impl EchoPeer {
    /// Binds the echo socket.
    pub fn bind(addr: SocketAddr) -> Result<Self> {
        let sock = sockets::udp_bound(addr, PEER_SOCKET_BUFFER)
            .map_err(|e| Error::io(format_args!("bind echo peer {addr}"), e))?;
        Ok(Self {
            sock,
            recv: RecvBatch::new(BATCH, SLOT),
            send: SendBatch::new(BATCH),
        })
    }

    /// The bound address (what TURN clients use as their peer).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.sock
            .local_addr()
            .map_err(|e| Error::io("echo peer address", e))
    }

    /// Switches between non-blocking (event loop) and blocking with a timeout (own thread).
    pub fn set_blocking(&self, timeout: Option<Duration>) -> Result<()> {
        let r = match timeout {
            Some(t) => self
                .sock
                .set_nonblocking(false)
                .and_then(|()| self.sock.set_read_timeout(Some(t))),
            None => self.sock.set_nonblocking(true),
        };
        r.map_err(|e| Error::io("echo peer socket mode", e))
    }

    /// Echoes what is readable now (at most `max_batches` batches); returns packets received.
    /// With `wait`, the first batch blocks up to the socket timeout.
    pub fn pump(&mut self, wait: bool, max_batches: usize, counters: &PeerCounters) -> usize {
        let fd = self.sock.as_raw_fd();
        let mut total = 0;
        for round in 0..max_batches {
            let n = self.recv.recv(fd, wait && round == 0).unwrap_or(0);
            if n == 0 {
                break;
            }
            for i in 0..n {
                let (data, from) = self.recv.get(i);
                if let Some(from) = from {
                    self.send.push(Some(from)).extend_from_slice(data);
                }
            }
            // Counted before the echo leaves, so whoever sees the echo also sees the count.
            counters.received.fetch_add(n as u64, Ordering::Relaxed);
            let echoed = self.send.flush(fd).unwrap_or(0);
            counters.echoed.fetch_add(echoed as u64, Ordering::Relaxed);
            total += n;
            if n < BATCH {
                break;
            }
        }
        total
    }
}

impl AsRawFd for EchoPeer {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// Runs an echo peer on the calling thread until `stop` is set (checked every 100 ms).
pub fn run_blocking(peer: &mut EchoPeer, stop: &AtomicBool, counters: &PeerCounters) -> Result<()> {
    peer.set_blocking(Some(Duration::from_millis(100)))?;
    while !stop.load(Ordering::Relaxed) {
        peer.pump(true, 16, counters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn echoes_to_sender() {
        let mut peer = EchoPeer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = peer.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(PeerCounters::default());
        let (s, c) = (stop.clone(), counters.clone());
        let t = std::thread::spawn(move || run_blocking(&mut peer, &s, &c));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 64];
        for i in 0..10u8 {
            client.send_to(&[i; 33], addr).unwrap();
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((n, from), (33, addr));
            assert_eq!(buf[..n], [i; 33]);
        }
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap().unwrap();
        assert_eq!(counters.received.load(Ordering::Relaxed), 10);
        assert_eq!(counters.echoed.load(Ordering::Relaxed), 10);
    }
}
