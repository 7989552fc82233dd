//! The Kubernetes HPA controller for one External metric, transcribed from kubernetes
//! `pkg/controller/podautoscaler` (`replica_calculator.go`, `horizontal.go`) and the autoscaling/v2
//! defaults (`pkg/apis/autoscaling/v2/defaults.go`). Time is a [`Duration`] since an arbitrary
//! origin, given by the caller on every call.

use std::time::Duration;

/// How a policy limits the change in one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// At most `value` pods.
    Pods,
    /// At most `value` percent of the replicas at the start of the period.
    Percent,
}

/// One `behavior.scaleUp/scaleDown.policies[]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingPolicy {
    /// Pods or Percent.
    pub kind: PolicyKind,
    /// The limit.
    pub value: u32,
    /// The period the limit applies to.
    pub period: Duration,
}

/// `selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectPolicy {
    /// The policy allowing the biggest change (the default).
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `behavior.scaleUp` or `behavior.scaleDown`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    pub stabilization: Duration,
    /// `selectPolicy`.
    pub select: SelectPolicy,
    /// `policies`.
    pub policies: Vec<ScalingPolicy>,
    /// `tolerance` (KEP-4951); honoured only when the cluster has configurable tolerance.
    pub tolerance: Option<f64>,
}

/// `spec.behavior`.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    /// `scaleUp`.
    pub up: ScalingRules,
    /// `scaleDown`.
    pub down: ScalingRules,
}

impl ScalingRules {
    /// One policy, `selectPolicy: Max`, no tolerance.
    pub fn one(stabilization: Duration, kind: PolicyKind, value: u32, period: Duration) -> Self {
        Self {
            stabilization,
            select: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                kind,
                value,
                period,
            }],
            tolerance: None,
        }
    }
}

impl Behavior {
    /// The API defaults (`GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules` in
    /// `pkg/apis/autoscaling/v2/defaults.go`): up with no stabilization, max(4 pods, 100 %) per
    /// 15 s; down with the controller's stabilization window (300 s), 100 % per 15 s.
    pub fn kubernetes_default() -> Self {
        let s15 = Duration::from_secs(15);
        let mut up = ScalingRules::one(Duration::ZERO, PolicyKind::Pods, 4, s15);
        up.policies.push(ScalingPolicy {
            kind: PolicyKind::Percent,
            value: 100,
            period: s15,
        });
        Self {
            up,
            down: ScalingRules::one(Duration::from_secs(300), PolicyKind::Percent, 100, s15),
        }
    }
}

/// The behavior of the ScaledObject the operator renders for a Gateway (`scaleInStep` = `step`):
/// scale-up as the Kubernetes default without stabilization (100 % or 4 pods per 15 s), scale-down
/// `step` pods a minute after a 5-minute window, and with `tolerance` (Kubernetes 1.35+) a
/// tolerance of 0 both ways. `operator/tests/render/autoscaling.rs` reads the operator's actual
/// render back through [`super::manifest`], so this copy cannot drift unnoticed from it.
pub fn stunner_behavior(step: u32, tolerance: bool) -> Behavior {
    let s15 = Duration::from_secs(15);
    let mut up = ScalingRules::one(Duration::ZERO, PolicyKind::Percent, 100, s15);
    up.policies.push(ScalingPolicy {
        kind: PolicyKind::Pods,
        value: 4,
        period: s15,
    });
    let mut down = ScalingRules::one(
        Duration::from_secs(300),
        PolicyKind::Pods,
        step,
        Duration::from_secs(60),
    );
    if tolerance {
        up.tolerance = Some(0.0);
        down.tolerance = Some(0.0);
    }
    Behavior { up, down }
}

/// The External metric target of the HPA (what KEDA's `GetMetricSpecForScaling` produced).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// `target.type: Value`: the summed metric is compared with this.
    Value(f64),
    /// `target.type: AverageValue`: the summed metric divided by the replicas is compared with this.
    AverageValue(f64),
}

/// What the HPA reads from the target's `/scale` subresource and the pod lister.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleView {
    /// `scale.spec.replicas`: the HPA's `currentReplicas`.
    pub spec_replicas: u32,
    /// `scale.status.replicas`: non-terminated pods (ready or not).
    pub status_replicas: u32,
    /// Running and Ready pods (`getReadyPodsCount`).
    pub ready_pods: u32,
}

/// The HPA object and the controller's memory of it.
#[derive(Debug, Clone)]
pub struct Hpa {
    /// `minReplicas`.
    pub min: u32,
    /// `maxReplicas`.
    pub max: u32,
    /// The metric target.
    pub target: Target,
    /// `spec.behavior`; `None` takes the legacy path (`normalizeDesiredReplicas`).
    pub behavior: Option<Behavior>,
    /// `--horizontal-pod-autoscaler-tolerance` of kube-controller-manager (default 0.1).
    pub cluster_tolerance: f64,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (default 5 min), legacy path only.
    pub downscale_stabilization: Duration,
    /// Whether the `HPAConfigurableTolerance` feature gate is on (alpha, off by default, in
    /// 1.33-1.34; beta, on by default, from 1.35 per `pkg/features/kube_features.go`).
    pub configurable_tolerance: bool,
    recommendations: Vec<(Duration, u32)>,
    up_events: Vec<(Duration, u32)>,
    down_events: Vec<(Duration, u32)>,
}

/// The cluster-wide default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const DEFAULT_TOLERANCE: f64 = 0.1;

/// Scale-down and scale-up tolerances (`Tolerances` in `replica_calculator.go`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// Below `1 - down` the HPA scales in.
    pub down: f64,
    /// Above `1 + up` the HPA scales out.
    pub up: f64,
}

impl Tolerances {
    /// `Tolerances.isWithin`: no change when `1 - down <= ratio <= 1 + up`.
    pub fn is_within(&self, ratio: f64) -> bool {
        1.0 - self.down <= ratio && ratio <= 1.0 + self.up
    }
}

/// A quantity as the HPA sees it: KEDA sends milli-units (`GenerateMetricInMili`), the HPA
/// computes with `MilliValue()`.
fn milli(v: f64) -> f64 {
    (v * 1000.0).round()
}

impl Hpa {
    /// An HPA with no history.
    pub fn new(min: u32, max: u32, target: Target, behavior: Option<Behavior>) -> Self {
        Self {
            min,
            max,
            target,
            behavior,
            cluster_tolerance: DEFAULT_TOLERANCE,
            downscale_stabilization: Duration::from_secs(300),
            configurable_tolerance: false,
            recommendations: Vec::new(),
            up_events: Vec::new(),
            down_events: Vec::new(),
        }
    }

    /// The tolerances in force (`tolerancesForHpa` in `horizontal.go`): the per-direction
    /// `behavior.*.tolerance` when the feature gate is on and the field set, else the cluster's.
    pub fn tolerances(&self) -> Tolerances {
        let pick = |rules: Option<&ScalingRules>| {
            rules
                .and_then(|r| r.tolerance)
                .filter(|_| self.configurable_tolerance)
                .unwrap_or(self.cluster_tolerance)
        };
        Tolerances {
            down: pick(self.behavior.as_ref().map(|b| &b.down)),
            up: pick(self.behavior.as_ref().map(|b| &b.up)),
        }
    }

    /// The replica count the metric alone asks for (`computeStatusForExternalMetric`):
    /// AverageValue goes through `GetExternalPerPodMetricReplicas` on `status.replicas`, Value
    /// through `GetExternalMetricReplicas` / `getUsageRatioReplicaCount` on `spec.replicas` and
    /// the ready pods.
    pub fn metric_replicas(&self, scale: ScaleView, usage: f64) -> u32 {
        let tol = self.tolerances();
        let usage = milli(usage);
        match self.target {
            Target::AverageValue(t) => {
                let cur = scale.status_replicas;
                let ratio = usage / (milli(t) * f64::from(cur));
                if tol.is_within(ratio) {
                    cur
                } else {
                    to_replicas((usage / milli(t)).ceil())
                }
            }
            Target::Value(t) => {
                let ratio = usage / milli(t);
                let cur = scale.spec_replicas;
                if cur == 0 {
                    to_replicas(ratio.ceil())
                } else if tol.is_within(ratio) {
                    cur
                } else {
                    to_replicas((ratio * f64::from(scale.ready_pods)).ceil())
                }
            }
        }
    }

    /// One sync of the HPA (`reconcileAutoscaler`): `usage` is the summed metric KEDA served,
    /// `None` when the metric could not be read (then nothing changes). Returns the new
    /// `spec.replicas`.
    pub fn reconcile(&mut self, now: Duration, scale: ScaleView, usage: Option<f64>) -> u32 {
        let cur = scale.spec_replicas;
        let desired = if cur == 0 && self.min != 0 {
            return 0; // autoscaling is disabled for a target scaled to zero
        } else if cur > self.max {
            self.max
        } else if cur < self.min {
            self.min
        } else {
            let Some(usage) = usage else { return cur };
            let proposal = self.metric_replicas(scale, usage);
            match self.behavior.clone() {
                Some(b) => self.normalize_with_behaviors(now, &b, cur, proposal),
                None => self.normalize_legacy(now, cur, proposal),
            }
        };
        if desired != cur && self.behavior.is_some() {
            self.store_scale_event(now, cur, desired);
        }
        desired
    }

    /// `normalizeDesiredReplicas`: max over the downscale window, then `convertDesiredReplicasWithRules`.
    fn normalize_legacy(&mut self, now: Duration, cur: u32, proposal: u32) -> u32 {
        let window = self.downscale_stabilization;
        self.recommendations
            .retain(|(t, _)| now.saturating_sub(*t) <= window);
        let stabilized = self
            .recommendations
            .iter()
            .map(|(_, r)| *r)
            .fold(proposal, u32::max);
        self.recommendations.push((now, proposal));
        let up_limit = (cur * 2).max(4); // calculateScaleUpLimit
        stabilized.clamp(self.min, self.max.min(up_limit).max(self.min))
    }

    /// `normalizeDesiredReplicasWithBehaviors`: stabilize, then the rate limits and bounds.
    fn normalize_with_behaviors(
        &mut self,
        now: Duration,
        b: &Behavior,
        cur: u32,
        proposal: u32,
    ) -> u32 {
        let stabilized = self.stabilize(now, b, cur, proposal);
        self.rate_limit(now, b, cur, stabilized)
    }

    /// `stabilizeRecommendationWithBehaviors`: the current replicas brought within [min of the
    /// recommendations in the up window, max of those in the down window]; the raw proposal is
    /// recorded.
    fn stabilize(&mut self, now: Duration, b: &Behavior, cur: u32, proposal: u32) -> u32 {
        // `rec.timestamp.After(now - window)`: a zero window keeps no past recommendation.
        let in_window = |t: Duration, w: Duration| t + w > now;
        let (mut up, mut down) = (proposal, proposal);
        for &(t, r) in &self.recommendations {
            if in_window(t, b.up.stabilization) {
                up = up.min(r);
            }
            if in_window(t, b.down.stabilization) {
                down = down.max(r);
            }
        }
        let keep = b.up.stabilization.max(b.down.stabilization);
        self.recommendations
            .retain(|(t, _)| now.saturating_sub(*t) < keep);
        self.recommendations.push((now, proposal));
        cur.max(up).min(down)
    }

    /// `convertDesiredReplicasWithBehaviorRate`.
    fn rate_limit(&self, now: Duration, b: &Behavior, cur: u32, desired: u32) -> u32 {
        if desired > cur {
            let limit = self.scale_up_limit(now, &b.up, cur).max(cur);
            desired.min(self.max.min(limit))
        } else if desired < cur {
            let limit = self.scale_down_limit(now, &b.down, cur).min(cur);
            desired.max(self.min.max(limit))
        } else {
            desired
        }
    }

    /// `getReplicasChangePerPeriod`.
    fn changed_in(events: &[(Duration, u32)], now: Duration, period: Duration) -> i64 {
        events
            .iter()
            .filter(|(t, _)| now.saturating_sub(*t) < period)
            .map(|(_, n)| i64::from(*n))
            .sum()
    }

    /// `calculateScaleUpLimitWithScalingRules`.
    fn scale_up_limit(&self, now: Duration, rules: &ScalingRules, cur: u32) -> u32 {
        let proposals = rules.policies.iter().map(|p| {
            let start = i64::from(cur) - Self::changed_in(&self.up_events, now, p.period)
                + Self::changed_in(&self.down_events, now, p.period);
            match p.kind {
                PolicyKind::Pods => start + i64::from(p.value),
                PolicyKind::Percent => {
                    (start as f64 * (1.0 + f64::from(p.value) / 100.0)).ceil() as i64
                }
            }
        });
        let limit = match rules.select {
            SelectPolicy::Disabled => return cur,
            SelectPolicy::Min => proposals.min(),
            SelectPolicy::Max => proposals.max(),
        };
        clamp_u32(limit.unwrap_or(i64::from(cur)))
    }

    /// `calculateScaleDownLimitWithBehaviors`.
    fn scale_down_limit(&self, now: Duration, rules: &ScalingRules, cur: u32) -> u32 {
        let proposals = rules.policies.iter().map(|p| {
            let start = i64::from(cur) - Self::changed_in(&self.up_events, now, p.period)
                + Self::changed_in(&self.down_events, now, p.period);
            match p.kind {
                PolicyKind::Pods => start - i64::from(p.value),
                PolicyKind::Percent => (start as f64 * (1.0 - f64::from(p.value) / 100.0)) as i64,
            }
        });
        let limit = match rules.select {
            SelectPolicy::Disabled => return cur,
            // For scaling down the smallest change is the largest value.
            SelectPolicy::Min => proposals.max(),
            SelectPolicy::Max => proposals.min(),
        };
        clamp_u32(limit.unwrap_or(i64::from(cur)))
    }

    /// `storeScaleEvent` (events older than the longest period are dropped instead of reused).
    fn store_scale_event(&mut self, now: Duration, prev: u32, new: u32) {
        let Some(b) = &self.behavior else { return };
        let longest = |r: &ScalingRules| r.policies.iter().map(|p| p.period).max();
        let (events, keep) = if new > prev {
            (&mut self.up_events, longest(&b.up))
        } else {
            (&mut self.down_events, longest(&b.down))
        };
        let keep = keep.unwrap_or_default();
        events.retain(|(t, _)| now.saturating_sub(*t) < keep);
        events.push((now, new.abs_diff(prev)));
    }
}

fn to_replicas(v: f64) -> u32 {
    // `as` saturates (NaN -> 0), like the int32 bound of the upstream code.
    v as u32
}

fn clamp_u32(v: i64) -> u32 {
    v.clamp(0, i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: u32) -> ScaleView {
        ScaleView {
            spec_replicas: n,
            status_replicas: n,
            ready_pods: n,
        }
    }

    #[test]
    fn tolerance_band_swallows_small_changes() {
        let h = Hpa::new(1, 300, Target::AverageValue(1.0), None);
        assert_eq!(
            h.metric_replicas(view(11), 12.0),
            11,
            "12/11 = 1.09 is within 10%"
        );
        assert_eq!(
            h.metric_replicas(view(9), 10.0),
            10,
            "10/9 = 1.11 is outside"
        );
        assert_eq!(
            h.metric_replicas(view(10), 9.0),
            10,
            "0.9 is within (inclusive)"
        );
        assert_eq!(h.metric_replicas(view(10), 8.9), 9);
    }

    #[test]
    fn value_target_scales_the_ready_pods() {
        let h = Hpa::new(1, 300, Target::Value(100.0), None);
        let scale = ScaleView {
            spec_replicas: 10,
            status_replicas: 10,
            ready_pods: 8,
        };
        assert_eq!(h.metric_replicas(scale, 150.0), 12, "ceil(1.5 * 8 ready)");
    }

    #[test]
    fn configurable_tolerance_needs_the_gate() {
        let mut b = Behavior::kubernetes_default();
        b.up.tolerance = Some(0.0);
        b.down.tolerance = Some(0.0);
        let mut h = Hpa::new(1, 300, Target::AverageValue(1.0), Some(b));
        assert_eq!(h.metric_replicas(view(11), 12.0), 11, "gate off: 10%");
        h.configurable_tolerance = true;
        assert_eq!(h.metric_replicas(view(11), 12.0), 12);
        assert_eq!(h.metric_replicas(view(20), 19.0), 19);
    }

    #[test]
    fn scale_down_policy_limits_per_period_and_window_delays() {
        let b = Behavior {
            up: ScalingRules::one(
                Duration::ZERO,
                PolicyKind::Percent,
                100,
                Duration::from_secs(15),
            ),
            down: ScalingRules::one(
                Duration::from_secs(60),
                PolicyKind::Pods,
                1,
                Duration::from_secs(60),
            ),
        };
        let mut h = Hpa::new(1, 100, Target::AverageValue(1.0), Some(b));
        let s = |t| Duration::from_secs(t);
        assert_eq!(h.reconcile(s(0), view(20), Some(20.0)), 20);
        assert_eq!(
            h.reconcile(s(15), view(20), Some(5.0)),
            20,
            "window holds 20"
        );
        assert_eq!(
            h.reconcile(s(60), view(20), Some(5.0)),
            19,
            "one pod per period"
        );
        assert_eq!(
            h.reconcile(s(75), view(19), Some(5.0)),
            19,
            "period not over"
        );
        assert_eq!(h.reconcile(s(120), view(19), Some(5.0)), 18);
        // Scale-up: doubling per 15 s, then the max.
        assert_eq!(h.reconcile(s(135), view(18), Some(90.0)), 36);
        assert_eq!(
            h.reconcile(s(136), view(36), Some(90.0)),
            36,
            "period used up"
        );
        assert_eq!(
            h.reconcile(s(151), view(36), Some(90.0)),
            72,
            "doubling again"
        );
        assert_eq!(
            h.reconcile(s(166), view(72), Some(90.0)),
            90,
            "then the metric"
        );
    }

    #[test]
    fn legacy_path_doubles_at_most() {
        let mut h = Hpa::new(1, 100, Target::AverageValue(1.0), None);
        assert_eq!(h.reconcile(Duration::ZERO, view(3), Some(50.0)), 6);
        assert_eq!(h.reconcile(Duration::ZERO, view(1), Some(50.0)), 4);
    }
}
