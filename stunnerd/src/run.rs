//! The daemon's run loop: load or watch the config, apply it, serve health and metrics, and handle
//! SIGTERM/SIGINT with the graceful drain of docs/ARCHITECTURE.md §4.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::config::StunnerConfig;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::admin::AdminOptions;
use crate::config_source::{self, SourceError, SourceOptions};
use crate::control::Control;
use crate::driver::{Dataplane, DriverOptions};
use crate::engine::Shared;
use crate::limits::{LimitError, Limits};
use crate::metrics::{Metrics, StatsHub};
use crate::servers::HttpServers;

/// How often a drain checks whether it is done.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// Applies a log level given in upstream syntax (`all:INFO`).
pub type LogLevelSetter = Box<dyn Fn(&str) + Send + Sync>;

/// Daemon settings (the command line of `main.rs`).
pub struct Options {
    /// Config origin: file path, `file://`, or a CDS URL. None: wait for nothing, stay not ready.
    pub config: Option<String>,
    /// Watch the origin and apply changes live.
    pub watch: bool,
    /// Dataplane id `namespace/name` (CDS).
    pub id: Option<String>,
    /// Node name (CDS).
    pub node: Option<String>,
    /// Worker threads.
    pub threads: usize,
    /// SO_REUSEPORT sockets per UDP listener.
    pub udp_thread_num: usize,
    /// Socket buffer size in bytes.
    pub socket_buffer: usize,
    /// STUNNER_ADDR (pod IP).
    pub stunner_addr: Option<IpAddr>,
    /// Drain deadline after SIGTERM.
    pub drain_timeout: Duration,
    /// Default allocation lifetime (RFC 8656: 600 s).
    pub default_lifetime: Duration,
    /// Longest allocation lifetime (3600 s).
    pub max_lifetime: Duration,
    /// Fail readiness while draining.
    pub drain_fail_readiness: bool,
    /// Bearer token for the admin endpoints.
    pub admin_token: Option<String>,
    /// Health server address from start-up until a config names one (None: none until then).
    pub bootstrap_health: Option<SocketAddr>,
    /// Called with the config's `admin.loglevel` when it changes (unless the log level is pinned).
    pub set_log_level: Option<LogLevelSetter>,
}

/// Why the daemon stopped with an error. [`RunError::is_bad_configuration`] tells the errors the
/// user fixes in the configuration (exit code 64) from failures to run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config, its origin or the dataplane id is unusable (exit code 64).
    #[error("bad configuration: {0}")]
    Config(SourceError),
    /// A resource limit from the environment (`STUNNER_*`) is malformed (exit code 64).
    #[error("bad configuration: {0}")]
    Limits(#[from] LimitError),
    /// The config could not be obtained: the file is unreadable, the CDS server unreachable or
    /// answering something other than a config.
    #[error("cannot get the config: {0}")]
    Source(SourceError),
    /// The dataplane's worker threads could not start.
    #[error("cannot start the dataplane: {0}")]
    Dataplane(#[source] std::io::Error),
    /// The SIGTERM/SIGINT handlers could not be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

impl RunError {
    /// Whether the user has to fix the configuration (exit code 64, `EX_USAGE`), rather than
    /// something that may work on a retry (exit code 1).
    pub fn is_bad_configuration(&self) -> bool {
        matches!(self, Self::Config(_) | Self::Limits(_))
    }
}

impl From<SourceError> for RunError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Config(_)
            | SourceError::InvalidOrigin { .. }
            | SourceError::MissingId(_) => Self::Config(e),
            SourceError::Io { .. } | SourceError::Server(_) => Self::Source(e),
        }
    }
}

/// Runs the daemon until a signal-initiated drain completes.
pub async fn run(opts: Options) -> Result<(), RunError> {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let shared = Arc::new(Shared::new(Instant::now(), unix, rand::random()));
    let threads = opts.threads.max(1);
    let hub = Arc::new(StatsHub::new(threads));
    let control = Arc::new(Control::new(
        shared.clone(),
        opts.drain_timeout,
        opts.drain_fail_readiness,
    ));
    let registry = Arc::new(Metrics::registry(
        shared.clone(),
        hub.clone(),
        control.draining_flag(),
    ));
    let limits = Limits::from_env()?;
    let driver = DriverOptions {
        threads,
        udp_sockets: if opts.udp_thread_num == 0 {
            threads
        } else {
            opts.udp_thread_num
        },
        socket_buffer: opts.socket_buffer,
        stunner_addr: opts.stunner_addr,
        software: limits.software.clone(),
        default_lifetime: opts.default_lifetime,
        max_lifetime: opts.max_lifetime,
        limits,
    };
    let dataplane = Dataplane::start(driver, shared.clone(), hub).map_err(RunError::Dataplane)?;
    let admin_opts = AdminOptions {
        admin_token: opts.admin_token.clone(),
    };
    let mut servers = HttpServers::new(control.clone(), admin_opts, registry);
    // Health first, as upstream (which boots from its zero config): `/live` answers while the
    // first config is still awaited, `/ready` fails until one is applied. The first config
    // moves the server if its `healthcheck_endpoint` says so.
    servers.health_at(opts.bootstrap_health).await;
    let configs = config_stream(&opts).await?;
    let mut lp = Loop {
        opts,
        shared,
        control,
        dataplane,
        servers,
        loglevel: None,
    };
    lp.run(configs).await
}

/// The config channel: a watch, or a one-shot load delivered through a channel.
async fn config_stream(opts: &Options) -> Result<Option<mpsc::Receiver<StunnerConfig>>, RunError> {
    let Some(origin) = opts.config.clone() else {
        tracing::warn!("no config origin (-c/--config or STUNNER_CONFIG_ORIGIN): not ready");
        return Ok(None);
    };
    let source = SourceOptions::from_identity(opts.id.clone(), opts.node.clone());
    if opts.watch {
        let rx = config_source::watch(&origin, source)?;
        return Ok(Some(rx));
    }
    let cfg = config_source::load(&origin, &source).await?;
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.send(cfg).await;
    // Keep the sender alive so the loop does not see a closed channel.
    std::mem::forget(tx);
    Ok(Some(rx))
}

struct Loop {
    opts: Options,
    shared: Arc<Shared>,
    control: Arc<Control>,
    dataplane: Dataplane,
    servers: HttpServers,
    loglevel: Option<String>,
}

impl Loop {
    async fn run(
        &mut self,
        mut configs: Option<mpsc::Receiver<StunnerConfig>>,
    ) -> Result<(), RunError> {
        let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signal)?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signal)?;
        let mut drain_poll = tokio::time::interval(DRAIN_POLL);
        loop {
            tokio::select! {
                cfg = recv(&mut configs) => match cfg {
                    Some(cfg) => self.apply(cfg).await,
                    None => configs = None,
                },
                _ = sigterm.recv() => if self.signal("SIGTERM") { return Ok(()) },
                _ = sigint.recv() => if self.signal("SIGINT") { return Ok(()) },
                _ = drain_poll.tick() => if self.drain_step() { return Ok(()) },
                () = self.dataplane.dns_changed() => self.dataplane.refresh_dns(),
            }
        }
    }

    async fn apply(&mut self, cfg: StunnerConfig) {
        let name = cfg.admin.name.clone();
        for (listener, cluster) in cfg.dangling_routes() {
            tracing::warn!(%listener, %cluster, "route to an unknown cluster");
        }
        if self.loglevel.as_deref() != Some(cfg.admin.loglevel.as_str()) {
            if let Some(set) = &self.opts.set_log_level {
                set(&cfg.admin.loglevel);
            }
            self.loglevel = Some(cfg.admin.loglevel.clone());
        }
        self.servers.follow(&cfg).await;
        match self.dataplane.apply(cfg.clone()) {
            Ok(()) => {
                tracing::info!(config = %name, listeners = cfg.listeners.len(), "config applied")
            }
            Err(errors) => {
                for error in &errors {
                    tracing::error!(%error, "config not fully applied");
                }
            }
        }
        if let Some(applied) = self.dataplane.config() {
            self.control.set_config(applied.clone());
        }
    }

    /// A termination signal: the first starts (or converts into) an exiting drain, the second
    /// exits at once. Returns true to exit.
    fn signal(&mut self, name: &str) -> bool {
        if self.control.drain().is_some_and(|d| d.exit) {
            let left = self.shared.active_allocations().max(0) as u64;
            self.shared.record_dropped(left);
            tracing::warn!(signal = name, dropped = left, "second signal: exiting now");
            self.control.set_terminating();
            return true;
        }
        let (d, _) = self.control.begin_drain(None, true);
        let left = self.shared.active_allocations();
        tracing::info!(
            signal = name,
            allocations = left,
            deadline_unix = d.deadline_unix,
            "draining: existing allocations keep relaying, new ones are refused"
        );
        false
    }

    /// Checks a running drain; true to exit.
    fn drain_step(&mut self) -> bool {
        let Some(d) = self.control.drain() else {
            return false;
        };
        let left = self.shared.active_allocations().max(0) as u64;
        if d.exit && left == 0 {
            tracing::info!("drain complete: no allocations left, exiting");
            self.control.set_terminating();
            return true;
        }
        if Instant::now() < d.deadline {
            return false;
        }
        if d.exit {
            self.shared.record_dropped(left);
            tracing::warn!(
                dropped = left,
                "drain deadline reached: exiting, dropping allocations"
            );
            self.control.set_terminating();
            return true;
        }
        if left > 0 {
            self.shared.record_dropped(left);
            tracing::warn!(
                dropped = left,
                "admin drain deadline reached: closing allocations"
            );
            self.dataplane.close_all();
        }
        false
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<StunnerConfig>>) -> Option<StunnerConfig> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configuration_errors_are_bad_configuration() {
        let origin = config_source::Origin::parse("ftp://x").unwrap_err();
        assert!(RunError::from(origin).is_bad_configuration());
        assert!(RunError::from(SourceError::MissingId(String::new())).is_bad_configuration());
        let io = SourceError::Io {
            context: "connecting to the CDS server".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        };
        assert!(!RunError::from(io).is_bad_configuration());
        assert!(!RunError::from(SourceError::Server("HTTP 503".into())).is_bad_configuration());
        let sig = RunError::Signal(std::io::ErrorKind::Other.into());
        assert!(!sig.is_bad_configuration());
    }
}
