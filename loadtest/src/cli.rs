//! The `loadtest` command line (clap derive; every flag also settable from the environment) and
//! its dispatch to the library. `main.rs` only parses, initialises tracing and calls [`run`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bench::{self, BenchArgs};
use crate::client::DataMode;
use crate::peer::{self, EchoPeer, PeerCounters};
use crate::swarm::{self, ProgressMode, SwarmConfig};
use crate::tls::TlsArgs;
use crate::uri::{self, AuthKind, TurnUri};
use crate::{Error, Result};

/// Top-level flags.
#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about = "TURN load generator and benchmark (stunnerd vs coturn)"
)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `loadtest=debug`).
    #[arg(long, env = "LOADTEST_LOG", default_value = "warn", global = true)]
    pub log: String,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open many allocations and relay timestamped packets through them.
    Swarm(SwarmArgs),
    /// Run a UDP echo peer.
    Peer(PeerArgs),
    /// The local autoscaling demo: stunnerd fleet + scaler + ramping calls, ours vs a naive policy.
    Demo(crate::demo::DemoArgs),
    /// Benchmark stunnerd against coturn with identical swarm profiles.
    Bench(BenchArgs),
}

/// How to display progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressFlag {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    /// Always a bar.
    Bar,
    /// Always plain lines.
    Lines,
    /// Nothing.
    None,
}

impl ProgressFlag {
    fn mode(self) -> ProgressMode {
        match self {
            Self::Auto => ProgressMode::auto(),
            Self::Bar => ProgressMode::Bar,
            Self::Lines => ProgressMode::Lines,
            Self::None => ProgressMode::Quiet,
        }
    }
}

/// `loadtest swarm` flags.
#[derive(Clone, Debug, Args)]
pub struct SwarmArgs {
    /// TURN server: turn[s]://user:pass@host:port?transport=udp|tcp|tls|dtls (or
    /// turn://secret@host:port).
    #[arg(env = "SWARM_SERVER")]
    pub server: String,
    /// Credential mechanism (default: from the URI).
    #[arg(long, env = "SWARM_AUTH")]
    pub auth: Option<AuthKind>,
    /// Shared secret for ephemeral (TURN REST) credentials.
    #[arg(long, env = "SWARM_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Number of allocations.
    #[arg(short = 'n', long, env = "SWARM_ALLOCATIONS", default_value_t = 10)]
    pub allocations: usize,
    /// New allocations per second (0 = all at once).
    #[arg(long, env = "SWARM_ARRIVAL_RATE", default_value_t = 100.0)]
    pub arrival_rate: f64,
    /// Packets per second per allocation.
    #[arg(short = 'r', long, env = "SWARM_RATE", default_value_t = 50.0)]
    pub rate: f64,
    /// Payload bytes per packet (16..=1400).
    #[arg(short = 's', long, env = "SWARM_SIZE", default_value_t = 100)]
    pub size: usize,
    /// How long each allocation sends (e.g. 10s, 500ms).
    #[arg(short = 'd', long, env = "SWARM_DURATION", default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Use Send indications instead of channels.
    #[arg(long, env = "SWARM_SEND_INDICATIONS")]
    pub send_indications: bool,
    /// External echo peer udp://host:port (default: one in-process per worker).
    #[arg(long, env = "SWARM_PEER")]
    pub peer: Option<String>,
    /// Worker threads.
    #[arg(short = 'w', long, env = "SWARM_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Pin workers to these CPUs (e.g. 0 or 0,1).
    #[arg(long, env = "SWARM_CPUS", value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// Requested allocation lifetime in seconds.
    #[arg(long, env = "SWARM_LIFETIME", default_value_t = 600)]
    pub lifetime: u32,
    /// Keep allocations idle (refreshing them) this long after sending.
    #[arg(long, env = "SWARM_HOLD", default_value = "0s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Print the report as JSON.
    #[arg(long, env = "SWARM_JSON")]
    pub json: bool,
    /// Progress display.
    #[arg(long, env = "SWARM_PROGRESS", value_enum, default_value_t = ProgressFlag::Auto)]
    pub progress: ProgressFlag,
    /// TLS/DTLS server authentication.
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl SwarmArgs {
    /// Builds the swarm configuration (configuration errors are `Error::Config`).
    pub fn to_config(&self) -> Result<SwarmConfig> {
        let u = TurnUri::parse(&self.server)?;
        let server = u.resolve()?;
        let auth = u.auth.clone().into_spec(
            self.auth,
            self.secret.clone(),
            Duration::from_secs(24 * 3600),
        )?;
        let mut cfg = SwarmConfig::new(server, auth);
        cfg.transport = u.transport;
        cfg.tls = self.tls.options(&u.host);
        cfg.allocations = self.allocations;
        cfg.arrival_rate = self.arrival_rate;
        cfg.packet_rate = self.rate;
        cfg.packet_size = self.size;
        cfg.duration = self.duration;
        cfg.mode = if self.send_indications {
            DataMode::Send
        } else {
            DataMode::Channel
        };
        cfg.peer = self.peer.as_deref().map(parse_udp_addr).transpose()?;
        cfg.workers = self.workers;
        cfg.cpus.clone_from(&self.cpus);
        cfg.lifetime = self.lifetime;
        cfg.hold = self.hold;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// `loadtest peer` flags.
#[derive(Clone, Debug, Args)]
pub struct PeerArgs {
    /// Address to listen on.
    #[arg(
        short = 'l',
        long,
        env = "PEER_LISTEN",
        default_value = "127.0.0.1:9999"
    )]
    pub listen: SocketAddr,
    /// Stop after this long (default: until interrupted).
    #[arg(short = 'd', long, env = "PEER_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// Parses `500ms`, `5s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Parses `udp://host:port` (or a bare `host:port`).
pub fn parse_udp_addr(s: &str) -> Result<SocketAddr> {
    let hostport = uri::strip_scheme(s, "udp").unwrap_or(s);
    let bad = || {
        Error::Config(format!(
            "invalid UDP address {s:?} (expected udp://host:port)"
        ))
    };
    std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Swarm(args) => {
            let report = swarm::run(args.to_config()?, args.progress.mode())?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", report.to_text());
            }
            Ok(())
        }
        Command::Peer(args) => run_peer(&args),
        Command::Demo(args) => crate::demo::run_demo(&args),
        Command::Bench(args) => bench::run(&args),
    }
}

fn run_peer(args: &PeerArgs) -> Result<()> {
    let mut p = EchoPeer::bind(args.listen)?;
    eprintln!("echo peer listening on udp://{}", p.local_addr()?);
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(PeerCounters::default());
    let (s, c) = (stop.clone(), counters.clone());
    let thread = std::thread::spawn(move || peer::run_blocking(&mut p, &s, &c));
    let start = Instant::now();
    while args.duration.is_none_or(|d| start.elapsed() < d) && !thread.is_finished() {
        std::thread::sleep(Duration::from_secs(1));
        eprintln!(
            "received={} echoed={}",
            counters.received.load(Ordering::Relaxed),
            counters.echoed.load(Ordering::Relaxed)
        );
    }
    stop.store(true, Ordering::Relaxed);
    thread
        .join()
        .map_err(|_| Error::Turn("echo peer panicked".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn swarm_flags_to_config() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "swarm",
            "turn://u:p@127.0.0.1:3478?transport=tcp",
            "-n",
            "3",
            "--send-indications",
            "--cpus",
            "0,1",
        ])
        .unwrap();
        let Command::Swarm(args) = cli.command else {
            panic!()
        };
        let cfg = args.to_config().unwrap();
        assert_eq!(cfg.allocations, 3);
        assert_eq!(cfg.transport, swarm::Transport::Tcp);
        assert_eq!(cfg.mode, DataMode::Send);
        assert_eq!(cfg.cpus, vec![0, 1]);
        let cli =
            Cli::try_parse_from(["loadtest", "swarm", "turn://u:p@127.0.0.1", "-s", "8"]).unwrap();
        let Command::Swarm(args) = cli.command else {
            panic!()
        };
        assert!(args.to_config().unwrap_err().is_config());
    }
}
