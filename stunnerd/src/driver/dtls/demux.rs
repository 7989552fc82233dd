//! The per-client demultiplexer of a TURN-DTLS listener socket: one entry per client address, each a
//! bounded datagram queue that the client's DTLS association reads through [`ClientConn`] (the
//! `webrtc_util::Conn` the `dtls` crate runs on).
//!
//! ```text
//!   UDP socket ─recv_from─▶ Demux::route(client, datagram)
//!                             ├─ established client, only app data ─▶ FastPath (see `fast`)
//!                             ├─ known client ─▶ its queue ─▶ ClientConn::recv ─▶ DTLSConn
//!                             ├─ unknown + epoch-0 ClientHello record ─▶ new entry (half-open)
//!                             └─ anything else ─▶ dropped, counted malformed
//! ```
//!
//! Entries go away with their association ([`EntryGuard`]: close, handshake failure or timeout, idle
//! timeout, listener stop), so a client may reconnect from the same address and port. At most
//! [`MAX_HALF_OPEN`] handshakes are pending at once; a new one beyond that evicts the oldest, so
//! spoofed ClientHellos from many ports cannot grow the table and stop hurting once they stop. One
//! source IP holds at most [`MAX_HALF_OPEN_PER_IP`] of them: beyond that it evicts its own oldest,
//! so a flood from one host cannot push out the handshakes of others.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use tokio::net::UdpSocket;
use tokio::sync::{Mutex, mpsc, oneshot};
use webrtc_util::Conn;

use super::fast::{self, FastPath};

/// Most handshakes in progress at once per listener.
pub(crate) const MAX_HALF_OPEN: usize = 128;
/// Most handshakes in progress at once from one source IP.
pub(crate) const MAX_HALF_OPEN_PER_IP: usize = 32;
/// Datagrams queued per client before new ones are dropped (UDP semantics).
const QUEUE: usize = 32;
/// DTLS record content type of handshake messages.
const HANDSHAKE_RECORD: u8 = 22;
/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;

/// Whether `pkt` may open an association: a DTLS (version 0xfeXX) handshake record of epoch 0 whose
/// first handshake message is a ClientHello.
pub(super) fn opens_association(pkt: &[u8]) -> bool {
    matches!(
        pkt,
        [
            HANDSHAKE_RECORD,
            0xfe,
            _,
            0,
            0,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            CLIENT_HELLO,
            ..
        ]
    )
}

/// One client's entry; dropping it tells the association's task (see [`EntryGuard::removed`]).
#[derive(Debug)]
struct Entry {
    tx: mpsc::Sender<Vec<u8>>,
    serial: u64,
    /// Set once the association is established and its keys are known.
    fast: Option<Rc<FastPath>>,
    _alive: oneshot::Sender<()>,
}

/// The client table of one listener socket.
#[derive(Debug)]
pub(crate) struct Demux {
    sock: Arc<UdpSocket>,
    clients: HashMap<SocketAddr, Entry>,
    /// Entries still handshaking, oldest first.
    half_open: VecDeque<(SocketAddr, u64)>,
    next_serial: u64,
}

/// What became of a datagram.
#[derive(Debug)]
pub(crate) enum Routed {
    /// Queued for (or dropped by) a known client's association.
    Delivered,
    /// Not a DTLS ClientHello from an unknown client: dropped.
    Refused,
    /// A new association: run its handshake over `conn`, holding `guard` for its whole life.
    Opened(Arc<ClientConn>, EntryGuard),
}

impl Demux {
    /// An empty table serving `sock`.
    pub(crate) fn new(sock: Arc<UdpSocket>) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            sock,
            clients: HashMap::new(),
            half_open: VecDeque::new(),
            next_serial: 0,
        }))
    }

    /// Hands datagram `pkt` from `client` to its association, or opens one for it.
    pub(crate) fn route(this: &Rc<RefCell<Self>>, client: SocketAddr, pkt: &[u8]) -> Routed {
        if !fast::well_formed(pkt) {
            return Routed::Refused;
        }
        let fast = this
            .borrow()
            .clients
            .get(&client)
            .and_then(|e| e.fast.clone());
        if fast.is_some_and(|f| f.deliver(pkt)) {
            return Routed::Delivered;
        }
        let mut d = this.borrow_mut();
        if let Some(e) = d.clients.get(&client) {
            match e.tx.try_send(pkt.to_vec()) {
                Err(mpsc::error::TrySendError::Closed(_)) => d.remove(client, None),
                _ => return Routed::Delivered,
            }
        }
        if !opens_association(pkt) {
            return Routed::Refused;
        }
        d.make_room(client);
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.try_send(pkt.to_vec());
        let (alive, gone) = oneshot::channel();
        let serial = d.next_serial;
        d.next_serial += 1;
        let entry = Entry {
            tx,
            serial,
            fast: None,
            _alive: alive,
        };
        d.clients.insert(client, entry);
        d.half_open.push_back((client, serial));
        let conn = Arc::new(ClientConn {
            sock: d.sock.clone(),
            client,
            rx: Mutex::new(rx),
            suite: OnceLock::new(),
        });
        let guard = EntryGuard {
            demux: this.clone(),
            client,
            serial,
            gone,
        };
        Routed::Opened(conn, guard)
    }

    /// Evicts a pending handshake when `client`'s IP or the whole table is at its limit: that IP's
    /// oldest first, else the oldest of all.
    fn make_room(&mut self, client: SocketAddr) {
        let ip = client.ip();
        let same_ip = self.half_open.iter().filter(|(c, _)| c.ip() == ip).count();
        let victim = if same_ip >= MAX_HALF_OPEN_PER_IP {
            self.half_open.iter().find(|(c, _)| c.ip() == ip).copied()
        } else if self.half_open.len() >= MAX_HALF_OPEN {
            self.half_open.front().copied()
        } else {
            None
        };
        if let Some((old, serial)) = victim {
            tracing::debug!(client = %old, "DTLS handshake evicted by a newer one");
            self.remove(old, Some(serial));
        }
    }

    /// Drops the entry of `client` (only the one numbered `serial`, when given).
    fn remove(&mut self, client: SocketAddr, serial: Option<u64>) {
        if serial.is_none_or(|s| self.clients.get(&client).is_some_and(|e| e.serial == s)) {
            self.clients.remove(&client);
        }
        self.half_open
            .retain(|&(c, s)| c != client || serial.is_some_and(|n| n != s));
    }
}

/// Keeps a client's entry for as long as its association task holds it; dropping it (the task
/// ended or was aborted) frees the address for a new association.
#[derive(Debug)]
pub(crate) struct EntryGuard {
    demux: Rc<RefCell<Demux>>,
    client: SocketAddr,
    serial: u64,
    gone: oneshot::Receiver<()>,
}

impl EntryGuard {
    /// The handshake completed: the entry no longer counts against [`MAX_HALF_OPEN`].
    pub(crate) fn established(&self) {
        if let Ok(mut d) = self.demux.try_borrow_mut() {
            d.half_open
                .retain(|&(c, s)| c != self.client || s != self.serial);
        }
    }

    /// From now on datagrams of this client that `fast` can take go to it (see `fast`); `None`
    /// sends them all through `dtls` again.
    pub(crate) fn set_fast(&self, fast: Option<Rc<FastPath>>) {
        if let Ok(mut d) = self.demux.try_borrow_mut()
            && let Some(e) = d.clients.get_mut(&self.client)
            && e.serial == self.serial
        {
            e.fast = fast;
        }
    }

    /// Completes when the entry was taken away from the association (evicted as the oldest
    /// half-open handshake, or the listener stopped).
    pub(crate) async fn removed(&mut self) {
        let _ = (&mut self.gone).await;
    }
}

impl Drop for EntryGuard {
    fn drop(&mut self) {
        if let Ok(mut d) = self.demux.try_borrow_mut() {
            d.remove(self.client, Some(self.serial));
        }
    }
}

/// One client's view of the listener socket: datagrams from its queue, replies to its address.
#[derive(Debug)]
pub(crate) struct ClientConn {
    sock: Arc<UdpSocket>,
    client: SocketAddr,
    rx: Mutex<mpsc::Receiver<Vec<u8>>>,
    /// The cipher suite of the ServerHello we sent.
    suite: OnceLock<u16>,
}

impl ClientConn {
    /// The cipher suite the handshake chose (known once our ServerHello went out).
    pub(crate) fn suite(&self) -> Option<u16> {
        self.suite.get().copied()
    }
}

#[async_trait::async_trait]
impl Conn for ClientConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(())
    }

    /// Once the entry is removed this never completes: `dtls`'s reader task retries failed reads at
    /// once (a busy loop), and stops only when its connection is closed or dropped.
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        let got = self.rx.lock().await.recv().await;
        let Some(pkt) = got else {
            return std::future::pending().await;
        };
        let n = pkt.len().min(buf.len());
        buf[..n].copy_from_slice(&pkt[..n]);
        Ok(n)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        Ok((self.recv(buf).await?, self.client))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        if self.suite.get().is_none()
            && let Some(suite) = fast::server_hello_suite(buf)
        {
            let _ = self.suite.set(suite);
        }
        Ok(self.sock.send_to(buf, self.client).await?)
    }

    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> webrtc_util::Result<usize> {
        self.send(buf).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.client)
    }

    /// Nothing to do: the entry (and with it the queue) goes when the association's task ends. (Taking
    /// the queue's lock here could wait forever on `dtls`'s reader, which holds it while it waits.)
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(epoch: u8) -> Vec<u8> {
        let mut p = vec![22, 0xfe, 0xfd, 0, epoch, 0, 0, 0, 0, 0, 0, 0, 40, 1];
        p.resize(13 + 40, 0);
        p
    }

    #[test]
    fn only_epoch_zero_client_hellos_open() {
        assert!(opens_association(&hello(0)));
        assert!(!opens_association(&hello(1)));
        assert!(!opens_association(&[22, 0xfe, 0xfd]));
        assert!(!opens_association(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]));
        let mut appdata = hello(0);
        appdata[0] = 23;
        assert!(!opens_association(&appdata));
    }

    #[tokio::test]
    async fn table_is_bounded_and_entries_go_with_their_guard() {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let demux = Demux::new(sock);
        let addr = |n: u16| SocketAddr::from(([127, 0, (n >> 8) as u8, n as u8], 4000 + n));
        let mut guards = Vec::new();
        for port in 1..=(MAX_HALF_OPEN as u16 * 3) {
            assert!(matches!(
                Demux::route(&demux, addr(port), b"garbage"),
                Routed::Refused
            ));
            match Demux::route(&demux, addr(port), &hello(0)) {
                Routed::Opened(conn, guard) => guards.push((conn, guard)),
                other => panic!("not opened: {other:?}"),
            }
            assert!(demux.borrow().clients.len() <= MAX_HALF_OPEN);
        }
        // The newest survive; an established one no longer counts as half-open.
        let (conn, last) = guards.pop().expect("guard");
        last.established();
        assert!(matches!(
            Demux::route(&demux, last.client, &hello(1)),
            Routed::Delivered
        ));
        assert_eq!(demux.borrow().half_open.len(), MAX_HALF_OPEN - 1);
        let client = last.client;
        drop((conn, last));
        assert!(!demux.borrow().clients.contains_key(&client));
        // The same address may open a new association once the old one is gone.
        assert!(matches!(
            Demux::route(&demux, client, &hello(0)),
            Routed::Opened(..)
        ));
        drop(guards);
    }

    #[tokio::test]
    async fn one_source_cannot_evict_the_handshakes_of_others() {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let demux = Demux::new(sock);
        let victim = SocketAddr::from(([10, 0, 0, 1], 5000));
        let _victim = match Demux::route(&demux, victim, &hello(0)) {
            Routed::Opened(conn, guard) => (conn, guard),
            other => panic!("not opened: {other:?}"),
        };
        let mut flood = Vec::new();
        for port in 1..=1000u16 {
            if let Routed::Opened(conn, guard) =
                Demux::route(&demux, SocketAddr::from(([10, 0, 0, 2], port)), &hello(0))
            {
                flood.push((conn, guard));
            }
            let d = demux.borrow();
            assert!(d.clients.contains_key(&victim), "victim evicted at {port}");
            assert!(d.half_open.len() <= 1 + MAX_HALF_OPEN_PER_IP);
        }
    }
}
