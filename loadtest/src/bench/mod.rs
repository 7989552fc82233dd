//! `loadtest bench`: stunnerd against coturn with identical swarm profiles.
//!
//! ```text
//!  --profile flows (default):
//!  for threads in --threads:           (1 relay thread, then N)
//!    for round in 1..=rounds:          A B A B: each server freshly started per round
//!      for server in [stunnerd, coturn]:
//!        allocations (rate, idle RSS) → fixed rate (steady window: CPU/packet, loss, RTT, RSS)
//!        → max rate 100 B (+ 1.5× overload) → 1000 B
//!  for round in 1..=rounds:            TLS and DTLS (1 relay thread, same self-signed certificate)
//!    for server in [stunnerd, coturn]:
//!      for transport in [TLS, DTLS]: fixed rate (steady window) → max rate 100 B
//!  --profile audio|video:
//!  for threads, round, server: one steady window of N calls (see [`mix`])
//!  rows = median [min-max] over rounds, per-round-pair ratio stunnerd/coturn → markdown + JSON
//! ```
//!
//! The server is pinned to `--server-cpus` and the generator to `--generator-cpus` when the
//! server runs one thread; with more threads the server is left unpinned.

pub mod callgrind;
pub mod measure;
pub mod mix;
pub mod server;
pub mod table;
pub mod window;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::swarm::Transport;
use crate::{Error, Result};
use measure::{GenSettings, Profile};
use mix::{Mix, ProfileName};
use server::{ServerKind, ServerProcess, ServerSpec, TlsFiles};
use table::{RoundResult, Row, SecureResult, SecureRound};
use window::WindowResult;

/// `loadtest bench` flags.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// CI smoke profile: one round, short steps (< 2 minutes).
    #[arg(long, env = "BENCH_QUICK")]
    pub quick: bool,
    /// What to measure: `flows` (50 flows at a fixed rate, max rates, allocations, TLS/DTLS), or
    /// a call mix: `audio` (N × 50 pkt/s × 160 B) or `video` (N × 30 frames/s × 5 × 1,200 B).
    #[arg(long, env = "BENCH_PROFILE", value_enum, default_value = "flows")]
    pub profile: ProfileName,
    /// Allocations of a call mix (default: 1,000 for audio, 100 for video).
    #[arg(long, env = "BENCH_ALLOCATIONS")]
    pub allocations: Option<usize>,
    /// Override a call mix's packets per second per allocation (e.g. `--profile audio
    /// --allocations 50 --packet-rate 200 --size 100` is the flows profile's fixed rate).
    #[arg(long, env = "BENCH_PACKET_RATE")]
    pub packet_rate: Option<f64>,
    /// Override a call mix's payload size (bytes).
    #[arg(long, env = "BENCH_SIZE")]
    pub size: Option<usize>,
    /// Length of a call mix's steady window, seconds (default: 3 with --quick, 10 otherwise); with
    /// `--callgrind`, how long each run sends (default 6).
    #[arg(long, env = "BENCH_WINDOW")]
    pub window: Option<f64>,
    /// The generator's scheduler tick in microseconds: due packets of all allocations are sent
    /// once per tick (smaller: smoother pacing, more generator wake-ups).
    #[arg(long, env = "BENCH_TICK_US", default_value_t = 1000)]
    pub tick_us: u64,
    /// Instead of timing: instructions per relayed packet of each server under valgrind's
    /// callgrind (stunnerd's `callgrind_annotate` summary is kept in the workdir). With
    /// `--profile audio|video`, the call mix's load (lower `--packet-rate` for many allocations:
    /// a server under valgrind is tens of times slower); `--window` sets how long each run sends.
    #[arg(long, env = "BENCH_CALLGRIND")]
    pub callgrind: bool,
    /// Rounds per server (default: 1 with --quick, 3 otherwise).
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
    /// Only the TURN over TLS and DTLS comparison (`flows` profile without its UDP/TCP rows).
    #[arg(long, env = "BENCH_SECURE_ONLY", conflicts_with = "no_secure")]
    pub secure_only: bool,
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

/// A call mix's results for one thread count.
#[derive(Clone, Debug, Serialize)]
pub struct MixReport {
    /// The mix.
    pub mix: Mix,
    /// Warm-up and window (s).
    pub warmup_s: f64,
    /// Window (s).
    pub window_s: f64,
    /// Rows and raw per-round windows.
    #[serde(flatten)]
    pub config: ConfigReport<WindowResult>,
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
    /// Load average after the run.
    pub loadavg_after: String,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// The profile run.
    pub profile_name: ProfileName,
    /// One entry per thread count (`flows`).
    pub configs: Vec<ConfigReport>,
    /// One entry per thread count (`audio`, `video`).
    pub mixes: Vec<MixReport>,
    /// TURN over TLS and DTLS, one relay thread (None with `--no-secure`).
    pub secure: Option<ConfigReport<SecureRound>>,
    /// Instructions per relayed packet (`--callgrind`).
    pub callgrind: Vec<callgrind::CallgrindResult>,
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
        if !self.callgrind.is_empty() {
            s.push_str(&callgrind::markdown(&self.callgrind));
            s.push('\n');
        }
        for m in &self.mixes {
            let what = format!("{}, {:.0} s window, ", m.mix.describe(), m.window_s);
            let c = &m.config;
            s.push_str(&table::markdown(
                &title(c.threads, &c.server_cpus, &what),
                &c.rows,
            ));
            s.push('\n');
        }
        if let Some(c) = &self.secure {
            let t = title(c.threads, &c.server_cpus, "TURN over TLS and DTLS, ");
            s.push_str(&table::markdown(&t, &c.rows));
            s.push('\n');
        }
        let method = if self.callgrind.is_empty() {
            format!(
                "{} round(s) per server alternating, median [min-max], ratio = median [min-max] \
                 of per-round stunnerd/coturn; CPU read over the steady window only; ",
                self.rounds
            )
        } else {
            String::new()
        };
        s.push_str(&format!(
            "coturn {}; {method}loadavg before: {}, after: {}\n",
            self.coturn_version, self.loadavg_before, self.loadavg_after
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

fn run_round(s: &mut ServerProcess, p: &Profile, g: &GenSettings) -> Result<RoundResult> {
    let name = s.kind.name();
    let alloc = measure::allocations(s, p, g)?;
    eprintln!(
        "  {name}: {:.0} alloc/s, {:.0} KiB per 1000 idle allocations",
        alloc.rate_per_s, alloc.rss_kib_per_1000
    );
    let fixed = measure::fixed_rate(s, p, g)?;
    log_window(name, &fixed);
    let rate_100 = measure::max_rate(s, p, g, 100)?;
    let over = rate_100.overload.as_ref().map_or(0.0, |o| o.relayed_pps);
    eprintln!(
        "  {name}: max {:.0} pkt/s at 100 B, {over:.0} pkt/s delivered at 1.5x",
        rate_100.relayed_pps
    );
    let rate_1000 = measure::max_rate(s, p, g, 1000)?;
    eprintln!("  {name}: max {:.0} pkt/s at 1000 B", rate_1000.relayed_pps);
    Ok(RoundResult {
        alloc,
        fixed,
        rate_100,
        rate_1000,
    })
}

fn log_window(name: &str, w: &WindowResult) {
    eprintln!(
        "  {name}: {:.2} CPU-s/Mpkt in the window ({:.2} over the whole run), {:.0} wake-ups \
         per 1000 pkt, waited {:.2} s/s for a CPU, {:.0} pkt/s, loss {:.3}%, RTT p50 {:.0} us p99 {:.0} us, generator {:.2} \
         CPU-s/s",
        w.cpu_s_per_m,
        w.whole_run_cpu_s_per_m,
        w.wakeups_per_kpkt,
        w.server_cpu_wait_per_s,
        w.relayed_pps,
        w.loss_pct,
        w.rtt_p50_us,
        w.rtt_p99_us,
        w.generator_cpu_per_s
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
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
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let threads = match (&args.threads[..], args.quick, args.profile) {
        ([], true, _) | ([], _, ProfileName::Audio | ProfileName::Video) => vec![1],
        ([], false, ProfileName::Flows) => vec![1, 2],
        (t, _, _) => t.to_vec(),
    };
    let workdir = args.workdir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("loadtest-bench-{}", std::process::id()))
    });
    let g = GenSettings {
        cpus: args.generator_cpus.clone(),
        workers: 1,
        transport: Transport::Udp,
        tick: Duration::from_micros(args.tick_us.max(1)),
    };
    let loadavg_before = loadavg();
    let start = Instant::now();
    let run = Run {
        args,
        servers: &servers,
        rounds,
        workdir: &workdir,
        g: &g,
    };
    let (mut configs, mut mixes, mut secure) = (Vec::new(), Vec::new(), None);
    let mut counts = Vec::new();
    let mix = Mix::new(args.profile, args.allocations).map(|m| Mix {
        packet_rate: args.packet_rate.unwrap_or(m.packet_rate),
        size: args.size.unwrap_or(m.size),
        ..m
    });
    match mix {
        _ if args.callgrind => {
            let mut load = mix
                .as_ref()
                .map_or_else(callgrind::Load::flows, callgrind::Load::of_mix);
            if let Some(w) = args.window {
                load.duration_s = w;
            }
            for &kind in &servers {
                eprintln!("[{} under callgrind]", kind.name());
                let spec = spec(args, kind, 1, &[], &workdir, None);
                counts.push(callgrind::measure_server(&spec, &g, &load)?);
            }
        }
        Some(mix) => {
            for &t in &threads {
                mixes.push(run.mix(mix, t)?);
            }
        }
        None => {
            for &t in threads.iter().filter(|_| !args.secure_only) {
                configs.push(run.flows(&profile, t)?);
            }
            if !args.no_secure {
                secure = Some(secure_config(
                    args, &servers, rounds, &profile, &g, &workdir,
                )?);
            }
        }
    }
    Ok(BenchReport {
        quick: args.quick,
        rounds,
        profile,
        generator_cpus: g.cpus,
        coturn_version: server::coturn_version(&args.coturn_bin),
        loadavg_before,
        loadavg_after: loadavg(),
        wall_s: start.elapsed().as_secs_f64(),
        profile_name: args.profile,
        configs,
        mixes,
        secure,
        callgrind: counts,
    })
}

/// What every round of a benchmark run shares.
struct Run<'a> {
    args: &'a BenchArgs,
    servers: &'a [ServerKind],
    rounds: usize,
    workdir: &'a std::path::Path,
    g: &'a GenSettings,
}

impl Run<'_> {
    /// The CPUs a server with `threads` relay threads is pinned to (none when several).
    fn server_cpus(&self, threads: usize) -> Vec<usize> {
        if threads == 1 {
            self.args.server_cpus.clone()
        } else {
            Vec::new()
        }
    }

    /// Alternating rounds of `one` against a freshly started server each.
    fn rounds<R>(
        &self,
        threads: usize,
        label: &str,
        mut one: impl FnMut(&mut ServerProcess) -> Result<R>,
    ) -> Result<BTreeMap<ServerKind, Vec<R>>> {
        let cpus = self.server_cpus(threads);
        let mut raw: BTreeMap<ServerKind, Vec<R>> = BTreeMap::new();
        for round in 1..=self.rounds {
            for &kind in self.servers {
                eprintln!(
                    "[{} {label} threads={threads} round {round}/{}]",
                    kind.name(),
                    self.rounds
                );
                let spec = spec(self.args, kind, threads, &cpus, self.workdir, None);
                let mut server = ServerProcess::start(&spec)?;
                raw.entry(kind).or_default().push(one(&mut server)?);
            }
        }
        Ok(raw)
    }

    fn flows(&self, p: &Profile, threads: usize) -> Result<ConfigReport> {
        let raw = self.rounds(threads, "flows", |s| run_round(s, p, self.g))?;
        Ok(ConfigReport {
            threads,
            server_cpus: self.server_cpus(threads),
            rows: table::rows(p, &raw),
            raw,
        })
    }

    fn mix(&self, mix: Mix, threads: usize) -> Result<MixReport> {
        let quick = self.args.quick;
        let window =
            Duration::from_secs_f64(self.args.window.unwrap_or(if quick { 3.0 } else { 10.0 }));
        let warmup = Duration::from_secs(if quick { 1 } else { 2 });
        let raw = self.rounds(threads, &format!("{:?}", mix.name).to_lowercase(), |s| {
            let w = mix.measure(s, self.g, warmup, window)?;
            log_window(s.kind.name(), &w);
            Ok(w)
        })?;
        Ok(MixReport {
            mix,
            warmup_s: warmup.as_secs_f64(),
            window_s: window.as_secs_f64(),
            config: ConfigReport {
                threads,
                server_cpus: self.server_cpus(threads),
                rows: table::build_rows(mix.metrics(), &raw),
                raw,
            },
        })
    }
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
fn secure_config(
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
                log_window(&format!("{} {transport:?}", kind.name()), &r.fixed);
                eprintln!("  max {:.0} pkt/s", r.rate_100.relayed_pps);
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
