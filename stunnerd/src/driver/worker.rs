//! A worker: one OS thread running a single-threaded tokio runtime that owns one engine shard and
//! every socket task of that shard (its share of each listener's sockets, the relay sockets of the
//! allocations it created, TCP connections it accepted). Nothing on the packet path is shared with
//! another thread: the engine lives in a `RefCell`, receive/send buffers are per worker.
//!
//! ```text
//!  control plane ──Command (mpsc)──▶ worker thread: LocalSet
//!                                     ├─ udp::listen   (per listener socket)  ─┐
//!                                     ├─ tcp::accept / tcp::connection         ├─ Rc<Worker>: RefCell<Engine>
//!                                     ├─ udp::relay    (per allocation)       ─┘
//!                                     └─ timer (engine.poll_timeout)
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::reserve::Reservations;
use super::sockets;
use super::tcp::TcpSink;
use crate::engine::special::RelayAddrs;
use crate::engine::{
    AllocId, AllocateRequest, Engine, EngineConfig, ListenerId, ListenerSpec, ListenerStats,
    PeerFilter, RelayError, Shared,
};
use crate::limits::Limits;
use proto::turn::Family;

/// Largest datagram we receive (a full-size UDP payload).
pub(crate) const RX_BUF: usize = 65_536;

/// What the control plane tells a worker.
#[derive(Debug)]
pub(crate) enum Command {
    /// New auth/realm/quota settings.
    Config(Arc<EngineConfig>),
    /// Start serving a listener with this worker's share of its sockets.
    AddListener {
        /// Engine id of the listener.
        id: ListenerId,
        /// Engine view of the listener (filter and counters built for this worker).
        spec: ListenerSpec,
        /// The sockets this worker serves.
        sockets: ListenerSockets,
        /// Where relay sockets are bound.
        relay_ip: RelayIp,
    },
    /// Replace the peer filter of a listener (routes, clusters or DNS answers changed).
    SetFilter(ListenerId, PeerFilter),
    /// Stop a listener and drop its allocations.
    RemoveListener(ListenerId),
    /// Drop every allocation (a drain deadline passed).
    CloseAll,
}

/// Sockets of one listener handed to one worker.
#[derive(Debug)]
pub(crate) enum ListenerSockets {
    /// TURN-UDP.
    Udp(Vec<std::net::UdpSocket>),
    /// TURN-TCP.
    Tcp(Vec<std::net::TcpListener>),
    /// TURN-TLS: TCP sockets plus the listener's TLS acceptor.
    Tls(Vec<std::net::TcpListener>, super::tls::TlsAcceptor),
    /// TURN-DTLS: the listener socket and the DTLS config.
    Dtls(std::net::UdpSocket, Box<super::dtls::DtlsConfig>),
}

/// How the relay address of an allocation is chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RelayIp {
    /// The listener's `address` (or STUNNER_ADDR): bind relays there and advertise it.
    Fixed(IpAddr),
    /// Wildcard listener without STUNNER_ADDR: the local address the client reached.
    Auto,
}

/// An allocation's relay socket; dropping it (when the engine frees the allocation) stops the task
/// reading it, which closes the socket and frees the port.
pub(crate) struct Relay {
    pub(crate) sock: Rc<UdpSocket>,
    task: Cell<Option<AbortHandle>>,
    /// Where the socket is registered as one of the server's own addresses.
    own: Option<(SocketAddr, Arc<RelayAddrs>)>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("sock", &self.sock)
            .finish_non_exhaustive()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some((addr, relays)) = self.own.take() {
            relays.remove(addr);
        }
    }
}

/// Where data for a client goes.
#[derive(Debug, Clone)]
pub(crate) enum ClientSink {
    /// A datagram on the listener socket the client talks to.
    Udp {
        /// The listener socket that received the client's Allocate.
        sock: Rc<UdpSocket>,
        /// The client's address.
        client: SocketAddr,
        /// The listener's counters (send failures).
        stats: Arc<ListenerStats>,
    },
    /// A frame on the client's TCP connection.
    Tcp(Rc<TcpSink>),
}

/// Per-worker buffers, borrowed only between awaits.
#[derive(Debug)]
pub(crate) struct Bufs {
    pub(crate) rx: Box<[u8]>,
    pub(crate) out: Vec<u8>,
}

/// State of one worker thread.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) engine: RefCell<Engine<Relay>>,
    pub(crate) bufs: RefCell<Bufs>,
    /// Tasks serving each listener's sockets.
    tasks: RefCell<HashMap<ListenerId, Vec<AbortHandle>>>,
    /// SO_RCVBUF/SO_SNDBUF of relay sockets.
    pub(crate) socket_buffer: usize,
    /// Reserved relay ports (EVEN-PORT / RESERVATION-TOKEN), shared by all workers.
    reservations: Arc<Reservations>,
    /// Live relay addresses of all workers (refused as peers).
    relays: Arc<RelayAddrs>,
    /// Connection limits and timeouts, relay port range.
    pub(crate) limits: Arc<Limits>,
    /// Open connections per listener and client IP, shared by all workers.
    pub(crate) conns: Arc<super::conns::ConnLimits>,
}

/// What a worker shares with the others and the control plane.
#[derive(Debug)]
pub(crate) struct WorkerEnv {
    /// SO_RCVBUF/SO_SNDBUF of relay sockets.
    pub(crate) socket_buffer: usize,
    /// Reserved relay ports.
    pub(crate) reservations: Arc<Reservations>,
    /// Live relay addresses of all workers.
    pub(crate) relays: Arc<RelayAddrs>,
    /// Limits in force.
    pub(crate) limits: Arc<Limits>,
    /// Open connections of all workers.
    pub(crate) conns: Arc<super::conns::ConnLimits>,
}

impl Worker {
    /// Binds a relay socket for `rq` and completes the allocation; the response is in `out`.
    /// Spawns the relay task feeding `sink`. Must be called with no engine borrow held.
    pub(crate) fn allocate(
        self: &Rc<Self>,
        now: Instant,
        rq: AllocateRequest,
        relay_ip: IpAddr,
        sink: ClientSink,
        out: &mut Vec<u8>,
    ) -> Option<AllocId> {
        let mut rq = rq;
        let bound = self.bind_for(now, &mut rq, relay_ip);
        let mut engine = self.engine.borrow_mut();
        let id = engine.complete_allocate(now, rq, bound, out)?;
        let relay = engine.relay(id)?;
        let task = tokio::task::spawn_local(super::udp::relay(
            self.clone(),
            id,
            relay.sock.clone(),
            sink,
        ));
        relay.task.set(Some(task.abort_handle()));
        Some(id)
    }

    /// The relay socket of `rq`: the reserved one for a RESERVATION-TOKEN, an even/odd pair whose
    /// odd half is reserved (setting `rq.issued_token`) for EVEN-PORT with R, else a fresh one.
    fn bind_for(
        &self,
        now: Instant,
        rq: &mut AllocateRequest,
        ip: IpAddr,
    ) -> Result<(Relay, SocketAddr), RelayError> {
        if let Some(token) = rq.reservation {
            let (sock, addr) = self
                .reservations
                .take(token, now)
                .ok_or(RelayError::UnknownReservation)?;
            return Ok((Relay::new(sock, addr, &self.relays)?, addr));
        }
        let ip = relay_family(ip, rq.family)?;
        if !rq.reserve {
            return bind_relay(ip, rq.even_port, self.relay_opts(), &self.relays);
        }
        let ((even, addr), (odd, odd_addr)) =
            sockets::relay_pair(ip, self.relay_opts()).map_err(|error| {
                tracing::warn!(%ip, %error, "cannot bind a relay port pair");
                RelayError::Capacity
            })?;
        rq.issued_token = Some(
            self.reservations
                .insert(odd, odd_addr, now)
                .ok_or(RelayError::Capacity)?,
        );
        Ok((Relay::new(even, addr, &self.relays)?, addr))
    }

    fn relay_opts(&self) -> sockets::RelayOpts {
        sockets::RelayOpts {
            buffer: self.socket_buffer,
            ports: self.limits.relay_ports,
        }
    }

    fn apply(self: &Rc<Self>, cmd: Command) {
        match cmd {
            Command::Config(cfg) => self.engine.borrow_mut().set_config(cfg),
            Command::AddListener {
                id,
                spec,
                sockets,
                relay_ip,
            } => {
                let stats = spec.stats.clone();
                let name = spec.name.clone();
                self.engine.borrow_mut().add_listener(id, spec);
                let n = &name;
                let tasks = match sockets {
                    ListenerSockets::Udp(socks) => {
                        super::udp::spawn_listeners(self, id, n, socks, relay_ip, stats)
                    }
                    ListenerSockets::Tcp(socks) => {
                        super::tcp::spawn_listeners(self, id, n, socks, relay_ip, stats, None)
                    }
                    ListenerSockets::Tls(socks, tls) => {
                        super::tcp::spawn_listeners(self, id, n, socks, relay_ip, stats, Some(tls))
                    }
                    ListenerSockets::Dtls(sock, cfg) => {
                        super::dtls::spawn_listener(self, id, n, sock, *cfg, relay_ip, stats)
                    }
                };
                self.tasks.borrow_mut().insert(id, tasks);
            }
            Command::SetFilter(id, filter) => self.engine.borrow_mut().set_filter(id, filter),
            Command::CloseAll => {
                let closed = self.engine.borrow_mut().close_all();
                tracing::debug!(closed, "allocations closed");
            }
            Command::RemoveListener(id) => {
                for task in self.tasks.borrow_mut().remove(&id).unwrap_or_default() {
                    task.abort();
                }
                // Take the relays out of the engine before dropping them (their Drop aborts tasks).
                let closed = self.engine.borrow_mut().remove_listener(id);
                tracing::debug!(listener = id.0, closed, "listener stopped");
            }
        }
    }
}

/// The relay IP of `family` for a listener relaying on `ip` (IPv4-mapped IPv6 becomes IPv4).
fn relay_family(ip: IpAddr, family: Family) -> Result<IpAddr, RelayError> {
    match (family, ip) {
        (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_)) => Ok(ip),
        (Family::V4, IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .ok_or(RelayError::Family),
        (Family::V6, IpAddr::V4(_)) => Err(RelayError::Family),
    }
}

fn bind_relay(
    ip: IpAddr,
    even: bool,
    opts: sockets::RelayOpts,
    relays: &Arc<RelayAddrs>,
) -> Result<(Relay, SocketAddr), RelayError> {
    let (sock, addr) = sockets::relay_socket(ip, even, opts).map_err(|error| {
        tracing::warn!(%ip, %error, "cannot bind a relay socket");
        RelayError::Capacity
    })?;
    Ok((Relay::new(sock, addr, relays)?, addr))
}

impl Relay {
    /// Registers `sock` (bound on `addr`) with the worker's runtime (no reader task yet) and as
    /// one of the server's own addresses.
    fn new(
        sock: std::net::UdpSocket,
        addr: SocketAddr,
        relays: &Arc<RelayAddrs>,
    ) -> Result<Self, RelayError> {
        let sock = UdpSocket::from_std(sock).map_err(|_| RelayError::Capacity)?;
        relays.insert(addr);
        Ok(Self {
            sock: Rc::new(sock),
            task: Cell::new(None),
            own: Some((addr, relays.clone())),
        })
    }
}

/// Handle the control plane keeps for a worker.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    pub(crate) tx: mpsc::UnboundedSender<Command>,
}

/// Starts worker thread `index`.
pub(crate) fn spawn(
    index: usize,
    cfg: Arc<EngineConfig>,
    shared: Arc<Shared>,
    env: WorkerEnv,
) -> std::io::Result<WorkerHandle> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("stunnerd-worker-{index}"))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run(cfg, shared, env, rx));
        })?;
    Ok(WorkerHandle { tx })
}

async fn run(
    cfg: Arc<EngineConfig>,
    shared: Arc<Shared>,
    env: WorkerEnv,
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
    let worker = Rc::new(Worker {
        engine: RefCell::new(Engine::new(cfg, shared)),
        bufs: RefCell::new(Bufs {
            rx: vec![0u8; RX_BUF].into_boxed_slice(),
            out: Vec::with_capacity(RX_BUF + 64),
        }),
        tasks: RefCell::new(HashMap::new()),
        socket_buffer: env.socket_buffer,
        reservations: env.reservations,
        relays: env.relays,
        limits: env.limits,
        conns: env.conns,
    });
    let timer = tokio::task::spawn_local(timer(worker.clone()));
    while let Some(cmd) = rx.recv().await {
        worker.apply(cmd);
    }
    timer.abort();
    let ids: Vec<ListenerId> = worker.tasks.borrow().keys().copied().collect();
    for id in ids {
        worker.apply(Command::RemoveListener(id));
    }
}

/// Drives the engine's timers (allocation expiry), at least once a second.
async fn timer(worker: Rc<Worker>) {
    loop {
        let now = Instant::now();
        let next = worker
            .engine
            .borrow()
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1));
        tokio::time::sleep_until(next.min(now + Duration::from_secs(1)).into()).await;
        let now = Instant::now();
        worker.engine.borrow_mut().handle_timeout(now);
        worker.reservations.purge(now);
    }
}
