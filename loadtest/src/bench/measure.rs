//! The benchmark's measurements against one running server: allocation rate and idle RSS, CPU
//! per relayed packet and RTT at a fixed rate (a steady window, see [`super::window`]), and the
//! maximum relay rate at ≤ 0.1% loss: the offered rate is stepped up, each step repeated until two
//! repeats agree within [`AGREE`] (or the spread is reported), then one step at
//! [`OVERLOAD`] × the found rate shows whether the server degrades gracefully or collapses.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::server::{PASS, ServerProcess, USER};
use super::window::{self, WindowPlan, WindowResult};
use crate::client::{AuthSpec, Credentials};
use crate::swarm::{self, SwarmConfig, SwarmReport, Transport};
use crate::{Error, Result};

/// Loss allowed at the "max relay rate" (percent).
pub const MAX_LOSS_PCT: f64 = 0.1;
/// Two repeats of a step agree when their relayed rates are within this fraction.
pub const AGREE: f64 = 0.10;
/// The overload step: this multiple of the highest passing offered rate.
pub const OVERLOAD: f64 = 1.5;

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
    /// Length of the fixed-rate steady window (after a warm-up of [`Profile::warmup`]).
    pub fixed_duration: Duration,
    /// Traffic runs this long after every allocation is ready before a window opens.
    pub warmup: Duration,
    /// Duration of each step of the max-rate search.
    pub step_duration: Duration,
    /// First offered rate of the search (round trips per second).
    pub start_rate: f64,
    /// Multiplier while ramping up.
    pub factor: f64,
    /// Bisection steps after the first failing rate.
    pub bisect_steps: usize,
    /// Runs of one step at most while waiting for two that agree within [`AGREE`].
    pub max_repeats: usize,
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
            warmup: Duration::from_millis(300),
            step_duration: Duration::from_millis(1000),
            start_rate: 10_000.0,
            factor: 2.0,
            bisect_steps: 1,
            max_repeats: 1,
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
            warmup: Duration::from_secs(1),
            step_duration: Duration::from_secs(2),
            start_rate: 10_000.0,
            factor: 1.5,
            bisect_steps: 3,
            max_repeats: 4,
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
    /// The swarm's scheduler tick (how often due packets are sent, in batches).
    pub tick: Duration,
}

/// The swarm config of one measurement: `flows` allocations sending `total_rate` round trips per
/// second of `size`-byte payloads for `duration`.
pub fn swarm_cfg(
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
    cfg.tick = g.tick;
    cfg
}

/// Generator CPU-seconds per wall-second over a whole swarm run.
fn generator_cpu(r: &SwarmReport) -> f64 {
    r.generator.cpu_s / r.generator.wall_s.max(1e-9)
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
    /// Generator CPU-seconds per wall-second over the run.
    pub generator_cpu: f64,
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
        generator_cpu: generator_cpu(&report),
    })
}

/// CPU per packet, loss, RTT and RSS at a fixed moderate rate, over a steady window.
pub fn fixed_rate(
    server: &mut ServerProcess,
    p: &Profile,
    g: &GenSettings,
) -> Result<WindowResult> {
    let cfg = swarm_cfg(server, g, p.flows, p.fixed_rate, 100, p.fixed_duration);
    let plan = WindowPlan {
        warmup: p.warmup,
        window: p.fixed_duration,
        settle_timeout: Duration::from_secs(30),
    };
    window::measure(server, cfg, &plan)
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
    /// Generator CPU-seconds per wall-second.
    pub generator_cpu: f64,
    /// Relayed packets/s of every run of this step, in order.
    pub repeats: Vec<f64>,
    /// Whether two runs agreed within [`AGREE`] (the figures are then their mean).
    pub agreed: bool,
}

/// Result of the max-rate search.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RateResult {
    /// Relayed packets/s (both directions) at the highest passing step; 0 if none passed.
    pub relayed_pps: f64,
    /// True when the search stopped because the generator, not the server, hit its limit.
    pub generator_limited: bool,
    /// Generator CPU-seconds per wall-second at the highest passing step.
    pub generator_cpu: f64,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The step at [`OVERLOAD`] × the highest passing offered rate (None if nothing passed).
    pub overload: Option<Step>,
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
        generator_cpu: generator_cpu(&r),
        repeats: vec![t.relayed_pps],
        agreed: false,
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

/// The two runs closest in relayed rate, if within [`AGREE`] of each other.
fn agreeing_pair(runs: &[Step]) -> Option<(usize, usize)> {
    let mut best: Option<(f64, usize, usize)> = None;
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            let (a, b) = (runs[i].relayed_pps, runs[j].relayed_pps);
            let d = (a - b).abs() / a.max(b).max(1e-9);
            if d <= AGREE && best.is_none_or(|(bd, _, _)| d < bd) {
                best = Some((d, i, j));
            }
        }
    }
    best.map(|(_, i, j)| (i, j))
}

/// Folds the runs of one step: the mean of an agreeing pair (pass if both passed), or else the
/// median run with every run's rate kept as the spread (pass if most passed).
pub fn fold_repeats(runs: Vec<Step>) -> Step {
    let repeats: Vec<f64> = runs.iter().map(|s| s.relayed_pps).collect();
    if let Some((i, j)) = agreeing_pair(&runs) {
        let (a, b) = (&runs[i], &runs[j]);
        let mean = |x: f64, y: f64| (x + y) / 2.0;
        return Step {
            offered: a.offered,
            sent_pps: mean(a.sent_pps, b.sent_pps),
            relayed_pps: mean(a.relayed_pps, b.relayed_pps),
            loss_pct: mean(a.loss_pct, b.loss_pct),
            failed: a.failed.max(b.failed),
            pass: a.pass && b.pass,
            generator_limited: a.generator_limited || b.generator_limited,
            generator_cpu: mean(a.generator_cpu, b.generator_cpu),
            repeats,
            agreed: true,
        };
    }
    let passes = runs.iter().filter(|s| s.pass).count();
    let mut sorted = runs;
    sorted.sort_by(|x, y| x.relayed_pps.total_cmp(&y.relayed_pps));
    let mut median = sorted.swap_remove(sorted.len() / 2);
    median.pass = 2 * passes > sorted.len() + 1;
    median.repeats = repeats;
    median.agreed = false;
    median
}

/// One step of the search, run until two runs agree or `p.max_repeats` runs were made.
fn repeated_step(
    server: &mut ServerProcess,
    p: &Profile,
    g: &GenSettings,
    size: usize,
    rate: f64,
) -> Result<Step> {
    let mut runs = vec![step(server, p, g, size, rate)?];
    while runs.len() < p.max_repeats.max(1) && agreeing_pair(&runs).is_none() {
        runs.push(step(server, p, g, size, rate)?);
    }
    Ok(fold_repeats(runs))
}

/// Ramps the offered rate up by `factor` until loss exceeds the bound, bisects, then runs the
/// overload step.
pub fn max_rate(
    server: &mut ServerProcess,
    p: &Profile,
    g: &GenSettings,
    size: usize,
) -> Result<RateResult> {
    let mut res = search(server, p, g, size)?;
    let passed = res.steps.iter().filter(|s| s.pass).map(|s| s.offered);
    if let Some(lo) = passed.reduce(f64::max) {
        res.overload = Some(repeated_step(server, p, g, size, lo * OVERLOAD)?);
    }
    Ok(res)
}

fn search(
    server: &mut ServerProcess,
    p: &Profile,
    g: &GenSettings,
    size: usize,
) -> Result<RateResult> {
    let mut res = RateResult::default();
    let (mut lo, mut hi): (f64, Option<f64>) = (0.0, None);
    let mut rate = p.start_rate;
    while rate <= p.max_rate {
        let s = repeated_step(server, p, g, size, rate)?;
        res.steps.push(s.clone());
        if !s.pass {
            hi = Some(rate);
            break;
        }
        (lo, res.relayed_pps, res.generator_cpu) = (rate, s.relayed_pps, s.generator_cpu);
        if s.generator_limited {
            res.generator_limited = true;
            return Ok(res);
        }
        rate *= p.factor;
    }
    for _ in 0..p.bisect_steps {
        let Some(h) = hi else { break };
        let mid = (lo + h) / 2.0;
        let s = repeated_step(server, p, g, size, mid)?;
        res.steps.push(s.clone());
        if s.pass {
            lo = mid;
            if s.relayed_pps > res.relayed_pps {
                (res.relayed_pps, res.generator_cpu) = (s.relayed_pps, s.generator_cpu);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(relayed: f64, pass: bool) -> Step {
        Step {
            offered: 10_000.0,
            sent_pps: 10_000.0,
            relayed_pps: relayed,
            loss_pct: 0.0,
            failed: 0,
            pass,
            generator_limited: false,
            generator_cpu: 0.5,
            repeats: Vec::new(),
            agreed: false,
        }
    }

    #[test]
    fn two_agreeing_runs_are_averaged() {
        let s = fold_repeats(vec![
            run(10_000.0, true),
            run(5_000.0, false),
            run(10_500.0, true),
        ]);
        assert!(s.agreed);
        assert_eq!(s.relayed_pps, 10_250.0);
        assert!(s.pass);
        assert_eq!(s.repeats, vec![10_000.0, 5_000.0, 10_500.0]);
    }

    #[test]
    fn disagreeing_runs_give_the_median_and_a_majority_verdict() {
        let s = fold_repeats(vec![
            run(10_000.0, true),
            run(5_000.0, false),
            run(20_000.0, false),
        ]);
        assert!(!s.agreed);
        assert_eq!(s.relayed_pps, 10_000.0);
        assert!(!s.pass, "one pass in three is not a pass");
        let one = fold_repeats(vec![run(7_000.0, true)]);
        assert!(one.pass && !one.agreed);
    }
}
