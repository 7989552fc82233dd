//! stunnerd command line: flags (each also settable from the environment), tracing, `run()`.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::{EnvFilter, prelude::*, reload};

/// STUNner dataplane: a TURN server for Kubernetes media gateways.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Flags {
    /// Config origin: a file path, file://path, or the CDS server http(s)://host:port / ws(s)://….
    #[arg(short = 'c', long = "config", env = "STUNNER_CONFIG_ORIGIN")]
    config: Option<String>,
    /// Watch the config origin and apply changes live.
    #[arg(short = 'w', long = "watch", env = "STUNNER_CONFIG_WATCH")]
    watch: bool,
    /// Log level, upstream syntax `all:INFO,turn:DEBUG`; overrides the config's admin.loglevel.
    #[arg(short = 'l', long = "log", env = "STUNNER_LOGLEVEL")]
    log: Option<String>,
    /// SO_REUSEPORT sockets per UDP listener (0 = one per worker thread).
    #[arg(
        long = "udp-thread-num",
        env = "STUNNER_UDP_THREAD_NUM",
        default_value_t = 0
    )]
    udp_thread_num: usize,
    /// Worker threads (0 = number of CPUs).
    #[arg(long = "threads", env = "STUNNER_THREADS", default_value_t = 0)]
    threads: usize,
    /// Dataplane id `namespace/name` for CDS (default: STUNNER_NAMESPACE/STUNNER_NAME).
    #[arg(long = "id", env = "STUNNER_ID")]
    id: Option<String>,
    /// Node name sent to CDS.
    #[arg(long = "node", env = "STUNNER_NODENAME")]
    node: Option<String>,
    /// Pod IP: relay address for listeners bound to 0.0.0.0.
    #[arg(long = "stunner-addr", env = "STUNNER_ADDR")]
    stunner_addr: Option<IpAddr>,
    /// SO_RCVBUF/SO_SNDBUF of listener and relay sockets, bytes (0 = kernel default).
    #[arg(long = "socket-buffer", env = "STUNNER_SOCKET_BUFFER", default_value_t = 4 << 20)]
    socket_buffer: usize,
    /// Seconds a SIGTERM drain waits for allocations to go before exiting anyway.
    #[arg(
        long = "drain-timeout",
        env = "STUNNER_DRAIN_TIMEOUT",
        default_value_t = 3600
    )]
    drain_timeout: u64,
    /// Allocation lifetime granted when the client asks for less, seconds.
    #[arg(
        long = "default-lifetime",
        env = "STUNNER_DEFAULT_LIFETIME",
        default_value_t = 600
    )]
    default_lifetime: u64,
    /// Longest allocation lifetime granted, seconds.
    #[arg(
        long = "max-lifetime",
        env = "STUNNER_MAX_LIFETIME",
        default_value_t = 3600
    )]
    max_lifetime: u64,
    /// Fail /ready while draining (upstream behaviour; cuts live UDP flows in Kubernetes).
    #[arg(long = "drain-fail-readiness", env = "STUNNER_DRAIN_FAIL_READINESS")]
    drain_fail_readiness: bool,
    /// Bearer token required by POST/DELETE /drain (without it they answer loopback only).
    #[arg(
        long = "admin-token",
        env = "STUNNER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let spec = flags
        .log
        .clone()
        .unwrap_or_else(|| proto::config::DEFAULT_LOGLEVEL.to_owned());
    let (filter, handle) = reload::Layer::new(make_filter(&spec));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
        .init();
    let pinned = flags.log.is_some();
    let set_log_level = (!pinned).then(|| {
        Box::new(move |spec: &str| {
            let _ = handle.reload(make_filter(spec));
        }) as stunnerd::LogLevelSetter
    });
    let threads = match flags.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let id = flags.id.or_else(|| {
        let ns = std::env::var("STUNNER_NAMESPACE").ok()?;
        let name = std::env::var("STUNNER_NAME").ok()?;
        Some(format!("{ns}/{name}"))
    });
    let opts = stunnerd::Options {
        config: flags.config,
        watch: flags.watch,
        id,
        node: flags.node,
        threads,
        udp_thread_num: flags.udp_thread_num,
        socket_buffer: flags.socket_buffer,
        stunner_addr: flags.stunner_addr,
        drain_timeout: Duration::from_secs(flags.drain_timeout),
        drain_fail_readiness: flags.drain_fail_readiness,
        default_lifetime: Duration::from_secs(flags.default_lifetime.max(1)),
        max_lifetime: Duration::from_secs(flags.max_lifetime.max(1)),
        admin_token: flags.admin_token.filter(|t| !t.is_empty()),
        set_log_level,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(stunnerd::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(stunnerd::RunError::Config(error)) => {
            tracing::error!(%error, "bad configuration");
            ExitCode::from(64)
        }
        Err(error) => {
            tracing::error!(%error, "stunnerd failed");
            ExitCode::FAILURE
        }
    }
}

fn make_filter(spec: &str) -> EnvFilter {
    EnvFilter::try_new(stunnerd::logging::filter_directives(spec))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}
