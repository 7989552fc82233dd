//! The local autoscaling demo: real stunnerd processes, the real scaler in `direct` mode, and a
//! swarm of calls whose number ramps up and down. KEDA and the HPA are the transcriptions in
//! `scaler::model` (tolerance, stabilization, scale-down policy, fallback), on a compressed
//! clock; the driver plays the ReplicaSet and the Service. It runs the same ramp twice: with
//! our policy (scaler drain steering, SIGTERM and graceful drain) and with a naive one (random
//! victim, killed at once), and reports the calls each one dropped. `--profile large` runs the
//! same model on a simulated dataplane of 30+ pods instead ([`large`]).
//!
//! ```text
//!   calls ──TURN/UDP──▶ pods (stunnerd) ──relay──▶ echo peer
//!                        ▲   │ /status
//!        scale out/in    │   ▼
//!   model KEDA + HPA ◀─gRPC GetMetricSpec/GetMetrics── stunner-scaler ──reads── endpoints file
//! ```

mod args;
mod calls;
mod fleet;
mod http;
pub mod large;
mod profile;
mod report;
mod scaler_process;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::IteratorRandom;
use scaler::model::hpa::{
    Behavior, Hpa, PolicyKind, ScaleView, ScalingPolicy, ScalingRules, Target,
};
use scaler::model::keda::{Fallback, FallbackBehavior, MetricType, ScaledObject};

use crate::peer::{self, EchoPeer, PeerCounters};
use crate::{Error, Result};
pub use args::{DemoArgs, run_demo};
use calls::{Call, CallStats};
use fleet::{Fleet, Termination};
pub use profile::Profile;
pub use report::{DemoReport, RunReport};
use scaler_process::{Scaler, Trigger};

/// A scale-out this soon after a scale-in counts as a bounce.
const BOUNCE_WINDOW: Duration = Duration::from_secs(60);
/// How often the model HPA syncs and queries the scaler through KEDA (15 s in a cluster).
const POLL: Duration = Duration::from_secs(1);

/// Which scale-in policy a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Scaler drain steering picks the emptiest pod; it gets SIGTERM and drains.
    Steered,
    /// A random pod is killed at once (what a plain HPA on a plain Deployment amounts to for UDP).
    Naive,
}

/// Settings of a demo.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// The stunnerd binary.
    pub stunnerd: PathBuf,
    /// The stunner-scaler binary.
    pub scaler: PathBuf,
    /// `targetAllocationsPerPod`.
    pub target_per_pod: u32,
    /// Replica bounds.
    pub min_replicas: u32,
    /// Upper replica bound.
    pub max_replicas: u32,
    /// Peak concurrent calls.
    pub peak_calls: u32,
    /// Segment length of the ramp (the whole ramp is 15 units).
    pub unit: Duration,
    /// HPA scale-down stabilization window.
    pub stabilization: Duration,
    /// At most one pod removed per this period.
    pub scale_in_period: Duration,
    /// Print a table line this often.
    pub print_every: Duration,
    /// Run the naive policy too.
    pub compare: bool,
}

impl DemoConfig {
    /// The default run (about 2.5 minutes per policy) or the short one for CI (`short`).
    pub fn new(stunnerd: PathBuf, scaler: PathBuf, short: bool) -> Self {
        let (peak, unit, stab, period) = if short {
            (60, 3, 4, 3)
        } else {
            (400, 8, 12, 6)
        };
        Self {
            stunnerd,
            scaler,
            target_per_pod: if short { 15 } else { 80 },
            min_replicas: 1,
            max_replicas: 8,
            peak_calls: peak,
            unit: Duration::from_secs(unit),
            stabilization: Duration::from_secs(stab),
            scale_in_period: Duration::from_secs(period),
            print_every: Duration::from_secs(if short { 2 } else { 4 }),
            compare: true,
        }
    }
}

/// Runs the demo: our policy, then (if `compare`) the naive one.
pub async fn run(cfg: &DemoConfig) -> Result<DemoReport> {
    for (what, path) in [("stunnerd", &cfg.stunnerd), ("stunner-scaler", &cfg.scaler)] {
        if !path.is_file() {
            return Err(Error::Config(format!(
                "{what} binary not found at {} (build it first)",
                path.display()
            )));
        }
    }
    let mut runs = vec![run_policy(cfg, Policy::Steered).await?];
    if cfg.compare {
        runs.push(run_policy(cfg, Policy::Naive).await?);
    }
    Ok(DemoReport { runs })
}

/// The mutable state of one run.
struct Run<'a> {
    cfg: &'a DemoConfig,
    policy: Policy,
    fleet: Fleet,
    scaler: Scaler,
    calls: Vec<Call>,
    stats: Arc<CallStats>,
    peer: SocketAddr,
    /// The HPA KEDA created, on the demo's compressed clock.
    hpa: Hpa,
    /// The ScaledObject (fallback).
    keda: ScaledObject,
    last_scale_in: Option<Instant>,
    report: RunReport,
    started: Instant,
}

async fn run_policy(cfg: &DemoConfig, policy: Policy) -> Result<RunReport> {
    let dir = std::env::temp_dir().join(format!("stunner-demo-{}-{policy:?}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format_args!("create {}", dir.display()), e))?;
    let drain_timeout = Duration::from_secs(600);
    let mut fleet = Fleet::new(cfg.stunnerd.clone(), dir.clone(), drain_timeout);
    for _ in 0..cfg.min_replicas {
        fleet.scale_out().await?;
    }
    let trigger = Trigger {
        target: cfg.target_per_pod,
        scale_in_step: 1,
        min: cfg.min_replicas,
        max: cfg.max_replicas,
        steering: policy == Policy::Steered,
    };
    let scaler = Scaler::start(&cfg.scaler, &fleet.endpoints_file(), trigger).await?;
    let (peer_addr, stop_peer, peer_thread) = start_peer()?;
    let mut run = Run {
        cfg,
        policy,
        fleet,
        scaler,
        calls: Vec::new(),
        stats: Arc::new(CallStats::default()),
        peer: peer_addr,
        hpa: demo_hpa(cfg),
        keda: ScaledObject::new(
            cfg.min_replicas,
            cfg.max_replicas,
            MetricType::AverageValue,
            Some(Fallback {
                failure_threshold: 3,
                replicas: cfg.max_replicas,
                behavior: FallbackBehavior::CurrentReplicasIfLower,
            }),
        ),
        last_scale_in: None,
        report: RunReport::new(policy),
        started: Instant::now(),
    };
    println!("\n== {policy:?} policy: {}", report::policy_line(policy));
    let result = run.main_loop().await;
    run.fleet.shutdown().await;
    stop_peer.store(true, Ordering::Relaxed);
    let _ = peer_thread.join();
    let Run {
        scaler,
        stats,
        mut report,
        ..
    } = run;
    scaler.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    report.finish(&stats);
    println!("{}", report.summary());
    Ok(report)
}

/// The HPA the operator renders, with its periods compressed to the demo's clock: scale-up
/// without stabilization (double or +4 per sync), scale-down after `stabilization`, one pod per
/// `scale_in_period`; the cluster's default tolerance (10 %).
fn demo_hpa(cfg: &DemoConfig) -> Hpa {
    let mut up = ScalingRules::one(Duration::ZERO, PolicyKind::Percent, 100, POLL);
    up.policies.push(ScalingPolicy {
        kind: PolicyKind::Pods,
        value: 4,
        period: POLL,
    });
    let down = ScalingRules::one(cfg.stabilization, PolicyKind::Pods, 1, cfg.scale_in_period);
    Hpa::new(
        cfg.min_replicas,
        cfg.max_replicas,
        Target::AverageValue(1.0),
        Some(Behavior { up, down }),
    )
}

fn start_peer() -> Result<(SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>)> {
    let mut echo = EchoPeer::bind("127.0.0.1:0".parse().expect("literal address"))?;
    let addr = echo.local_addr()?;
    echo.set_blocking(Some(Duration::from_millis(100)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = std::thread::spawn(move || {
        let counters = PeerCounters::default();
        let _ = peer::run_blocking(&mut echo, &stop2, &counters);
    });
    Ok((addr, stop, handle))
}

impl Run<'_> {
    async fn main_loop(&mut self) -> Result<()> {
        let profile = Profile::ramp(self.cfg.peak_calls, self.cfg.unit);
        let end = profile.duration();
        // After the ramp, wait for draining pods to finish (bounded).
        let hard_end = end + Duration::from_secs(60);
        let (mut next_poll, mut next_print) = (Instant::now(), Instant::now());
        loop {
            let t = self.started.elapsed();
            self.adjust_calls(profile.calls_at(t));
            self.reap()?;
            if Instant::now() >= next_poll {
                next_poll += POLL;
                if t < end {
                    self.autoscale().await?;
                }
            }
            if Instant::now() >= next_print {
                next_print += self.cfg.print_every;
                println!("{}", self.table_line(t, profile.calls_at(t)));
            }
            let drained = self.fleet.pods.iter().all(|p| p.terminating.is_none());
            if (t >= end && self.calls.is_empty() && drained) || t >= hard_end {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts or hangs up calls so that `wanted` are live; forgets calls that are over.
    fn adjust_calls(&mut self, wanted: u32) {
        self.calls.retain_mut(|c| !c.is_over());
        let live = self.calls.iter().filter(|c| c.is_live()).count();
        let wanted = wanted as usize;
        let mut rng = rand::rng();
        for _ in live..wanted {
            let Some(pod) = self.fleet.serving().choose(&mut rng) else {
                break;
            };
            self.calls.push(Call::start(
                pod.health,
                pod.turn,
                self.peer,
                self.stats.clone(),
            ));
        }
        for _ in wanted..live {
            let live_idx: Vec<usize> = (0..self.calls.len())
                .filter(|&i| self.calls[i].is_live())
                .collect();
            let i = live_idx[rng.random_range(0..live_idx.len())];
            self.calls[i].hang_up();
        }
    }

    fn reap(&mut self) -> Result<()> {
        for (id, drain_secs) in self.fleet.reap()? {
            self.report.pod_exited(id, drain_secs);
        }
        Ok(())
    }

    /// One HPA sync: KEDA asks the scaler (GetMetricSpec, GetMetrics), the model HPA decides,
    /// the driver acts like the ReplicaSet.
    async fn autoscale(&mut self) -> Result<()> {
        let serving = self.fleet.serving().count() as u32;
        let view = ScaleView {
            spec_replicas: serving,
            status_replicas: serving,
            ready_pods: serving,
        };
        let usage = match self.scaler.metrics().await {
            Ok((spec, values)) => {
                self.hpa.target = self.keda.target(&spec);
                self.keda
                    .serve(Ok(values.as_slice()), self.hpa.target, serving, serving)
            }
            Err(e) => {
                self.report.scaler_errors += 1;
                tracing::warn!(error = %e, "scaler error");
                self.keda.serve(Err(()), self.hpa.target, serving, serving)
            }
        };
        let next = self.hpa.reconcile(self.started.elapsed(), view, usage);
        if next > serving {
            self.scale_out(next - serving).await
        } else {
            for _ in next..serving {
                self.scale_in().await?;
            }
            Ok(())
        }
    }

    async fn scale_out(&mut self, n: u32) -> Result<()> {
        for _ in 0..n {
            self.fleet.scale_out().await?;
        }
        let bounce = self
            .last_scale_in
            .is_some_and(|t| t.elapsed() < BOUNCE_WINDOW);
        self.report
            .scale_out(n, bounce, self.fleet.serving().count() as u32);
        Ok(())
    }

    async fn scale_in(&mut self) -> Result<()> {
        let victim = match self.policy {
            Policy::Steered => self.emptiest_by_deletion_cost().await,
            Policy::Naive => self
                .fleet
                .serving()
                .choose(&mut rand::rng())
                .map(|p| p.health),
        };
        let Some(victim) = victim else { return Ok(()) };
        let how = match self.policy {
            Policy::Steered => Termination::Drain,
            Policy::Naive => Termination::Kill,
        };
        let calls_on_victim = self
            .calls
            .iter()
            .filter(|c| c.is_live() && c.pod == victim)
            .count();
        self.fleet.terminate(victim, how)?;
        self.last_scale_in = Some(Instant::now());
        self.report.scale_in(calls_on_victim);
        Ok(())
    }

    /// The serving pod with the lowest `pod-deletion-cost` the scaler decided, as a ReplicaSet
    /// would pick; the newest pod (ReplicaSet default) if the scaler has not decided yet.
    async fn emptiest_by_deletion_cost(&mut self) -> Option<SocketAddr> {
        let costs = match self.scaler.deletion_costs().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no deletion costs from the scaler");
                Default::default()
            }
        };
        let serving: Vec<(SocketAddr, usize)> =
            self.fleet.serving().map(|p| (p.health, p.id)).collect();
        let costed = serving
            .iter()
            .filter_map(|(a, id)| costs.get(a).map(|c| (*c, std::cmp::Reverse(*id), *a)))
            .min();
        match costed {
            Some((_, _, addr)) => Some(addr),
            None => {
                self.report.unsteered_scale_ins += 1;
                serving.iter().max_by_key(|(_, id)| *id).map(|(a, _)| *a)
            }
        }
    }

    fn table_line(&self, t: Duration, wanted: u32) -> String {
        let mut pods = String::new();
        for p in &self.fleet.pods {
            let n = self
                .calls
                .iter()
                .filter(|c| c.is_live() && c.pod == p.health)
                .count();
            let mark = if p.terminating.is_some() { "d" } else { "" };
            pods.push_str(&format!(" #{}{mark}:{n}", p.id));
        }
        let draining = self
            .fleet
            .pods
            .iter()
            .filter(|p| p.terminating.is_some())
            .count();
        format!(
            "t={:>4.0}s calls={:>4}/{:<4} replicas={} draining={} dropped={:<3} pods:{}",
            t.as_secs_f64(),
            self.calls.iter().filter(|c| c.is_live()).count(),
            wanted,
            self.fleet.serving().count(),
            draining,
            self.stats.dropped.load(Ordering::Relaxed),
            pods
        )
    }
}
