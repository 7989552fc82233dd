//! The tokio driver's control plane: turns `proto::config` configs into listener sockets, per-worker
//! engine settings and peer filters, applies config changes live (unchanged listeners keep their
//! allocations, a changed listener restarts alone), and re-resolves STRICT_DNS cluster names.
//!
//! ```text
//!   config ──apply()──▶ Dataplane ──Command──▶ worker 0 … worker N-1 (worker.rs)
//!                          │  binds SO_REUSEPORT groups, socket i → worker i % N
//!                          └─ names ──▶ dns.rs task ──answers──▶ refresh_dns() ──SetFilter──▶ workers
//! ```

mod batch;
mod conns;
mod dns;
mod dtls;
mod error;
mod ingress;
mod poller;
mod relay;
mod reserve;
mod shard;
mod sink;
mod sockets;
mod stream;
mod supervise;
mod tls;
mod udp;
mod view;
mod worker;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use proto::config::{AuthType, Endpoint, ListenerConfig, ListenerProtocol, StunnerConfig};

use crate::engine::special::RelayAddrs;
use crate::engine::{Auth, EngineConfig, ListenerId, ListenerSpec, OwnAddrs, PeerFilter, Shared};
use crate::metrics::StatsHub;
pub use error::{ApplyError, ListenerError};
use ingress::RelayIp;
use worker::{Command, ListenerSockets, WorkerHandle};

/// Fuzzing entry: the DTLS demultiplexer's checks on one datagram.
pub(crate) fn fuzz_dtls_datagram(pkt: &[u8]) {
    dtls::fuzz_datagram(pkt);
}

/// Driver settings from the command line.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Worker threads (engine shards).
    pub threads: usize,
    /// SO_REUSEPORT sockets per UDP listener (spread over the workers).
    pub udp_sockets: usize,
    /// SO_RCVBUF/SO_SNDBUF of listener and relay sockets (bytes, 0 = kernel default).
    pub socket_buffer: usize,
    /// STUNNER_ADDR: relay address for listeners bound to a wildcard address.
    pub stunner_addr: Option<IpAddr>,
    /// SOFTWARE attribute of responses.
    pub software: String,
    /// Default allocation lifetime.
    pub default_lifetime: std::time::Duration,
    /// Longest allocation lifetime.
    pub max_lifetime: std::time::Duration,
    /// Allocation and connection limits, relay port range.
    pub limits: crate::limits::Limits,
}

#[derive(Debug)]
struct Running {
    id: ListenerId,
    cfg: ListenerConfig,
}

/// The running dataplane: workers plus the listeners of the config in force.
#[derive(Debug)]
pub struct Dataplane {
    opts: DriverOptions,
    hub: Arc<StatsHub>,
    workers: Vec<WorkerHandle>,
    running: BTreeMap<String, Running>,
    next_id: u32,
    /// The resolver task and the answers in force.
    resolver: dns::Resolver,
    dns: dns::Answers,
    config: Option<view::ConfigView>,
    /// Live relay addresses of every worker (refused as peers).
    relays: Arc<RelayAddrs>,
}

impl Dataplane {
    /// Starts the worker threads (with no listeners yet).
    pub fn start(
        opts: DriverOptions,
        shared: Arc<Shared>,
        hub: Arc<StatsHub>,
    ) -> std::io::Result<Self> {
        let threads = opts.threads.max(1);
        let cfg = Arc::new(EngineConfig::default());
        let reservations = Arc::new(reserve::Reservations::default());
        let relays = Arc::new(RelayAddrs::default());
        let conns = Arc::new(conns::ConnLimits::default());
        let limits = Arc::new(opts.limits.clone());
        let workers = (0..threads)
            .map(|i| {
                let (cfg, shared, res) = (cfg.clone(), shared.clone(), reservations.clone());
                let env = shard::SharedEnv {
                    socket_buffer: opts.socket_buffer,
                    reservations: res,
                    relays: relays.clone(),
                    limits: limits.clone(),
                    conns: conns.clone(),
                };
                worker::spawn(i, cfg, shared, env)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            opts,
            hub,
            workers,
            running: BTreeMap::new(),
            next_id: 1,
            resolver: dns::Resolver::start(),
            dns: dns::Answers::new(),
            config: None,
            relays,
        })
    }

    /// The config in force.
    pub fn config(&self) -> Option<&StunnerConfig> {
        self.config.as_ref().map(|v| &v.raw)
    }

    fn broadcast(&self, cmd: impl Fn(usize) -> Command) {
        for (i, w) in self.workers.iter().enumerate() {
            let _ = w.tx.send(cmd(i));
        }
    }

    /// Applies a validated config. Auth errors reject the whole config (the previous one stays);
    /// a listener that fails to start is reported while the rest is applied.
    /// STRICT_DNS names are resolved by a task of their own: until their first answer arrives they
    /// admit no peer (see [`Self::refresh_dns`]).
    pub fn apply(&mut self, cfg: StunnerConfig) -> Result<(), Vec<ApplyError>> {
        let view = view::ConfigView::new(cfg).map_err(|e| vec![e])?;
        let engine = Arc::new(self.engine_config(&view.raw).map_err(|e| vec![e])?);
        self.broadcast(|_| Command::Config(engine.clone()));
        self.resolver.set_names(view.dns_names());
        self.dns = self.resolver.answers();
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, r)| {
                view.listener(name)
                    .is_none_or(|l| r.cfg.requires_restart(&l.cfg))
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(r) = self.running.remove(&name) {
                tracing::info!(listener = %name, "stopping listener");
                self.broadcast(|_| Command::RemoveListener(r.id));
            }
        }
        let mut errors = Vec::new();
        for l in &view.listeners {
            match self.running.get_mut(&l.cfg.name) {
                Some(r) => {
                    r.cfg = l.cfg.clone();
                    let id = r.id;
                    self.broadcast(|w| Command::SetFilter(id, self.filter(&view, l, w)));
                }
                None => {
                    if let Err(source) = self.start_listener(&view, l) {
                        errors.push(ApplyError::Listener {
                            name: l.cfg.name.clone(),
                            source,
                        });
                    }
                }
            }
        }
        self.config = Some(view);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn engine_config(&self, cfg: &StunnerConfig) -> Result<EngineConfig, ApplyError> {
        let realm = cfg.auth.realm.clone();
        let cred = |k: &'static str| {
            cfg.auth
                .credential(k)
                .ok_or(ApplyError::MissingCredential(k))
        };
        let auth = match cfg.auth.auth_type {
            AuthType::None => Auth::None,
            AuthType::Static => Auth::new_static(cred("username")?, cred("password")?, &realm),
            AuthType::Ephemeral => Auth::Ephemeral {
                secret: cred("secret")?.as_bytes().to_vec(),
            },
        };
        Ok(EngineConfig {
            auth,
            realm,
            user_quota: cfg.admin.user_quota,
            client_quota: self.opts.limits.client_quota,
            max_allocations: self.opts.limits.max_allocations,
            software: self.opts.software.clone(),
            default_lifetime: self.opts.default_lifetime,
            max_lifetime: self.opts.max_lifetime,
            ..EngineConfig::default()
        })
    }

    fn start_listener(
        &mut self,
        view: &view::ConfigView,
        lv: &view::ListenerView,
    ) -> Result<(), ListenerError> {
        let (l, ip) = (&lv.cfg, lv.ip);
        // Bind every interface of the address family, as upstream: `address` is only the relay
        // address (it may be a NAT'd public IP the pod does not own).
        let addr = SocketAddr::new(sockets::unspecified_like(ip), l.port);
        let n = self.workers.len();
        let mut per_worker: Vec<ListenerSockets> = match l.protocol {
            ListenerProtocol::TurnUdp => {
                let socks =
                    sockets::udp_group(addr, self.opts.udp_sockets.max(1), self.opts.socket_buffer)
                        .map_err(bind_error("UDP", addr))?;
                let mut split: Vec<Vec<_>> = (0..n).map(|_| Vec::new()).collect();
                for (i, s) in socks.into_iter().enumerate() {
                    split[i % n].push(s);
                }
                split.into_iter().map(ListenerSockets::Udp).collect()
            }
            ListenerProtocol::TurnTcp => sockets::tcp_group(addr, n)
                .map_err(bind_error("TCP", addr))?
                .into_iter()
                .map(|s| ListenerSockets::Tcp(vec![s]))
                .collect(),
            ListenerProtocol::TurnTls => {
                // Certificate first: a broken cert/key must not leave a bound port behind.
                let acceptor = tls::acceptor(l)?;
                sockets::tcp_group(addr, n)
                    .map_err(bind_error("TCP", addr))?
                    .into_iter()
                    .map(|s| ListenerSockets::Tls(vec![s], acceptor.clone()))
                    .collect()
            }
            ListenerProtocol::TurnDtls => {
                // Certificate first: a broken cert/key must not leave a bound port behind.
                let cfg = dtls::config(l)?;
                let sock = sockets::udp_group(addr, 1, self.opts.socket_buffer)
                    .map_err(bind_error("UDP", addr))?
                    .pop()
                    .ok_or_else(|| bind_error("UDP", addr)(std::io::ErrorKind::NotFound.into()))?;
                // One worker serves every association of the listener.
                let mut v: Vec<_> = (1..n).map(|_| ListenerSockets::Udp(Vec::new())).collect();
                v.insert(0, ListenerSockets::Dtls(sock, Box::new(cfg)));
                v
            }
        };
        let relay_ip = match (ip.is_unspecified(), self.opts.stunner_addr) {
            (false, _) => RelayIp::Fixed(ip),
            (true, Some(pod)) => RelayIp::Fixed(pod),
            (true, None) => RelayIp::Auto,
        };
        let id = ListenerId(self.next_id);
        self.next_id += 1;
        for (w, handle) in self.workers.iter().enumerate().rev() {
            let spec = ListenerSpec {
                name: l.name.as_str().into(),
                stream: matches!(
                    l.protocol,
                    ListenerProtocol::TurnTcp | ListenerProtocol::TurnTls
                ),
                filter: self.filter(view, lv, w),
                stats: self.hub.listener(w, &l.name),
            };
            let sockets = per_worker.pop().unwrap_or(ListenerSockets::Udp(Vec::new()));
            let _ = handle.tx.send(Command::AddListener {
                id,
                spec,
                sockets,
                relay_ip,
            });
        }
        tracing::info!(listener = %l.name, protocol = l.protocol.as_str(), %addr, "listener started");
        self.running
            .insert(l.name.clone(), Running { id, cfg: l.clone() });
        Ok(())
    }

    /// The peer filter of listener `l` for worker `w` (with that worker's cluster counters).
    /// Relays are UDP only, so only UDP clusters admit peers (a TCP cluster admits none, as
    /// upstream routes each relay protocol to clusters of that protocol).
    fn filter(&self, view: &view::ConfigView, l: &view::ListenerView, w: usize) -> PeerFilter {
        let mut f = PeerFilter::deny_all();
        f.set_own(self.own_addrs(view));
        for c in view.routed_udp_clusters(l) {
            let eps = c.endpoints.iter().flat_map(|e| match e.dns_name() {
                Some(name) => {
                    let ips = self.dns.get(name).map(Vec::as_slice).unwrap_or_default();
                    ips.iter()
                        .map(|ip| (Endpoint::from_ip(*ip, e.ports), false))
                        .collect()
                }
                None => vec![(e.clone(), true)],
            });
            f.add_cluster_rules(eps.collect::<Vec<_>>(), self.hub.cluster(w, &c.name));
        }
        f
    }

    /// The server's own addresses under `view`: every listener address, the IPs relays bind on.
    fn own_addrs(&self, view: &view::ConfigView) -> OwnAddrs {
        let listeners = view.listener_addrs();
        let mut ips: Vec<IpAddr> = listeners.iter().map(SocketAddr::ip).collect();
        ips.extend(self.opts.stunner_addr.map(|ip| ip.to_canonical()));
        let wildcard = listeners.iter().any(|a| a.ip().is_unspecified());
        OwnAddrs {
            listeners,
            ips,
            any_ip: wildcard && self.opts.stunner_addr.is_none(),
            relays: self.relays.clone(),
        }
    }

    /// Closes every allocation on every worker.
    pub fn close_all(&self) {
        self.broadcast(|_| Command::CloseAll);
    }

    /// Waits until the resolver has new STRICT_DNS answers (then call [`Self::refresh_dns`]).
    pub async fn dns_changed(&mut self) {
        self.resolver.changed().await;
    }

    /// Takes the resolver's latest answers and pushes new filters when an answer changed.
    pub fn refresh_dns(&mut self) {
        let answers = self.resolver.answers();
        if answers == self.dns {
            return;
        }
        tracing::info!(?answers, "cluster endpoints resolved");
        self.dns = answers;
        let Some(view) = &self.config else {
            return;
        };
        for (name, r) in &self.running {
            if let Some(l) = view.listener(name) {
                self.broadcast(|w| Command::SetFilter(r.id, self.filter(view, l, w)));
            }
        }
    }
}

/// A [`ListenerError::Bind`] maker for `map_err`.
fn bind_error(
    transport: &'static str,
    addr: SocketAddr,
) -> impl Fn(std::io::Error) -> ListenerError {
    move |source| ListenerError::Bind {
        transport,
        addr,
        source,
    }
}
