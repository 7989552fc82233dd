//! The benchmark's measurements against one running server: allocation rate and idle RSS, CPU
//! per relayed packet and RTT at a fixed rate, and the maximum relay rate at ≤ 0.1% loss.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::server::{PASS, ServerProcess, USER};
use crate::client::{AuthSpec, Credentials};
use crate::swarm::{self, SwarmConfig, SwarmReport, Transport};
use crate::{Error, Result};

/// Loss allowed at the "max relay rate" (percent).
pub const MAX_LOSS_PCT: f64 = 0.1;

/// Sizes and durations of the measurements.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// Allocations opened for the allocation-rate / RSS measurement.
    pub idle_allocations: usize,
    /// Offered allocation arrival rate (the cap) per second.
    pub arrival_cap: f64,
    /// Allocations in the rate measurements.
    pub flows: usize,
    /// Round trips per second (all flows) at the fixed moderate rate.
    pub fixed_rate: f64,
    /// Duration of the fixed-rate run.
    pub fixed_duration: Duration,
    /// Duration of each step of the max-rate search.
    pub step_duration: Duration,
    /// First offered rate of the search (round trips per second).
    pub start_rate: f64,
    /// Multiplier while ramping up.
    pub factor: f64,
    /// Bisection steps after the first failing rate.
    pub bisect_steps: usize,
    /// Highest offered rate tried.
    pub max_rate: f64,
}

impl Profile {
    /// The CI smoke profile (the whole bench < 2 minutes).
    pub fn quick() -> Self {
        Self {
            idle_allocations: 500,
            arrival_cap: 5000.0,
            flows: 20,
            fixed_rate: 5000.0,
            fixed_duration: Duration::from_secs(2),
            step_duration: Duration::from_millis(1000),
            start_rate: 10_000.0,
            factor: 2.0,
            bisect_steps: 1,
            max_rate: 200_000.0,
        }
    }

    /// The documented full run.
    pub fn full() -> Self {
        Self {
            idle_allocations: 5000,
            arrival_cap: 20_000.0,
            flows: 50,
            fixed_rate: 10_000.0,
            fixed_duration: Duration::from_secs(5),
            step_duration: Duration::from_secs(2),
            start_rate: 10_000.0,
            factor: 1.5,
            bisect_steps: 3,
            max_rate: 400_000.0,
        }
    }
}

/// Common swarm settings of the bench.
#[derive(Clone, Debug)]
pub struct GenSettings {
    /// CPUs for the generator workers.
    pub cpus: Vec<usize>,
    /// Generator worker threads.
    pub workers: usize,
    /// Transport to the server (TLS and DTLS accept the bench's self-signed certificate).
    pub transport: Transport,
}

fn swarm_cfg(
    server: &ServerProcess,
    g: &GenSettings,
    flows: usize,
    total_rate: f64,
    size: usize,
    duration: Duration,
) -> SwarmConfig {
    let auth = AuthSpec::Static(Credentials {
        username: USER.into(),
        password: PASS.into(),
    });
    let mut cfg = SwarmConfig::new(server.addr_for(g.transport), auth);
    cfg.transport = g.transport;
    cfg.tls.insecure = true;
    cfg.allocations = flows;
    cfg.arrival_rate = 2000.0;
    cfg.packet_rate = total_rate / flows as f64;
    cfg.packet_size = size;
    cfg.duration = duration;
    cfg.cpus.clone_from(&g.cpus);
    cfg.workers = g.workers;
    cfg.socket_buffer = 4 << 20;
    cfg
}

/// Allocation rate and memory per idle allocation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AllocResult {
    /// Ready allocations per second.
    pub rate_per_s: f64,
    /// Allocations that failed.
    pub failed: u64,
    /// Allocations ready while RSS was read.
    pub ready: u64,
    /// Server RSS growth per 1,000 idle allocations, KiB.
    pub rss_kib_per_1000: f64,
    /// Allocate latency p99 (µs).
    pub latency_p99_us: f64,
}

/// Opens `idle_allocations` at up to `arrival_cap`/s, reads the server's RSS while they are idle.
pub fn allocations(
    server: &mut ServerProcess,
    p: &Profile,
    g: &GenSettings,
) -> Result<AllocResult> {
    let base = server.rss()?;
    let mut cfg = swarm_cfg(server, g, p.idle_allocations, 0.0, 100, Duration::ZERO);
    cfg.arrival_rate = p.arrival_cap;
    cfg.hold = Duration::from_millis(800);
    cfg.drain = Duration::from_millis(100);
    let handle = swarm::start(cfg)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !handle.progress.all_holding() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Give the server a moment to finish its own bookkeeping before reading RSS.
    std::thread::sleep(Duration::from_millis(200));
    let held = server.rss()?;
    let report = handle.join()?;
    server.check_alive()?;
    let ready = report.allocations.ready;
    let delta_kib = held.saturating_sub(base) as f64 / 1024.0;
    Ok(AllocResult {
        rate_per_s: report.allocations.rate_per_s,
        failed: report.allocations.failed,
        ready,
        rss_kib_per_1000: if ready == 0 {
            0.0
        } else {
            delta_kib * 1000.0 / ready as f64
        },
        latency_p99_us: report.allocations.latency.p99_us,
    })
}

/// CPU cost and RTT at a fixed moderate rate.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FixedResult {
    /// Offered round trips per second.
    pub offered_rt_per_s: f64,
    /// Packets relayed (both directions).
    pub relayed: u64,
    /// Server CPU seconds used during the run.
    pub server_cpu_s: f64,
    /// Relayed packets per server CPU-second.
    pub pkts_per_cpu_s: f64,
    /// RTT median (µs).
    pub rtt_p50_us: f64,
    /// RTT 99th percentile (µs).
    pub rtt_p99_us: f64,
    /// Round-trip loss (%).
    pub loss_pct: f64,
}

/// Runs the fixed-rate profile and reads the server's CPU time around it.
pub fn fixed_rate(server: &mut ServerProcess, p: &Profile, g: &GenSettings) -> Result<FixedResult> {
    let cfg = swarm_cfg(server, g, p.flows, p.fixed_rate, 100, p.fixed_duration);
    let cpu0 = server.cpu_time()?;
    let r = swarm::run(cfg, swarm::ProgressMode::Quiet)?;
    let cpu = server.cpu_time()?.saturating_sub(cpu0).as_secs_f64();
    server.check_alive()?;
    let relayed = r.traffic.peer_received.unwrap_or(r.traffic.received) + r.traffic.received;
    Ok(FixedResult {
        offered_rt_per_s: p.fixed_rate,
        relayed,
        server_cpu_s: cpu,
        pkts_per_cpu_s: if cpu > 0.0 { relayed as f64 / cpu } else { 0.0 },
        rtt_p50_us: r.rtt.p50_us,
        rtt_p99_us: r.rtt.p99_us,
        loss_pct: r.traffic.loss_pct,
    })
}

/// One step of the max-rate search.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Offered round trips per second.
    pub offered: f64,
    /// Round trips per second actually sent.
    pub sent_pps: f64,
    /// Relayed packets per second (both directions).
    pub relayed_pps: f64,
    /// Round-trip loss (%).
    pub loss_pct: f64,
    /// Allocations that failed.
    pub failed: u64,
    /// Whether the step met the loss bound.
    pub pass: bool,
    /// The generator could not send at the offered rate.
    pub generator_limited: bool,
}

/// Result of the max-rate search.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RateResult {
    /// Relayed packets/s (both directions) at the highest passing step; 0 if none passed.
    pub relayed_pps: f64,
    /// True when the search stopped because the generator, not the server, hit its limit.
    pub generator_limited: bool,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

fn step(
    server: &mut ServerProcess,
    p: &Profile,
    g: &GenSettings,
    size: usize,
    rate: f64,
) -> Result<Step> {
    let cfg = swarm_cfg(server, g, p.flows, rate, size, p.step_duration);
    let r: SwarmReport = swarm::run(cfg, swarm::ProgressMode::Quiet)?;
    server.check_alive()?;
    let t = &r.traffic;
    let failed = r.allocations.failed;
    let pass = failed == 0 && t.sent > 0 && t.loss_pct <= MAX_LOSS_PCT;
    let s = Step {
        offered: rate,
        sent_pps: t.offered_pps,
        relayed_pps: t.relayed_pps,
        loss_pct: t.loss_pct,
        failed,
        pass,
        generator_limited: t.offered_pps < 0.9 * rate,
    };
    tracing::info!(
        server = server.kind.name(),
        size,
        offered = rate,
        sent = s.sent_pps,
        loss = s.loss_pct,
        pass,
        "rate step"
    );
    Ok(s)
}

/// Ramps the offered rate up by `factor` until loss exceeds the bound, then bisects.
pub fn max_rate(
    server: &mut ServerProcess,
    p: &Profile,
    g: &GenSettings,
    size: usize,
) -> Result<RateResult> {
    let mut res = RateResult::default();
    let (mut lo, mut hi): (f64, Option<f64>) = (0.0, None);
    let mut rate = p.start_rate;
    while rate <= p.max_rate {
        let s = step(server, p, g, size, rate)?;
        res.steps.push(s.clone());
        if !s.pass {
            hi = Some(rate);
            break;
        }
        (lo, res.relayed_pps) = (rate, s.relayed_pps);
        if s.generator_limited {
            res.generator_limited = true;
            return Ok(res);
        }
        rate *= p.factor;
    }
    for _ in 0..p.bisect_steps {
        let Some(h) = hi else { break };
        let mid = (lo + h) / 2.0;
        let s = step(server, p, g, size, mid)?;
        res.steps.push(s.clone());
        if s.pass {
            (lo, res.relayed_pps) = (mid, s.relayed_pps.max(res.relayed_pps));
        } else {
            hi = Some(mid);
        }
    }
    if res.steps.is_empty() {
        return Err(Error::Config(
            "max-rate search: start rate above max rate".into(),
        ));
    }
    Ok(res)
}
