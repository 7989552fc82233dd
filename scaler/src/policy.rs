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
        }
    }

    /// Replicas needed to carry `allocations`, clamped to `[min, max]`.
    pub fn replicas_for(&self, allocations: f64) -> u32 {
        // `as` saturates: NaN -> 0, huge -> u32::MAX, both then clamped.
        let needed = (allocations.max(0.0) / self.target).ceil() as u32;
        needed.clamp(self.min, self.max)
    }

    /// Desired replicas for `obs`; `previous` (the last reported desired count) stands in for
    /// the ready replicas when the source cannot count pods.
    pub fn desired(&self, obs: &Observation, previous: Option<u32>) -> u32 {
        let raw = self.replicas_for(obs.active_allocations);
        let Some(ready) = obs.ready_pods.or(previous) else {
            return raw;
        };
        if raw >= ready {
            return raw;
        }
        let step_floor = ready.saturating_sub(self.scale_in_step);
        let drain_floor = obs.draining_allocations.map_or(0, |d| {
            self.replicas_for(obs.active_allocations + d).min(ready)
        });
        raw.max(step_floor)
            .max(drain_floor)
            .clamp(self.min, self.max)
    }

    /// KEDA activity: allocations above `activationThreshold`.
    pub fn is_active(&self, obs: &Observation) -> bool {
        obs.active_allocations > self.activation_threshold
    }
}

#[cfg(test)]
mod tests;
