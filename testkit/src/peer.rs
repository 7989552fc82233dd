//! UDP servers on 127.0.0.1 for tests, each on its own thread, stopped and joined on drop: a
//! responder with a caller-given answer per datagram, and the echo peer built on it (the far end
//! a TURN relay forwards to).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A UDP server on 127.0.0.1 answering each datagram with what its handler returns for it
/// (nothing when the handler returns `None`), on its own thread; stopped and joined on drop.
#[derive(Debug)]
pub struct UdpResponder {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpResponder {
    /// Starts the server on an ephemeral loopback port with the handler `answer`.
    pub fn start(mut answer: impl FnMut(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind peer");
        // Bounded reads so that the thread sees the stop flag within 50 ms.
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf)
                    && let Some(out) = answer(&buf[..n])
                {
                    let _ = sock.send_to(&out, from);
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP echo peer: every datagram goes back to its sender unchanged.
#[derive(Debug)]
pub struct EchoPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    _server: UdpResponder,
}

impl EchoPeer {
    /// Starts the peer on an ephemeral loopback port.
    pub fn start() -> Self {
        let server = UdpResponder::start(|datagram| Some(datagram.to_vec()));
        Self {
            addr: server.addr,
            _server: server,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_each_datagram_to_its_sender() {
        let peer = EchoPeer::start();
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        for msg in [&b"one"[..], b"two"] {
            sock.send_to(msg, peer.addr).expect("send");
            let (n, from) = sock.recv_from(&mut buf).expect("echo");
            assert_eq!((&buf[..n], from), (msg, peer.addr));
        }
    }
}
