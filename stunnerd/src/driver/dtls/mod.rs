//! TURN-DTLS (RFC 8656 §3.1, TURN over DTLS 1.2 over UDP) with our sans-IO `dtls12` server: the
//! listener task owns the socket and every association of the listener, and runs them on its own
//! thread. A ClientHello without a valid cookie is answered with a stateless HelloVerifyRequest
//! (nothing is kept, so spoofed sources cost a hash and a reply smaller than their request); a
//! client that returns a valid cookie gets an association ([`table`], bounded half-open). Records
//! are decrypted in place and each is one STUN message or ChannelData frame fed to the engine like
//! a TURN-TCP frame. What goes back is sealed into a record on its way into the same `sendmmsg`
//! batch a TURN-UDP client's datagrams take: a DTLS client is a datagram client whose
//! [`UdpClient`] carries its association, and its relay socket is in the worker's relay poll like
//! any UDP client's. No task or channel per record or per allocation.
//!
//! ```text
//!   UDP socket ─recvmmsg─▶ listener task ─known client─▶ Association::handle ─▶ decrypt ─▶ Ingress::input
//!                   │                                  └─ flights, replies ─▶ seal ─▶ send_to
//!                   ├─ new client, no/invalid cookie ─▶ dtls12::accept ─▶ HelloVerifyRequest
//!                   ├─ new client, valid cookie ─▶ new association (flight 4)
//!                   └─ tick ─▶ retransmissions, handshake and idle timeouts
//!   relay poll (peer data) ─▶ engine ─▶ ClientBatch: seal ─▶ sendmmsg (as TURN-UDP)
//! ```
//! All associations of a listener live on one worker (the one that started the listener).

mod table;

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls12::{Accept, Association, ServerConfig};
use proto::config::ListenerConfig;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;

use super::batch::{RecvBatch, SLOTS};
use super::conns::{ConnPermit, OpenConnection};
use super::error::ListenerError;
use super::ingress::Ingress;
use super::sink::{ClientBatch, ClientSink, UdpClient};
use super::tls::HANDSHAKE_TIMEOUT;
use crate::engine::DropReason;
use table::Table;

/// How often the listener looks at its associations' timers (retransmission, handshake and idle
/// timeouts).
const TICK: Duration = Duration::from_millis(100);
/// Full `recvmmsg` batches handled per wake-up before the worker's other tasks get a turn.
const BUDGET: usize = 4;

/// The DTLS server config of a listener (cloneable, sent to the worker that serves it).
#[derive(Clone, Debug)]
pub(crate) struct DtlsConfig(Arc<ServerConfig>);

/// The DTLS config of listener `l`, or why its certificate or key cannot be used (ECDSA P-256 keys
/// in PKCS#8 PEM).
pub(crate) fn config(l: &ListenerConfig) -> Result<DtlsConfig, ListenerError> {
    let (certs, key) = super::tls::cert_and_key(l)?;
    let PrivateKeyDer::Pkcs8(key) = key else {
        let why = "DTLS needs a PKCS#8 (\"PRIVATE KEY\") PEM key";
        return Err(ListenerError::Key(why.into()));
    };
    let certs = certs.into_iter().map(|c| c.to_vec()).collect();
    let server = ServerConfig::new(certs, key.secret_pkcs8_der(), Instant::now())
        .map_err(|e| ListenerError::Key(format!("DTLS needs an ECDSA P-256 key: {e}")))?;
    Ok(DtlsConfig(Arc::new(server)))
}

/// Fuzzing entry: every parser a datagram from an unknown client reaches.
pub(super) fn fuzz_datagram(pkt: &[u8]) {
    dtls12::fuzz_decode(pkt);
}

/// Starts the supervised DTLS listener task on the current worker, serving the bound socket `sock`.
pub(crate) fn spawn(
    ingress: &Ingress,
    name: &Arc<str>,
    sock: std::net::UdpSocket,
    cfg: DtlsConfig,
) -> Vec<AbortHandle> {
    let sock = match UdpSocket::from_std(sock) {
        Ok(sock) => Rc::new(sock),
        Err(error) => {
            tracing::error!(%error, "cannot register a DTLS listener socket");
            return Vec::new();
        }
    };
    let ingress = ingress.clone();
    let stats = ingress.stats.clone();
    vec![super::supervise::listener(name.clone(), stats, move || {
        Listener::new(ingress.clone(), sock.clone(), cfg.0.clone()).serve()
    })]
}

/// One client's association and what goes with it.
struct Client {
    assoc: Rc<RefCell<Association>>,
    /// Where the engine's replies and relayed data for this client go: datagrams on the listener
    /// socket, sealed into `assoc`'s records.
    sink: UdpClient,
    opened: Instant,
    /// When the last record from the client was handled (the idle timeout).
    last_active: Cell<Instant>,
    _permit: ConnPermit,
    _open: OpenConnection,
}

/// The listener task's state.
struct Listener {
    ingress: Ingress,
    sock: Rc<UdpSocket>,
    cfg: Arc<ServerConfig>,
    local_ip: Option<IpAddr>,
    clients: Table<Client>,
    /// Datagrams to send (flights) and engine replies, reused.
    sends: Vec<Vec<u8>>,
    replies: Vec<Vec<u8>>,
    /// Replies sealed and sent with one `sendmmsg` (reused: its buffers are sized for a batch).
    batch: ClientBatch,
}

impl Listener {
    fn new(ingress: Ingress, sock: Rc<UdpSocket>, cfg: Arc<ServerConfig>) -> Self {
        let local_ip = sock.local_addr().ok().map(|a| a.ip());
        Self {
            ingress,
            sock,
            cfg,
            local_ip,
            clients: Table::default(),
            sends: Vec::new(),
            replies: Vec::new(),
            batch: ClientBatch::default(),
        }
    }

    /// Reads the socket and runs the timers until aborted (with the listener; its associations go
    /// with it, like its allocations).
    async fn serve(mut self) {
        let mut rx = RecvBatch::default();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ready = self.sock.readable() => match ready {
                    Ok(()) => self.drain(&mut rx).await,
                    Err(error) => tracing::debug!(%error, "DTLS listener socket error"),
                },
                _ = tick.tick() => self.timers().await,
            }
        }
    }

    /// Handles what the socket holds, a `recvmmsg` batch at a time, [`BUDGET`] batches at most
    /// before the worker's other tasks get a turn.
    async fn drain(&mut self, rx: &mut RecvBatch) {
        for _ in 0..BUDGET {
            let n = rx.recv_ready(&self.sock, SLOTS).unwrap_or_else(|error| {
                tracing::debug!(%error, "DTLS listener receive error");
                0
            });
            for i in 0..n {
                match rx.get_mut(i) {
                    Some((pkt, from)) => self.datagram(from, pkt).await,
                    None => self.ingress.stats.drop_packet(DropReason::Malformed),
                }
            }
            if n < SLOTS {
                return;
            }
        }
    }

    /// A datagram from `from`. A ClientHello from the address of an established association
    /// is a client that restarted: it goes through the cookie round again, and a valid cookie
    /// replaces the old association (and its allocation).
    async fn datagram(&mut self, from: SocketAddr, pkt: &mut [u8]) {
        match self.clients.get(&from) {
            Some(c) if !(dtls12::is_client_hello(pkt) && c.assoc.borrow().is_established()) => {
                self.known(from, &c, pkt).await;
            }
            _ => self.unknown(from, pkt).await,
        }
    }

    /// A datagram from a client without an association: a cookie round or a new association.
    async fn unknown(&mut self, from: SocketAddr, pkt: &[u8]) {
        let stats = &self.ingress.stats;
        match dtls12::accept(&self.cfg, Instant::now(), from, pkt) {
            Accept::Verify(hvr) => {
                let _ = self.sock.send_to(&hvr, from).await;
            }
            Accept::Open(assoc, flight) => {
                let Some(permit) = self.ingress.admit(from) else {
                    stats.drop_packet(DropReason::ConnectionLimit);
                    return;
                };
                let assoc = Rc::new(RefCell::new(*assoc));
                let sink = UdpClient {
                    sock: self.sock.clone(),
                    client: from,
                    stats: stats.clone(),
                    dtls: Some(assoc.clone()),
                };
                let client = Client {
                    assoc,
                    sink,
                    opened: Instant::now(),
                    last_active: Cell::new(Instant::now()),
                    _permit: permit,
                    _open: OpenConnection::new(stats),
                };
                if self.clients.get(&from).is_some() {
                    self.close(from, None);
                }
                match self.clients.insert(from, client) {
                    Ok(None) => {}
                    Ok(Some(_evicted)) => self.ingress.stats.drop_packet(DropReason::TlsHandshake),
                    Err(table::Refused) => {
                        // The client retransmits its ClientHello and gets in once one completed.
                        self.ingress.stats.drop_packet(DropReason::ConnectionLimit);
                        return;
                    }
                }
                self.send(from, flight).await;
            }
            Accept::Refuse(alert, error) => {
                tracing::debug!(client = %from, %error, "DTLS handshake refused");
                stats.drop_packet(DropReason::TlsHandshake);
                let _ = self.sock.send_to(&alert, from).await;
            }
            Accept::Ignore(_) => stats.drop_packet(DropReason::Malformed),
        }
    }

    /// A datagram for client `c`'s association.
    async fn known(&mut self, from: SocketAddr, c: &Rc<Client>, pkt: &mut [u8]) {
        let now = Instant::now();
        let was_established = c.assoc.borrow().is_established();
        let handled = {
            let (ingress, local_ip, replies) = (&self.ingress, self.local_ip, &mut self.replies);
            let mut out = Vec::new();
            let mut deliver = |frame: &[u8]| {
                let sink = || ClientSink::Udp(c.sink.clone());
                if ingress.input(now, from, local_ip, frame, sink, &mut out) {
                    replies.push(std::mem::take(&mut out));
                }
            };
            c.assoc
                .borrow_mut()
                .handle(now, pkt, &mut self.sends, &mut deliver)
        };
        match handled {
            Ok(dropped) => {
                c.last_active.set(now);
                for _ in 0..dropped {
                    self.ingress.stats.drop_packet(DropReason::Malformed);
                }
            }
            Err(error) => {
                tracing::debug!(client = %from, %error, "DTLS association failed");
                let why = (!was_established).then_some(DropReason::TlsHandshake);
                self.close(from, why);
                return;
            }
        }
        let sends = std::mem::take(&mut self.sends);
        self.send(from, sends).await;
        if !self.replies.is_empty() {
            for reply in self.replies.drain(..) {
                self.batch.push(&c.sink, &reply);
            }
            self.batch.flush();
        }
        let assoc = c.assoc.borrow();
        if !was_established && assoc.is_established() {
            self.clients.established(from);
        }
        if assoc.is_closed() {
            drop(assoc);
            self.close(from, None);
        }
    }

    /// Ends `from`'s association; its allocation goes with it. `why` is counted when given (not
    /// when the client closed it).
    fn close(&mut self, from: SocketAddr, why: Option<DropReason>) {
        if self.clients.remove(from).is_none() {
            return;
        }
        if let Some(why) = why {
            self.ingress.stats.drop_packet(why);
        }
        self.ingress.client_gone(from);
    }

    /// Retransmissions, and the handshake and idle timeouts.
    async fn timers(&mut self) {
        let now = Instant::now();
        let limits = self.ingress.shard.env.limits.clone();
        let handshake_timeout = HANDSHAKE_TIMEOUT.min(limits.first_request_timeout);
        for (addr, c) in self.clients.entries() {
            if !c.assoc.borrow().is_established() {
                if now.duration_since(c.opened) >= handshake_timeout {
                    tracing::debug!(client = %addr, "DTLS handshake timed out");
                    self.close(addr, Some(DropReason::TlsHandshake));
                    continue;
                }
                let mut out = Vec::new();
                c.assoc.borrow_mut().handle_timeout(now, &mut out);
                self.send(addr, out).await;
            } else if now.duration_since(c.last_active.get()) >= limits.idle_timeout
                && !self.ingress.has_allocation(addr)
            {
                let bye = c.assoc.borrow_mut().close();
                self.send(addr, bye.into_iter().collect()).await;
                self.close(addr, Some(DropReason::Timeout));
            }
        }
    }

    async fn send(&self, to: SocketAddr, datagrams: Vec<Vec<u8>>) {
        for d in datagrams {
            if self.sock.send_to(&d, to).await.is_err() {
                self.ingress.stats.drop_packet(DropReason::SendFailed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn listener(cert: &str, key: &str) -> ListenerConfig {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        ListenerConfig {
            name: "dtls".into(),
            cert: b64(cert),
            key: b64(key),
            ..ListenerConfig::default()
        }
    }

    #[test]
    fn p256_pkcs8_key_builds_a_config_and_garbage_is_named() {
        let cert = include_str!("../testdata/cert.pem");
        let key = include_str!("../testdata/key.pem");
        let cfg = config(&listener(cert, key)).expect("config");
        assert!(format!("{cfg:?}").contains("certs: 1"), "{cfg:?}");
        let err = config(&listener("junk", key))
            .expect_err("bad cert")
            .to_string();
        assert!(err.starts_with("cert:"), "{err}");
        let err = config(&listener(cert, "junk"))
            .expect_err("bad key")
            .to_string();
        assert!(err.starts_with("key:"), "{err}");
    }
}
