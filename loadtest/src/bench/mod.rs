//! `loadtest bench`: stunnerd against coturn with identical swarm profiles.
//!
//! ```text
//!  for threads in --threads:           (1 relay thread, then N)
//!    for round in 1..=rounds:          A B A B: each server freshly started per round
//!      for server in [stunnerd, coturn]:
//!        allocations (rate, idle RSS) → fixed rate (CPU/packet, RTT) → max rate 100 B → 1000 B
//!  for round in 1..=rounds:            TLS and DTLS (1 relay thread, same self-signed certificate)
//!    for server in [stunnerd, coturn]:
//!      for transport in [TLS, DTLS]: fixed rate (CPU/packet, RTT) → max rate 100 B
//!  rows = median over rounds, ratio stunnerd/coturn → markdown tables + JSON
//! ```
//!
//! The server is pinned to `--server-cpus` and the generator to `--generator-cpus` when the
//! server runs one thread; with more threads the server is left unpinned.

pub mod measure;
pub mod server;
pub mod table;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::swarm::Transport;
use crate::{Error, Result};
use measure::{GenSettings, Profile};
use server::{ServerKind, ServerProcess, ServerSpec, TlsFiles};
use table::{RoundResult, Row, SecureResult, SecureRound};

/// `loadtest bench` flags.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// CI smoke profile: one round, short steps (< 2 minutes).
    #[arg(long, env = "BENCH_QUICK")]
    pub quick: bool,
    /// Rounds per server (default: 1 with --quick, 2 otherwise).
    #[arg(long, env = "BENCH_ROUNDS")]
    pub rounds: Option<usize>,
    /// Relay thread counts to benchmark (default: 1 with --quick, 1,2 otherwise).
    #[arg(long, env = "BENCH_THREADS", value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Servers to run.
    #[arg(
        long,
        env = "BENCH_SERVERS",
        value_delimiter = ',',
        default_value = "stunnerd,coturn"
    )]
    pub servers: Vec<String>,
    /// CPUs for a single-threaded server.
    #[arg(
        long,
        env = "BENCH_SERVER_CPUS",
        value_delimiter = ',',
        default_value = "1"
    )]
    pub server_cpus: Vec<usize>,
    /// CPUs for the load generator.
    #[arg(
        long,
        env = "BENCH_GENERATOR_CPUS",
        value_delimiter = ',',
        default_value = "0"
    )]
    pub generator_cpus: Vec<usize>,
    /// The stunnerd binary (default: `stunnerd` next to this executable, or one directory up).
    #[arg(long, env = "STUNNERD_BIN")]
    pub stunnerd_bin: Option<PathBuf>,
    /// The coturn binary.
    #[arg(long, env = "COTURN_BIN", default_value = "/usr/bin/turnserver")]
    pub coturn_bin: PathBuf,
    /// Where configs and server logs go (default: a fresh directory under the temp dir).
    #[arg(long, env = "BENCH_WORKDIR")]
    pub workdir: Option<PathBuf>,
    /// Also write the JSON report to this file.
    #[arg(long, env = "BENCH_JSON")]
    pub json: Option<PathBuf>,
    /// Skip the TURN over TLS and DTLS comparison.
    #[arg(long, env = "BENCH_NO_SECURE")]
    pub no_secure: bool,
}

/// Results for one thread count (`R`: the per-round results: UDP/TCP or TLS/DTLS).
#[derive(Clone, Debug, Serialize)]
pub struct ConfigReport<R = RoundResult> {
    /// Relay threads of both servers.
    pub threads: usize,
    /// CPUs the servers were pinned to (empty: unpinned).
    pub server_cpus: Vec<usize>,
    /// Comparison rows.
    pub rows: Vec<Row>,
    /// Raw per-round results.
    pub raw: BTreeMap<ServerKind, Vec<R>>,
}

/// The whole benchmark report.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Quick (CI) profile or full.
    pub quick: bool,
    /// Rounds per server.
    pub rounds: usize,
    /// Sizes and durations used.
    pub profile: Profile,
    /// CPUs of the generator.
    pub generator_cpus: Vec<usize>,
    /// `turnserver --version`.
    pub coturn_version: String,
    /// Load average before the run (the machine may be shared).
    pub loadavg_before: String,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// One entry per thread count.
    pub configs: Vec<ConfigReport>,
    /// TURN over TLS and DTLS, one relay thread (None with `--no-secure`).
    pub secure: Option<ConfigReport<SecureRound>>,
}

impl BenchReport {
    /// The markdown tables.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let title = |threads: usize, cpus: &[usize], what: &str| {
            let pin = if cpus.is_empty() {
                "server unpinned".to_owned()
            } else {
                format!("server on CPU {cpus:?}")
            };
            format!(
                "{what}{threads} relay thread(s), {pin}, generator on CPU {:?}",
                self.generator_cpus
            )
        };
        for c in &self.configs {
            s.push_str(&table::markdown(
                &title(c.threads, &c.server_cpus, ""),
                &c.rows,
            ));
            s.push('\n');
        }
        if let Some(c) = &self.secure {
            let t = title(c.threads, &c.server_cpus, "TURN over TLS and DTLS, ");
            s.push_str(&table::markdown(&t, &c.rows));
            s.push('\n');
        }
        s.push_str(&format!(
            "coturn {}; {} round(s) per server, medians; loadavg before: {}\n",
            self.coturn_version, self.rounds, self.loadavg_before
        ));
        s
    }
}

/// Finds stunnerd next to the running executable (or its parent, for test binaries in deps/).
pub fn default_stunnerd_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let here = dir.join("stunnerd");
    if here.exists() {
        return here;
    }
    dir.parent().map_or(here, |p| p.join("stunnerd"))
}

fn parse_servers(names: &[String]) -> Result<Vec<ServerKind>> {
    names
        .iter()
        .map(|n| match n.trim() {
            "stunnerd" => Ok(ServerKind::Stunnerd),
            "coturn" => Ok(ServerKind::Coturn),
            other => Err(Error::Config(format!(
                "unknown server {other:?} (stunnerd, coturn)"
            ))),
        })
        .collect()
}

fn run_round(spec: &ServerSpec, p: &Profile, g: &GenSettings) -> Result<RoundResult> {
    let mut s = ServerProcess::start(spec)?;
    let name = spec.kind.name();
    let alloc = measure::allocations(&mut s, p, g)?;
    eprintln!(
        "  {name}: {:.0} alloc/s, {:.0} KiB per 1000 idle allocations",
        alloc.rate_per_s, alloc.rss_kib_per_1000
    );
    let fixed = measure::fixed_rate(&mut s, p, g)?;
    eprintln!(
        "  {name}: {:.0} pkt/CPU-s, RTT p50 {:.0} us p99 {:.0} us",
        fixed.pkts_per_cpu_s, fixed.rtt_p50_us, fixed.rtt_p99_us
    );
    let rate_100 = measure::max_rate(&mut s, p, g, 100)?;
    eprintln!("  {name}: max {:.0} pkt/s at 100 B", rate_100.relayed_pps);
    let rate_1000 = measure::max_rate(&mut s, p, g, 1000)?;
    eprintln!("  {name}: max {:.0} pkt/s at 1000 B", rate_1000.relayed_pps);
    Ok(RoundResult {
        alloc,
        fixed,
        rate_100,
        rate_1000,
    })
}

/// Runs the benchmark and prints the table (and JSON).
pub fn run(args: &BenchArgs) -> Result<()> {
    let report = bench(args)?;
    println!("{}", report.markdown());
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::Turn(format!("serialize report: {e}")))?;
    match &args.json {
        Some(path) => std::fs::write(path, &json).map_err(|e| Error::io(path.display(), e))?,
        None => println!("```json\n{json}\n```"),
    }
    Ok(())
}

/// Runs the benchmark and returns the report.
pub fn bench(args: &BenchArgs) -> Result<BenchReport> {
    let servers = parse_servers(&args.servers)?;
    let profile = if args.quick {
        Profile::quick()
    } else {
        Profile::full()
    };
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 2 }).max(1);
    let threads = match (&args.threads[..], args.quick) {
        ([], true) => vec![1],
        ([], false) => vec![1, 2],
        (t, _) => t.to_vec(),
    };
    let workdir = args.workdir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("loadtest-bench-{}", std::process::id()))
    });
    let g = GenSettings {
        cpus: args.generator_cpus.clone(),
        workers: 1,
        transport: Transport::Udp,
    };
    let loadavg_before = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let start = Instant::now();
    let mut configs = Vec::new();
    for &t in &threads {
        let server_cpus = if t == 1 {
            args.server_cpus.clone()
        } else {
            Vec::new()
        };
        let mut raw: BTreeMap<ServerKind, Vec<RoundResult>> = BTreeMap::new();
        for round in 1..=rounds {
            for &kind in &servers {
                eprintln!("[{} threads={t} round {round}/{rounds}]", kind.name());
                let spec = spec(args, kind, t, &server_cpus, &workdir, None);
                raw.entry(kind)
                    .or_default()
                    .push(run_round(&spec, &profile, &g)?);
            }
        }
        let rows = table::rows(&profile, &raw);
        configs.push(ConfigReport {
            threads: t,
            server_cpus,
            rows,
            raw,
        });
    }
    let secure = if args.no_secure {
        None
    } else {
        Some(secure(args, &servers, rounds, &profile, &g, &workdir)?)
    };
    Ok(BenchReport {
        quick: args.quick,
        rounds,
        profile,
        generator_cpus: g.cpus,
        coturn_version: server::coturn_version(&args.coturn_bin),
        loadavg_before,
        wall_s: start.elapsed().as_secs_f64(),
        configs,
        secure,
    })
}

fn spec(
    args: &BenchArgs,
    kind: ServerKind,
    threads: usize,
    cpus: &[usize],
    workdir: &std::path::Path,
    tls: Option<TlsFiles>,
) -> ServerSpec {
    ServerSpec {
        kind,
        threads,
        cpus: cpus.to_vec(),
        stunnerd_bin: args
            .stunnerd_bin
            .clone()
            .unwrap_or_else(default_stunnerd_bin),
        coturn_bin: args.coturn_bin.clone(),
        workdir: workdir.to_path_buf(),
        tls,
    }
}

/// The TLS/DTLS comparison: one relay thread, both servers with the same self-signed certificate.
fn secure(
    args: &BenchArgs,
    servers: &[ServerKind],
    rounds: usize,
    p: &Profile,
    g: &GenSettings,
    workdir: &std::path::Path,
) -> Result<ConfigReport<SecureRound>> {
    let files = TlsFiles::self_signed(workdir)?;
    let mut raw: BTreeMap<ServerKind, Vec<SecureRound>> = BTreeMap::new();
    for round in 1..=rounds {
        for &kind in servers {
            eprintln!("[{} TLS/DTLS round {round}/{rounds}]", kind.name());
            let spec = spec(
                args,
                kind,
                1,
                &args.server_cpus,
                workdir,
                Some(files.clone()),
            );
            let mut server = ServerProcess::start(&spec)?;
            let mut result = SecureRound::default();
            for transport in [Transport::Tls, Transport::Dtls] {
                let g = GenSettings {
                    transport,
                    ..g.clone()
                };
                let r = secure_round(&mut server, p, &g)?;
                eprintln!(
                    "  {} {transport:?}: {:.0} pkt/CPU-s, RTT p50 {:.0} us p99 {:.0} us, max {:.0} pkt/s",
                    kind.name(),
                    r.fixed.pkts_per_cpu_s,
                    r.fixed.rtt_p50_us,
                    r.fixed.rtt_p99_us,
                    r.rate_100.relayed_pps
                );
                match transport {
                    Transport::Dtls => result.dtls = r,
                    _ => result.tls = r,
                }
            }
            raw.entry(kind).or_default().push(result);
        }
    }
    Ok(ConfigReport {
        threads: 1,
        server_cpus: args.server_cpus.clone(),
        rows: table::secure_rows(p, &raw),
        raw,
    })
}

fn secure_round(server: &mut ServerProcess, p: &Profile, g: &GenSettings) -> Result<SecureResult> {
    Ok(SecureResult {
        fixed: measure::fixed_rate(server, p, g)?,
        rate_100: measure::max_rate(server, p, g, 100)?,
    })
}
