//! `loadtest demo --profile large`: the ramp at cluster scale (3,000 calls at 100 per pod, 30+
//! pods, back to 0) on the `scaler::model` simulator, in virtual time: the real scaler policy
//! and report, KEDA and the HPA as transcribed, a ReplicaSet honouring pod-deletion-cost, pods
//! that start in 20 s and drain. Three set-ups run the same load side by side:
//!
//! - **ours**: the shipped scaler report and the ScaledObject the operator renders;
//! - **desired as is**: the previous report (the desired count against a target of 1);
//! - **naive**: a plain usage metric (allocations, AverageValue target per pod) on the
//!   Kubernetes default HPA behaviour, the newest pod removed and killed at once.

use std::time::Duration;

use scaler::model::hpa::{Behavior, Hpa, Target, stunner_behavior};
use scaler::model::keda::{Fallback, FallbackBehavior, MetricType, ScaledObject};
use scaler::model::sim::{Removal, Reporter, Sim, SimConfig};
use scaler::policy::Policy;
use serde::Serialize;

use super::profile::Profile;

/// Settings of the large profile.
#[derive(Clone, Debug)]
pub struct LargeConfig {
    /// Peak concurrent calls.
    pub peak_calls: u32,
    /// Allocations per pod.
    pub target_per_pod: u32,
    /// Replica bounds.
    pub max_replicas: u32,
    /// Ramp segment length (the ramp is 15 segments).
    pub unit: Duration,
    /// Time simulated after the ramp ends (for the scale-in to finish).
    pub tail: Duration,
    /// Mean call length.
    pub mean_call: Duration,
}

impl Default for LargeConfig {
    fn default() -> Self {
        Self {
            peak_calls: 3000,
            target_per_pod: 100,
            max_replicas: 60,
            unit: Duration::from_secs(60),
            tail: Duration::from_secs(60 * 60),
            mean_call: Duration::from_secs(300),
        }
    }
}

/// The outcome of one set-up.
#[derive(Debug, Clone, Serialize)]
pub struct LargeRun {
    /// Set-up name.
    pub name: &'static str,
    /// Most replicas at once.
    pub peak_replicas: u32,
    /// Replicas the peak load needs.
    pub wanted_peak: u32,
    /// Seconds from the load first needing the peak size to that many Ready pods.
    pub secs_to_peak: Option<u64>,
    /// Seconds during which the Ready pods carried more than `target_per_pod` calls each.
    pub overloaded_secs: u64,
    /// Largest shortfall: pods needed minus Ready pods.
    pub worst_shortfall: u32,
    /// Calls dropped by killed pods.
    pub dropped_calls: u64,
    /// Scale-outs within 60 s of a scale-in.
    pub bounces: u32,
    /// Replicas at the end.
    pub final_replicas: u32,
    /// Seconds from the load reaching 0 to the minimum size.
    pub secs_to_min: Option<u64>,
    /// The replica count every 2 minutes.
    pub timeline: Vec<u32>,
}

/// All set-ups of one large run.
#[derive(Debug, Clone, Serialize)]
pub struct LargeReport {
    /// Ours first.
    pub runs: Vec<LargeRun>,
    /// Offered calls every 2 minutes.
    pub calls: Vec<u32>,
}

const SYNC: Duration = Duration::from_secs(15);

fn policy(cfg: &LargeConfig) -> Policy {
    Policy {
        target: f64::from(cfg.target_per_pod),
        min: 1,
        max: cfg.max_replicas,
        scale_in_step: 1,
        activation_threshold: 0.0,
        hpa_tolerance: 0.1,
    }
}

/// The ScaledObject's HPA as the operator renders it (no configurable tolerance assumed).
fn rendered_hpa(cfg: &LargeConfig) -> Hpa {
    Hpa::new(
        1,
        cfg.max_replicas,
        Target::AverageValue(1.0),
        Some(stunner_behavior(1, false)),
    )
}

fn setups(cfg: &LargeConfig) -> Vec<(&'static str, SimConfig)> {
    let keda = |behavior| {
        ScaledObject::new(
            1,
            cfg.max_replicas,
            MetricType::AverageValue,
            Some(Fallback {
                failure_threshold: 3,
                replicas: cfg.max_replicas,
                behavior,
            }),
        )
    };
    let base = SimConfig {
        reporter: Reporter::Scaler(policy(cfg)),
        removal: Removal::SteeredDrain,
        hpa: rendered_hpa(cfg),
        keda: keda(FallbackBehavior::CurrentReplicasIfLower),
        sync: SYNC,
        startup: Duration::from_secs(20),
        end_rate: 1.0 / cfg.mean_call.as_secs_f64().max(1.0),
    };
    let today = SimConfig {
        reporter: Reporter::DesiredAsIs(policy(cfg)),
        keda: keda(FallbackBehavior::Static),
        ..base.clone()
    };
    let naive = SimConfig {
        reporter: Reporter::Allocations(f64::from(cfg.target_per_pod)),
        removal: Removal::Kill,
        hpa: Hpa::new(
            1,
            cfg.max_replicas,
            Target::AverageValue(1.0),
            Some(Behavior::kubernetes_default()),
        ),
        keda: keda(FallbackBehavior::Static),
        ..base.clone()
    };
    vec![("ours", base), ("desired as is", today), ("naive", naive)]
}

/// Runs every set-up on the ramp and returns the report.
pub fn run(cfg: &LargeConfig) -> LargeReport {
    let profile = Profile::ramp(cfg.peak_calls, cfg.unit);
    let total = profile.duration() + cfg.tail;
    let steps = (total.as_secs() / SYNC.as_secs()) as usize;
    let runs = setups(cfg)
        .into_iter()
        .map(|(name, sim_cfg)| run_one(cfg, name, sim_cfg, &profile, steps))
        .collect();
    let calls = (0..steps)
        .step_by(8)
        .map(|i| profile.calls_at(SYNC * i as u32))
        .collect();
    LargeReport { runs, calls }
}

fn run_one(
    cfg: &LargeConfig,
    name: &'static str,
    sim_cfg: SimConfig,
    profile: &Profile,
    steps: usize,
) -> LargeRun {
    let per_pod = f64::from(cfg.target_per_pod);
    let need = |calls: f64| (calls / per_pod).ceil() as u32;
    let wanted_peak = need(f64::from(cfg.peak_calls));
    let mut sim = Sim::new(sim_cfg, 1, 0.0);
    let (mut first_need, mut first_reach, mut zero_at, mut min_at) = (None, None, None, None);
    let mut overloaded = 0;
    let mut shortfall = 0;
    for i in 0..steps {
        let t = sim.now();
        let offered = profile.calls_at(t);
        sim.set_load(f64::from(offered));
        sim.step();
        let ready = sim.ready();
        let needed = need(sim.live_calls());
        if need(f64::from(offered)) >= wanted_peak && first_need.is_none() {
            first_need = Some(t);
        }
        if ready >= wanted_peak && first_reach.is_none() && first_need.is_some() {
            first_reach = Some(sim.now());
        }
        if needed > ready {
            overloaded += SYNC.as_secs();
            shortfall = shortfall.max(needed - ready);
        }
        if offered == 0 && i > 0 && zero_at.is_none() && t > profile.duration() / 2 {
            zero_at = Some(t);
        }
        if zero_at.is_some() && min_at.is_none() && sim.replicas == 1 {
            min_at = Some(sim.now());
        }
    }
    let secs = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs()),
        _ => None,
    };
    LargeRun {
        name,
        peak_replicas: sim.samples.iter().map(|s| s.replicas).max().unwrap_or(0),
        wanted_peak,
        secs_to_peak: secs(first_need, first_reach),
        overloaded_secs: overloaded,
        worst_shortfall: shortfall,
        dropped_calls: sim.dropped.round() as u64,
        bounces: sim.bounces,
        final_replicas: sim.replicas,
        secs_to_min: secs(zero_at, min_at),
        timeline: sim.samples.iter().step_by(8).map(|s| s.replicas).collect(),
    }
}

impl LargeReport {
    /// The comparison table (markdown) and the timelines.
    pub fn table(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("never".to_owned(), |s| format!("{s} s"));
        let mut s = String::from(
            "| set-up | peak replicas (wanted) | time to peak size | overloaded | worst shortfall | dropped calls | bounces | back to 1 pod after load 0 |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.runs {
            s.push_str(&format!(
                "| {} | {} ({}) | {} | {} s | {} pods | {} | {} | {} (final {}) |\n",
                r.name,
                r.peak_replicas,
                r.wanted_peak,
                opt(r.secs_to_peak),
                r.overloaded_secs,
                r.worst_shortfall,
                r.dropped_calls,
                r.bounces,
                opt(r.secs_to_min),
                r.final_replicas,
            ));
        }
        s.push_str("\nreplicas every 2 minutes:\n");
        let row = |name: &str, v: &[u32]| {
            let cells: Vec<String> = v.iter().map(|n| format!("{n:>4}")).collect();
            format!("{name:>14}: {}\n", cells.join(""))
        };
        s.push_str(&row(
            "calls/100",
            &self
                .calls
                .iter()
                .map(|c| c.div_ceil(100))
                .collect::<Vec<_>>(),
        ));
        for r in &self.runs {
            s.push_str(&row(r.name, &r.timeline));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_reaches_the_peak_drops_nothing_and_returns_to_one_pod() {
        let report = run(&LargeConfig::default());
        let ours = &report.runs[0];
        assert!(ours.peak_replicas >= 30, "{}", report.table());
        assert!(ours.secs_to_peak.is_some(), "{}", report.table());
        assert_eq!(
            (ours.dropped_calls, ours.bounces),
            (0, 0),
            "{}",
            report.table()
        );
        assert_eq!(ours.final_replicas, 1, "{}", report.table());
        let naive = &report.runs[2];
        assert!(naive.dropped_calls > 0, "{}", report.table());
    }
}
