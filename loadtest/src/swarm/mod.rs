//! The swarm: N TURN allocations opened at an arrival rate, each relaying timestamped packets to an
//! echo peer and back, measured end to end.
//!
//! ```text
//!   run() ──spawns──▶ worker thread × W (pinned)         main thread: progress bar / lines
//!                      │ mio Poll: allocation sockets + its own echo peer socket
//!                      │ tick (1 ms): open due allocations, send due packets (sendmmsg per socket)
//!                      │ readable: recvmmsg → TurnClient::handle_input → RTT histogram
//!                      ▼
//!                     WorkerStats ──merge──▶ SwarmReport (JSON / text)
//! ```
//!
//! A worker never allocates per packet: payloads are written into the reused buffers of one
//! `SendBatch`, and received datagrams are parsed in place in one `RecvBatch`. TURN over TLS runs
//! on the same event loop (rustls is sans-IO); TURN over DTLS runs in [`dtls`] workers instead
//! (the `dtls` crate is tokio-only) that feed the same statistics.

mod alloc;
mod dtls;
mod progress;
mod report;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{AuthSpec, DataMode};
use crate::sys::{ffi, procfs};
use crate::tls::{TlsClient, TlsOptions};
use crate::{Error, Result};

pub use progress::{Progress, ProgressMode, watch};
pub use report::{AllocationReport, GeneratorReport, SwarmReport, TrafficReport};
use worker::{Worker, WorkerStats};

/// Smallest payload: 8-byte timestamp, 4-byte magic, 4-byte allocation index.
pub const MIN_PAYLOAD: usize = 16;
/// Largest payload we send (fits a 1500-byte MTU with TURN and IP/UDP headers).
pub const MAX_PAYLOAD: usize = 1400;

/// Transport between the swarm and the TURN server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TURN over UDP.
    Udp,
    /// TURN over TCP (one connection per allocation).
    Tcp,
    /// TURN over TLS over TCP (one connection per allocation, rustls).
    Tls,
    /// TURN over DTLS over UDP (one association per allocation, webrtc-rs `dtls`).
    Dtls,
}

impl Transport {
    /// True for byte streams (TCP, TLS): frames are cut by length, requests are not retransmitted.
    pub fn is_stream(self) -> bool {
        matches!(self, Self::Tcp | Self::Tls)
    }

    /// True when the transport is encrypted (TLS, DTLS).
    pub fn is_secure(self) -> bool {
        matches!(self, Self::Tls | Self::Dtls)
    }
}

/// Everything a swarm run needs.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// The TURN server.
    pub server: SocketAddr,
    /// UDP, TCP, TLS or DTLS to the server.
    pub transport: Transport,
    /// Server authentication over TLS and DTLS (SNI defaults to the server's IP).
    pub tls: TlsOptions,
    /// Credentials for every allocation.
    pub auth: AuthSpec,
    /// Number of allocations.
    pub allocations: usize,
    /// New allocations per second (0 = as fast as possible).
    pub arrival_rate: f64,
    /// Packets per second each allocation sends once ready (0 = idle allocations).
    pub packet_rate: f64,
    /// Payload bytes per packet, [`MIN_PAYLOAD`]..=[`MAX_PAYLOAD`].
    pub packet_size: usize,
    /// Packets sent back to back per send event (a video frame); `packet_rate` stays the
    /// per-allocation packet rate, so events come `packet_rate / burst` times a second.
    pub burst: usize,
    /// How long each allocation sends once ready.
    pub duration: Duration,
    /// Channels (default) or Send indications.
    pub mode: DataMode,
    /// External echo peer; `None` starts one per worker in-process on `peer_bind`.
    pub peer: Option<SocketAddr>,
    /// Where in-process echo peers bind (port 0 = ephemeral).
    pub peer_bind: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// CPUs to pin the workers to (empty = no pinning).
    pub cpus: Vec<usize>,
    /// Requested allocation lifetime (s).
    pub lifetime: u32,
    /// Wait for in-flight packets after the last send before counting losses.
    pub drain: Duration,
    /// Keep the allocations idle (but refreshed) after sending, before deallocating.
    pub hold: Duration,
    /// SO_RCVBUF/SO_SNDBUF of each client socket.
    pub socket_buffer: usize,
    /// Scheduler tick: packets due are sent in batches this often.
    pub tick: Duration,
}

impl SwarmConfig {
    /// A config with sensible defaults for everything but the server and credentials.
    pub fn new(server: SocketAddr, auth: AuthSpec) -> Self {
        Self {
            server,
            transport: Transport::Udp,
            tls: TlsOptions::default(),
            auth,
            allocations: 10,
            arrival_rate: 100.0,
            packet_rate: 50.0,
            packet_size: 100,
            burst: 1,
            duration: Duration::from_secs(5),
            mode: DataMode::Channel,
            peer: None,
            peer_bind: SocketAddr::new(server.ip(), 0),
            workers: 1,
            cpus: Vec::new(),
            lifetime: 600,
            drain: Duration::from_millis(300),
            hold: Duration::ZERO,
            socket_buffer: 1 << 20,
            tick: Duration::from_millis(1),
        }
    }

    /// Checks ranges; the error says which setting is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&self.packet_size) {
            return bad(format!(
                "packet size {} outside {MIN_PAYLOAD}..={MAX_PAYLOAD}",
                self.packet_size
            ));
        }
        if self.allocations == 0 || self.workers == 0 || self.burst == 0 {
            return bad("allocations, workers and burst must be at least 1".into());
        }
        if !(self.packet_rate >= 0.0 && self.arrival_rate >= 0.0) {
            return bad("rates must be non-negative numbers".into());
        }
        if self.tick.is_zero() {
            return bad("tick must be positive".into());
        }
        Ok(())
    }
}

impl SwarmConfig {
    /// How many allocations worker `index` opens (global indexes index, index + workers, ...).
    pub(crate) fn share(&self, index: usize) -> usize {
        (self.allocations + self.workers - 1 - index) / self.workers
    }

    /// Each allocation's send schedule.
    pub(crate) fn pace(&self) -> alloc::Pace {
        alloc::Pace {
            rate: self.packet_rate,
            burst: self.burst,
        }
    }

    /// When the allocation with global index `global` is due (None: at once).
    pub(crate) fn open_at(&self, epoch: Instant, global: usize) -> Option<Instant> {
        (self.arrival_rate > 0.0)
            .then(|| epoch + Duration::from_secs_f64(global as f64 / self.arrival_rate))
    }
}

/// A running swarm: watch `progress`, then `join` for the report.
pub struct SwarmHandle {
    /// Live counters (shared with the workers).
    pub progress: Arc<Progress>,
    threads: Vec<JoinHandle<Result<WorkerStats>>>,
    cfg: SwarmConfig,
    started: Instant,
    cpu_before: Duration,
}

/// Starts the workers and returns at once.
pub fn start(cfg: SwarmConfig) -> Result<SwarmHandle> {
    cfg.validate()?;
    ffi::raise_nofile_limit().map_err(|e| Error::io("raise RLIMIT_NOFILE", e))?;
    let progress = Arc::new(Progress::new(cfg.allocations, cfg.workers));
    let cpu_before = procfs::cpu_time(procfs::Pid::SelfProcess)?;
    let tls = cfg
        .transport
        .is_secure()
        .then(|| TlsClient::new(&cfg.tls, &cfg.server.ip().to_string()).map(Arc::new))
        .transpose()?;
    let started = Instant::now();
    let mut threads = Vec::with_capacity(cfg.workers);
    for index in 0..cfg.workers {
        let job: Box<dyn FnOnce() -> Result<WorkerStats> + Send> = match &tls {
            Some(tls) if cfg.transport == Transport::Dtls => {
                let w = dtls::DtlsWorker::new(&cfg, index, started, progress.clone(), tls.clone())?;
                Box::new(move || w.run())
            }
            _ => {
                let w = Worker::new(&cfg, index, started, progress.clone(), tls.clone())?;
                Box::new(move || w.run())
            }
        };
        let cpus = cfg.cpus.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("swarm-{index}"))
            .spawn(move || {
                if let Err(e) = ffi::pin_current_thread(&cpus) {
                    tracing::warn!(?cpus, error = %e, "cannot pin swarm worker");
                }
                job()
            });
        threads.push(spawned.map_err(|e| Error::io("spawn swarm worker", e))?);
    }
    Ok(SwarmHandle {
        progress,
        threads,
        cfg,
        started,
        cpu_before,
    })
}

impl SwarmHandle {
    /// Waits for every worker and builds the report.
    pub fn join(self) -> Result<SwarmReport> {
        let mut total = WorkerStats::default();
        for t in self.threads {
            let stats = t
                .join()
                .map_err(|_| Error::Turn("swarm worker panicked".into()))??;
            total.merge(stats);
        }
        let cpu = procfs::cpu_time(procfs::Pid::SelfProcess)?.saturating_sub(self.cpu_before);
        Ok(SwarmReport::build(
            &self.cfg,
            &total,
            self.started.elapsed(),
            cpu,
        ))
    }
}

/// Runs a swarm to completion, showing progress as asked.
pub fn run(cfg: SwarmConfig, mode: ProgressMode) -> Result<SwarmReport> {
    let handle = start(cfg)?;
    watch(&handle.progress, mode);
    handle.join()
}
