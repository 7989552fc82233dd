//! The size sweep: from every current size, a load that needs another size, run through the
//! simulator until the gateway gets there. It checks the promises the autoscaler makes (scale-out
//! is never short and overshoots at most `floor(tolerance × wanted)`; scale-in never goes below
//! the wanted size, lands on it or inside the HPA's tolerance band above it, and stays) and
//! returns the worst case, or the first scenario that broke a promise.

use std::time::Duration;

use super::sim::{Sim, SimConfig};

/// What a sweep asks of the gateway.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepSpec {
    /// Allocations one pod carries (the trigger's `targetAllocationsPerPod`).
    pub per_pod: f64,
    /// Largest size a scale-out may ask for (the ScaledObject's maximum).
    pub max: u32,
    /// Current sizes swept: `1..=largest`.
    pub largest: u32,
    /// The HPA tolerance in force (0.1 by default; 0 where the configurable tolerance is 0).
    pub tolerance: f64,
    /// The scale-in step (`scaleInStep`): with a step above 1 the HPA may stop inside its band.
    pub step: u32,
}

/// The worst case of a sweep.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Worst {
    /// Largest time to reach the wanted size.
    pub time: Duration,
    /// (current, wanted) of that.
    pub at: (u32, u32),
    /// Largest overshoot above the wanted size during a scale-out.
    pub overshoot: u32,
    /// Largest size a scale-in stopped at above the wanted size (inside the tolerance band).
    pub stopped_above: u32,
    /// Scenarios run.
    pub runs: u32,
}

impl Worst {
    fn record(&mut self, time: Duration, cur: u32, want: u32) {
        self.runs += 1;
        if time > self.time {
            self.time = time;
            self.at = (cur, want);
        }
    }
}

impl std::fmt::Display for Worst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} runs, all reached; worst time to reach {:?} ({} -> {}); largest overshoot {}; \
             largest stop above the wanted size {}",
            self.runs, self.time, self.at.0, self.at.1, self.overshoot, self.stopped_above
        )
    }
}

/// Calls that need exactly `pods` pods of `per_pod`.
pub fn calls_for(pods: u32, per_pod: f64) -> f64 {
    (f64::from(pods) - 0.5) * per_pod
}

fn start(cfg: &SimConfig, spec: &SweepSpec, cur: u32, want: u32) -> Sim {
    let mut sim = Sim::new(cfg.clone(), cur, calls_for(cur, spec.per_pod));
    sim.run(2);
    sim.set_load(calls_for(want, spec.per_pod));
    sim
}

/// Scale-out from every size to +1, +10 %, ×2 and ×3: never short, overshoot bounded, no bounce.
pub fn scale_out(cfg: &SimConfig, spec: &SweepSpec) -> Result<Worst, String> {
    let mut worst = Worst::default();
    for cur in 1..=spec.largest {
        let mut wants: Vec<u32> = [cur + 1, cur + cur.div_ceil(10), 2 * cur, 3 * cur]
            .into_iter()
            .map(|w| w.min(spec.max))
            .filter(|w| *w > cur)
            .collect();
        wants.dedup();
        for want in wants {
            let mut sim = start(cfg, spec, cur, want);
            let Some(took) = sim.run_until(40, |s| s.replicas >= want) else {
                return Err(format!(
                    "{cur} -> {want}: stuck at {} (short)",
                    sim.replicas
                ));
            };
            // The next 4 minutes (inside the scale-down window) show the peak.
            sim.run(16);
            let peak = sim.samples.iter().map(|s| s.replicas).max().unwrap_or(0);
            let over = peak.saturating_sub(want);
            let bound = (spec.tolerance * f64::from(want)).floor() as u32;
            if over > bound {
                return Err(format!("{cur} -> {want}: peak {peak}, bound +{bound}"));
            }
            if sim.bounces > 0 {
                return Err(format!("{cur} -> {want}: bounced"));
            }
            worst.overshoot = worst.overshoot.max(over);
            worst.record(took, cur, want);
        }
    }
    Ok(worst)
}

/// Scale-in from every size to -1, half and 1: never below the wanted size, reaching it (or,
/// with a step above 1, a size inside the tolerance band above it), staying there.
pub fn scale_in(cfg: &SimConfig, spec: &SweepSpec) -> Result<Worst, String> {
    let mut worst = Worst::default();
    let step = spec.step.max(1);
    for cur in 2..=spec.largest {
        let mut wants = vec![cur - 1, cur.div_ceil(2), 1];
        wants.dedup();
        for want in wants {
            let mut sim = start(cfg, spec, cur, want);
            // In the band: the HPA may stop at any r with want >= (1 - tol) * r.
            let in_band = |r: u32| f64::from(want) >= (1.0 - spec.tolerance) * f64::from(r) - 1e-9;
            let limit = 24 + 4 * (cur - want).div_ceil(step) as usize;
            let took = sim.run_until(limit, |s| {
                s.replicas == want || (step > 1 && in_band(s.replicas) && s.ready() == s.replicas)
            });
            let lowest = sim.samples.iter().map(|s| s.replicas).min().unwrap_or(0);
            if lowest < want {
                return Err(format!("{cur} -> {want}: went down to {lowest}"));
            }
            let Some(took) = took else {
                return Err(format!("{cur} -> {want}: stuck at {}", sim.replicas));
            };
            worst.stopped_above = worst.stopped_above.max(sim.replicas - want);
            sim.run(24);
            if sim.replicas < want || sim.bounces > 0 {
                return Err(format!(
                    "{cur} -> {want}: moved on to {} ({} bounces)",
                    sim.replicas, sim.bounces
                ));
            }
            worst.record(took, cur, want);
        }
    }
    Ok(worst)
}
