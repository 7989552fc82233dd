//! Replica policy (docs/ARCHITECTURE.md §4), pure: turns one [`Observation`] of the dataplane into the
//! desired replica count KEDA/HPA should land on, and the activity KEDA uses for 0↔1.
//!
//! ```text
//!  raw     = clamp(ceil(active / target), min, max)       active = allocations on non-draining pods
//!  raw >= ready  ->  desired = raw                          (scale-out is immediate)
//!  raw <  ready  ->  desired = max(raw, ready - scaleInStep, min(ready, ceil((active + draining) / target)))
//! ```
//! Draining pods never cause a scale-out (their sessions will not move to new pods). The last
//! floor keeps a scale-in from undershooting while draining pods still hold sessions: the
//! arrival stream those pods used to take now lands on the ready pods, so sizing the ready set
//! by `active` alone would scale in, then back out once the ready pods refill (the bounce the
//! simulation in `policy/tests.rs` demonstrates).
//!
//! The desired count is then *reported* so that the real HPA lands on it ([`Policy::report`]):
//! the HPA ignores a usage ratio within its tolerance of 1 (default 10 %), so a one-pod change
//! from 11 or more replicas, reported as is, never happens. The report is the replica count
//! the HPA computes from an AverageValue target of 1, moved just outside the tolerance band:
//!
//! ```text
//!  goal > cur:  report = max(goal, smallest n with n/cur > 1 + tol)   overshoot <= floor(tol*goal)
//!  goal < cur:  goal/cur < 1 - tol          -> report goal (the HPA's scale-down policy,
//!                                               scaleInStep pods per period, takes the steps)
//!               cur - scaleInStep >= goal    -> report the largest n with n/cur < 1 - tol: the
//!                                               policy stops the HPA at cur - scaleInStep
//!               otherwise                    -> report cur (within the band above the goal)
//! ```
//! `goal` is the scale-out target, or on scale-in the size the load and the draining sessions
//! need (the desired count without the `scaleInStep` limit).
//! `cur` is what the HPA divides by (`status.replicas`: every pod not terminating, Ready or
//! not). With a configurable HPA tolerance of 0 (Kubernetes 1.35+) the report is `t` exactly.

use crate::metadata::TriggerMetadata;

/// Allocations of one non-draining dataplane pod, as seen by a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLoad {
    /// Pod namespace (empty for static endpoints).
    pub namespace: String,
    /// Pod name (for static endpoints, the endpoint address).
    pub name: String,
    /// Allocations the pod currently holds.
    pub allocations: u64,
    /// Current value of the `controller.kubernetes.io/pod-deletion-cost` annotation, when known.
    pub deletion_cost: Option<String>,
}

/// One reading of a Gateway's dataplane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Allocations on non-draining pods: the load the ready replicas must carry.
    pub active_allocations: f64,
    /// Allocations still held by draining pods, when the source can see them.
    pub draining_allocations: Option<f64>,
    /// Non-draining pods seen (the current ready replicas), when the source can count them.
    pub ready_pods: Option<u32>,
    /// Draining pods seen.
    pub draining_pods: u32,
    /// Pods that are not draining but were left out of the reading (not Ready, or `/status`
    /// unreachable); the HPA still counts them in `status.replicas`.
    pub excluded_pods: u32,
    /// Of those, the ones that look broken rather than starting (unreachable, or not Ready
    /// after a container restart): each takes a replica slot and carries nothing.
    pub broken_pods: u32,
    /// Per-pod load of the non-draining pods (empty when the source only gives a total).
    pub pods: Vec<PodLoad>,
}

/// The per-ScaledObject replica policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Allocations one pod should carry (> 0).
    pub target: f64,
    /// Lower clamp.
    pub min: u32,
    /// Upper clamp (>= max(min, 1)).
    pub max: u32,
    /// Most pods removed per decision (>= 1).
    pub scale_in_step: u32,
    /// Active when allocations exceed this.
    pub activation_threshold: f64,
    /// The HPA's tolerance the report must escape (`hpaTolerance`, 0.1 unless configured).
    pub hpa_tolerance: f64,
}

impl Policy {
    /// The policy a ScaledObject's trigger metadata asks for.
    pub fn from_metadata(md: &TriggerMetadata) -> Self {
        Self {
            target: md.target_allocations_per_pod,
            min: md.min_replicas,
            max: md.max_replicas,
            scale_in_step: md.scale_in_step,
            activation_threshold: md.activation_threshold,
            hpa_tolerance: md.hpa_tolerance,
        }
    }

    /// Replicas needed to carry `allocations`, clamped to `[min, max]`.
    pub fn replicas_for(&self, allocations: f64) -> u32 {
        // `as` saturates: NaN -> 0, huge -> u32::MAX, both then clamped.
        let needed = (allocations.max(0.0) / self.target).ceil() as u32;
        needed.clamp(self.min, self.max)
    }

    /// Replicas the load needs: the active allocations' pods, plus one slot for each broken
    /// pod (the HPA counts it, the ReplicaSet does not replace it, it carries nothing).
    fn needed(&self, obs: &Observation) -> u32 {
        let raw = (obs.active_allocations.max(0.0) / self.target).ceil() as u32;
        raw.saturating_add(obs.broken_pods)
            .clamp(self.min, self.max)
    }

    /// The size the gateway may go down to: what the load needs, and no less than what the
    /// sessions still held by draining pods will need once their callers come back to the
    /// ready pods (capped at the ready pods: draining never causes a scale-out).
    fn goal(&self, obs: &Observation, ready: u32) -> u32 {
        let drain_floor = obs.draining_allocations.map_or(0, |d| {
            self.replicas_for(obs.active_allocations + d).min(ready)
        });
        self.needed(obs).max(drain_floor).clamp(self.min, self.max)
    }

    /// Desired replicas for `obs`: the goal, at most `scaleInStep` below the ready pods;
    /// `previous` (the last desired count) stands in for the ready replicas when the source
    /// cannot count pods.
    pub fn desired(&self, obs: &Observation, previous: Option<u32>) -> u32 {
        let raw = self.needed(obs);
        let Some(ready) = obs.ready_pods.or(previous) else {
            return raw;
        };
        if raw >= ready {
            return raw;
        }
        let step_floor = ready.saturating_sub(self.scale_in_step);
        self.goal(obs, ready)
            .max(step_floor)
            .clamp(self.min, self.max)
    }

    /// The desired count for `obs` and the metric value to report (see the module header);
    /// `previous` as in [`Policy::desired`]. The report aims at the goal, not at the
    /// step-limited desired count: the HPA's scale-down policy takes the steps, and a steady
    /// recommendation keeps its stabilization window from holding each step for 5 minutes.
    pub fn decide(&self, obs: &Observation, previous: Option<u32>) -> (u32, u32) {
        let desired = self.desired(obs, previous);
        let Some(ready) = obs.ready_pods.or(previous) else {
            return (desired, desired);
        };
        let goal = if desired >= ready {
            desired
        } else {
            self.goal(obs, ready)
        };
        let current = obs.ready_pods.map_or(ready, |r| r + obs.excluded_pods);
        (desired, self.report(goal, current))
    }

    /// The replica count to report (against an AverageValue target of 1) so that an HPA at
    /// `current` replicas (its `status.replicas`), with tolerance `hpa_tolerance` and a
    /// scale-down policy of `scale_in_step` pods per period, lands on `goal`: at once and at
    /// most `floor(hpa_tolerance * goal)` above it when scaling out; when scaling in, at most
    /// `scale_in_step` per period and never below it, stopping within the tolerance band above
    /// it only when `scale_in_step` is too coarse to get closer.
    pub fn report(&self, goal: u32, current: u32) -> u32 {
        if current == 0 || goal == current {
            return goal;
        }
        if goal > current {
            let mut n = goal.max(current + 1);
            while self.within_tolerance(n, current) {
                n += 1;
            }
            return n;
        }
        if !self.within_tolerance(goal, current) {
            goal
        } else if current.saturating_sub(self.scale_in_step) >= goal {
            let mut n = goal;
            while n > 0 && self.within_tolerance(n, current) {
                n -= 1;
            }
            n
        } else {
            current
        }
    }

    /// The HPA's test for an AverageValue target of 1 (`GetExternalPerPodMetricReplicas`, in
    /// milli-units as KEDA serves them): is `reported / current` too close to 1 to act on?
    fn within_tolerance(&self, reported: u32, current: u32) -> bool {
        let ratio = (f64::from(reported) * 1000.0) / (1000.0 * f64::from(current));
        1.0 - self.hpa_tolerance <= ratio && ratio <= 1.0 + self.hpa_tolerance
    }

    /// KEDA activity: allocations above `activationThreshold`.
    pub fn is_active(&self, obs: &Observation) -> bool {
        obs.active_allocations > self.activation_threshold
    }
}

#[cfg(test)]
mod tests;
