//! The steady-traffic window: server CPU, generator CPU and packet counts read over a window in
//! which every allocation is open and sending, nothing else.
//!
//! ```text
//!  start swarm (long duration) ─▶ all allocations ready/failed ─▶ warm-up
//!    ─▶ snapshot A ── window ──▶ snapshot B, RSS ─▶ request_stop ─▶ drain, close, join
//!  per packet = (B − A) server CPU / ((B − A) relayed): no Allocate/Refresh/dealloc, no drain,
//!  no idle wake-ups of the close phase
//! ```
//!
//! The whole-run figure (server CPU from before the swarm started to after it joined, over every
//! packet relayed) is kept next to it: it is what `bench` measured before, and the difference
//! between the two is part of the report.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::server::ServerProcess;
use crate::swarm::{self, Progress, SwarmConfig, SwarmReport};
use crate::sys::procfs::{self, Pid};
use crate::{Error, Result};

/// How long to wait, how long to warm up, and how long to measure.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WindowPlan {
    /// After every allocation is ready, traffic runs this long before the window opens.
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// Give up waiting for the allocations after this long (the window then opens anyway, with
    /// whatever is ready; `ready` in the result says how many).
    pub settle_timeout: Duration,
}

/// Counters read at one instant.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    at: Instant,
    server_cpu: Duration,
    server_wakeups: u64,
    server_wait: Duration,
    generator_cpu: Duration,
    sent: u64,
    received: u64,
    peer_received: u64,
}

impl Snapshot {
    fn take(server: &ServerProcess, p: &Progress) -> Result<Self> {
        let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Ok(Self {
            at: Instant::now(),
            server_cpu: server.cpu_time_precise()?,
            server_wakeups: server.wakeups()?,
            server_wait: server.run_queue_wait(),
            generator_cpu: procfs::cpu_time_precise(Pid::SelfProcess)?,
            sent: g(&p.sent),
            received: g(&p.received),
            peer_received: g(&p.peer_received),
        })
    }
}

/// What one steady window measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WindowResult {
    /// Allocations ready (of those requested).
    pub ready: u64,
    /// Allocations that failed.
    pub failed: u64,
    /// Window length (s).
    pub window_s: f64,
    /// Round trips per second asked of the swarm (allocations × packet rate).
    pub offered_pps: f64,
    /// Round trips per second the clients sent in the window.
    pub sent_pps: f64,
    /// The generator sent less than 90 % of the offered rate: it, not the server, was the limit
    /// (and packets it failed to read back count as lost, inflating CPU per relayed packet).
    pub generator_limited: bool,
    /// Packets relayed in the window, both directions (echo peer received + clients received).
    pub relayed: u64,
    /// Relayed packets per second in the window.
    pub relayed_pps: f64,
    /// Server CPU seconds in the window.
    pub server_cpu_s: f64,
    /// Server CPU-seconds per million relayed packets, in the window.
    pub cpu_s_per_m: f64,
    /// Server wake-ups (voluntary context switches) per 1,000 relayed packets in the window:
    /// 1,000 means one wake-up per packet, no batching at all.
    pub wakeups_per_kpkt: f64,
    /// Seconds per wall-second the server was runnable but waited for a CPU: above a few
    /// hundredths the machine, not the server, limited it (other jobs on its core).
    pub server_cpu_wait_per_s: f64,
    /// The old method: server CPU from before the swarm to after it joined, per million packets
    /// relayed over the whole run.
    pub whole_run_cpu_s_per_m: f64,
    /// Generator CPU-seconds per wall-second in the window (1.0 = one core busy).
    pub generator_cpu_per_s: f64,
    /// Round-trip loss in the window (%): 1 − received/sent.
    pub loss_pct: f64,
    /// RTT median over the whole run (µs).
    pub rtt_p50_us: f64,
    /// RTT 99th percentile (µs).
    pub rtt_p99_us: f64,
    /// RTT 99.9th percentile (µs).
    pub rtt_p999_us: f64,
    /// Server resident memory at the end of the window (KiB).
    pub rss_kib: f64,
}

fn per_s(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Runs `cfg` against `server` and measures its steady window (`cfg.duration` is overridden: the
/// swarm sends until the window is over).
pub fn measure(
    server: &mut ServerProcess,
    mut cfg: SwarmConfig,
    plan: &WindowPlan,
) -> Result<WindowResult> {
    cfg.duration = plan.settle_timeout + plan.warmup + plan.window + Duration::from_secs(30);
    let offered = cfg.allocations as f64 * cfg.packet_rate;
    let cpu_before = server.cpu_time_precise()?;
    let handle = swarm::start(cfg)?;
    let measured = measure_running(server, &handle.progress, plan);
    handle.progress.request_stop();
    let report = handle.join()?;
    let (a, b, rss) = measured?;
    let whole_cpu = server.cpu_time_precise()?.saturating_sub(cpu_before);
    server.check_alive()?;
    let mut w = result(&report, a, b, rss, whole_cpu);
    w.offered_pps = offered;
    w.generator_limited = w.sent_pps < 0.9 * offered;
    Ok(w)
}

/// Waits for the allocations and the warm-up, then takes the two snapshots and the RSS.
fn measure_running(
    server: &mut ServerProcess,
    p: &Progress,
    plan: &WindowPlan,
) -> Result<(Snapshot, Snapshot, u64)> {
    let deadline = Instant::now() + plan.settle_timeout;
    while !p.all_settled() && !p.all_done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        server.check_alive()?;
    }
    std::thread::sleep(plan.warmup);
    let a = Snapshot::take(server, p)?;
    std::thread::sleep(plan.window);
    let b = Snapshot::take(server, p)?;
    let rss = server.rss()?;
    if p.all_done() {
        return Err(Error::Config(
            "the swarm ended before the measurement window closed".into(),
        ));
    }
    Ok((a, b, rss))
}

fn result(
    r: &SwarmReport,
    a: Snapshot,
    b: Snapshot,
    rss: u64,
    whole_cpu: Duration,
) -> WindowResult {
    let wall = b.at - a.at;
    let sent = b.sent - a.sent;
    let received = b.received - a.received;
    let relayed = (b.peer_received - a.peer_received) + received;
    let cpu = b.server_cpu.saturating_sub(a.server_cpu).as_secs_f64();
    let whole_relayed = r.traffic.peer_received.unwrap_or(r.traffic.received) + r.traffic.received;
    let per_m = |cpu: f64, n: u64| if n == 0 { 0.0 } else { cpu * 1e6 / n as f64 };
    WindowResult {
        ready: r.allocations.ready,
        failed: r.allocations.failed,
        window_s: wall.as_secs_f64(),
        offered_pps: 0.0,
        generator_limited: false,
        sent_pps: per_s(sent, wall),
        relayed,
        relayed_pps: per_s(relayed, wall),
        server_cpu_s: cpu,
        cpu_s_per_m: per_m(cpu, relayed),
        server_cpu_wait_per_s: b.server_wait.saturating_sub(a.server_wait).as_secs_f64()
            / wall.as_secs_f64().max(1e-9),
        wakeups_per_kpkt: per_m(
            b.server_wakeups.saturating_sub(a.server_wakeups) as f64,
            relayed,
        ) / 1000.0,
        whole_run_cpu_s_per_m: per_m(whole_cpu.as_secs_f64(), whole_relayed),
        generator_cpu_per_s: b
            .generator_cpu
            .saturating_sub(a.generator_cpu)
            .as_secs_f64()
            / wall.as_secs_f64().max(1e-9),
        loss_pct: if sent == 0 {
            0.0
        } else {
            100.0 * sent.saturating_sub(received) as f64 / sent as f64
        },
        rtt_p50_us: r.rtt.p50_us,
        rtt_p99_us: r.rtt.p99_us,
        rtt_p999_us: r.rtt.p999_us,
        rss_kib: rss as f64 / 1024.0,
    }
}
