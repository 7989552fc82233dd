//! A worker: one OS thread running a single-threaded tokio runtime that owns one engine shard
//! ([`Shard`]) and every socket task of that shard (its share of each listener's sockets, the relay
//! sockets of the allocations it created, the connections it accepted), and applies the control
//! plane's [`Command`]s. Nothing on the packet path is shared with another thread.
//!
//! ```text
//!  control plane ──Command (mpsc)──▶ worker thread: LocalSet, Rc<Shard>
//!                                     ├─ udp::run      (per listener socket)  ─┐
//!                                     ├─ stream::accept / connections          ├─ Ingress::input ─▶ engine
//!                                     ├─ dtls::accept / associations          ─┘
//!                                     ├─ relay::serve_polled (relay poll: UDP clients' relay sockets)
//!                                     ├─ relay::serve_framed (per allocation of a TCP/TLS/DTLS client)
//!                                     └─ timer (engine.poll_timeout)
//! ```

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::ingress::{Ingress, RelayIp};
use super::shard::{Shard, SharedEnv};
use super::{dtls, relay, stream, supervise, tls, udp};
use crate::engine::{Engine, EngineConfig, ListenerId, ListenerSpec, PeerFilter, Shared};

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
    Tls(Vec<std::net::TcpListener>, tls::TlsAcceptor),
    /// TURN-DTLS: the listener socket and the DTLS config.
    Dtls(std::net::UdpSocket, Box<dtls::DtlsConfig>),
}

/// A worker's state on its own thread: the shard and the tasks serving each listener.
struct Worker {
    shard: Rc<Shard>,
    tasks: HashMap<ListenerId, Vec<AbortHandle>>,
}

impl Worker {
    fn apply(&mut self, cmd: Command) {
        let engine = &self.shard.engine;
        match cmd {
            Command::Config(cfg) => engine.borrow_mut().set_config(cfg),
            Command::AddListener {
                id,
                spec,
                sockets,
                relay_ip,
            } => {
                let ingress = Ingress {
                    shard: self.shard.clone(),
                    id,
                    relay_ip,
                    stats: spec.stats.clone(),
                };
                let name = spec.name.clone();
                engine.borrow_mut().add_listener(id, spec);
                let tasks = match sockets {
                    ListenerSockets::Udp(socks) => udp::spawn(&ingress, &name, socks),
                    ListenerSockets::Tcp(socks) => stream::spawn(&ingress, &name, socks, None),
                    ListenerSockets::Tls(socks, tls) => {
                        stream::spawn(&ingress, &name, socks, Some(tls))
                    }
                    ListenerSockets::Dtls(sock, cfg) => dtls::spawn(&ingress, &name, sock, *cfg),
                };
                self.tasks.insert(id, tasks);
            }
            Command::SetFilter(id, filter) => engine.borrow_mut().set_filter(id, filter),
            Command::CloseAll => {
                let closed = engine.borrow_mut().close_all();
                tracing::debug!(closed, "allocations closed");
            }
            Command::RemoveListener(id) => {
                for task in self.tasks.remove(&id).unwrap_or_default() {
                    task.abort();
                }
                // Take the relays out of the engine before dropping them (their Drop aborts tasks).
                let closed = engine.borrow_mut().remove_listener(id);
                tracing::debug!(listener = id.0, closed, "listener stopped");
            }
        }
    }
}

/// Handle the control plane keeps for a worker.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    pub(crate) tx: mpsc::UnboundedSender<Command>,
}

/// Starts worker thread `index` (returns once its runtime and shard are set up).
pub(crate) fn spawn(
    index: usize,
    cfg: Arc<EngineConfig>,
    shared: Arc<Shared>,
    env: SharedEnv,
) -> std::io::Result<WorkerHandle> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (started, start) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(format!("stunnerd-worker-{index}"))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            let shard = {
                let _rt = rt.enter();
                Shard::new(Engine::new(cfg, shared), env)
            };
            match shard {
                Ok(shard) => {
                    let _ = started.send(Ok(()));
                    local.block_on(&rt, run(Rc::new(shard), rx));
                }
                Err(e) => {
                    let _ = started.send(Err(e));
                }
            }
        })?;
    start
        .recv()
        .map_err(|_| std::io::Error::other("worker thread ended at start"))??;
    Ok(WorkerHandle { tx })
}

async fn run(shard: Rc<Shard>, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut worker = Worker {
        shard: shard.clone(),
        tasks: HashMap::new(),
    };
    let timer = tokio::task::spawn_local(timer(shard.clone()));
    let relays = shard.clone();
    let polled = supervise::restarting(
        || tracing::error!("relay task panicked, restarting it"),
        move || relay::serve_polled(relays.clone()),
    );
    while let Some(cmd) = rx.recv().await {
        worker.apply(cmd);
    }
    timer.abort();
    polled.abort();
    let ids: Vec<ListenerId> = worker.tasks.keys().copied().collect();
    for id in ids {
        worker.apply(Command::RemoveListener(id));
    }
}

/// Drives the engine's timers (allocation expiry), at least once a second.
async fn timer(shard: Rc<Shard>) {
    loop {
        let now = Instant::now();
        let next = shard
            .engine
            .borrow()
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1));
        tokio::time::sleep_until(next.min(now + Duration::from_secs(1)).into()).await;
        let now = Instant::now();
        shard.engine.borrow_mut().handle_timeout(now);
        shard.env.reservations.purge(now);
    }
}
