//! KEDA's external-scaler path for one ScaledObject with one `external` trigger, transcribed
//! from kedacore/keda: `pkg/scalers/external_scaler.go` (`buildMetricSpecs`,
//! `GetMetricsAndActivity`), `pkg/scalers/scaler.go` (`GetMetricTargetType`),
//! `pkg/fallback/fallback.go` (`GetMetricsWithFallback`, `doFallback`) and
//! `pkg/scaling/executor/scale_scaledobjects.go` (`RequestScale`: the 0 <-> 1 activation that the
//! HPA cannot do).

use proto::keda::{MetricSpec, MetricValue};

use super::hpa::Target;

/// The trigger's `metricType` (KEDA's default is AverageValue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricType {
    /// `AverageValue` (the default when the trigger names none).
    #[default]
    AverageValue,
    /// `Value`.
    Value,
}

/// `fallback.behavior` (KEDA 2.17+; older KEDA prunes the field and acts as `static`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FallbackBehavior {
    /// `fallback.replicas`.
    #[default]
    Static,
    /// The target's current `spec.replicas`.
    CurrentReplicas,
    /// max(current, `fallback.replicas`).
    CurrentReplicasIfHigher,
    /// min(current, `fallback.replicas`).
    CurrentReplicasIfLower,
}

/// `spec.fallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// `failureThreshold`: the fallback applies after more consecutive failures than this.
    pub failure_threshold: u32,
    /// `replicas`.
    pub replicas: u32,
    /// `behavior`.
    pub behavior: FallbackBehavior,
}

/// A ScaledObject as KEDA runs it, with its fallback health counter.
#[derive(Debug, Clone)]
pub struct ScaledObject {
    /// `minReplicaCount`.
    pub min: u32,
    /// `maxReplicaCount`.
    pub max: u32,
    /// The trigger's `metricType`.
    pub metric_type: MetricType,
    /// `spec.fallback`.
    pub fallback: Option<Fallback>,
    failures: u32,
}

impl ScaledObject {
    /// A ScaledObject with no failures recorded.
    pub fn new(min: u32, max: u32, metric_type: MetricType, fallback: Option<Fallback>) -> Self {
        Self {
            min,
            max,
            metric_type,
            fallback,
            failures: 0,
        }
    }

    /// The HPA metric target KEDA renders from the scaler's `GetMetricSpec` answer
    /// (`buildMetricSpecs`: `targetSizeFloat` when > 0, else `targetSize`).
    pub fn target(&self, spec: &MetricSpec) -> Target {
        let size = if spec.target_size_float > 0.0 {
            spec.target_size_float
        } else {
            spec.target_size as f64
        };
        match self.metric_type {
            MetricType::AverageValue => Target::AverageValue(size),
            MetricType::Value => Target::Value(size),
        }
    }

    /// The metric value KEDA serves the HPA for a `GetMetrics` answer (`GetMetricsAndActivity`:
    /// `metricValueFloat` when > 0, else `metricValue`; the HPA sums every value).
    pub fn usage(values: &[MetricValue]) -> f64 {
        values
            .iter()
            .map(|v| {
                if v.metric_value_float > 0.0 {
                    v.metric_value_float
                } else {
                    v.metric_value as f64
                }
            })
            .sum()
    }

    /// What the HPA gets for one metrics query (`GetMetricsWithFallback`): the scaler's values
    /// when it answered; after more than `failureThreshold` consecutive failures, the fallback
    /// replicas times the target (`doFallback`); otherwise no metric (the HPA keeps its size).
    /// `spec_replicas` and `ready_pods` are the target's, as KEDA reads them.
    pub fn serve(
        &mut self,
        answer: Result<&[MetricValue], ()>,
        target: Target,
        spec_replicas: u32,
        ready_pods: u32,
    ) -> Option<f64> {
        match answer {
            Ok(values) => {
                self.failures = 0;
                Some(Self::usage(values))
            }
            Err(()) => {
                self.failures += 1;
                let fb = self.fallback?;
                if self.failures <= fb.failure_threshold {
                    return None;
                }
                let replicas = f64::from(match fb.behavior {
                    FallbackBehavior::Static => fb.replicas,
                    FallbackBehavior::CurrentReplicas => spec_replicas,
                    FallbackBehavior::CurrentReplicasIfHigher => spec_replicas.max(fb.replicas),
                    FallbackBehavior::CurrentReplicasIfLower => spec_replicas.min(fb.replicas),
                });
                match target {
                    Target::AverageValue(t) => Some(t * replicas),
                    // Value targets are divided by the ready replicas; none ready is no fallback.
                    Target::Value(t) if ready_pods > 0 => {
                        Some(t * replicas / f64::from(ready_pods))
                    }
                    Target::Value(_) => None,
                }
            }
        }
    }

    /// KEDA's own scaling (`RequestScale`), which acts only around zero: an active trigger on a
    /// target at 0 replicas scales it to max(minReplicaCount, 1); an inactive one with
    /// `minReplicaCount: 0` scales it to 0 (after the cooldown, not modelled). Otherwise the HPA
    /// owns the replica count and this returns `None`.
    pub fn activation(&self, active: bool, current: u32) -> Option<u32> {
        match (active, current) {
            (true, 0) => Some(self.min.max(1)),
            (false, c) if c > 0 && self.min == 0 => Some(0),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(int: i64, float: f64) -> MetricValue {
        MetricValue {
            metric_name: "m".into(),
            metric_value: int,
            metric_value_float: float,
        }
    }

    #[test]
    fn float_fields_win_when_positive() {
        let so = ScaledObject::new(1, 10, MetricType::default(), None);
        let spec = MetricSpec {
            metric_name: "m".into(),
            target_size: 7,
            target_size_float: 0.0,
        };
        assert_eq!(so.target(&spec), Target::AverageValue(7.0));
        assert_eq!(ScaledObject::usage(&[value(3, 2.5), value(4, 0.0)]), 6.5);
    }

    #[test]
    fn fallback_after_the_threshold_by_behavior() {
        let fb = |behavior| Fallback {
            failure_threshold: 2,
            replicas: 10,
            behavior,
        };
        let t = Target::AverageValue(1.0);
        let mut so = ScaledObject::new(
            1,
            10,
            MetricType::AverageValue,
            Some(fb(FallbackBehavior::Static)),
        );
        assert_eq!(so.serve(Err(()), t, 4, 4), None);
        assert_eq!(so.serve(Err(()), t, 4, 4), None);
        assert_eq!(
            so.serve(Err(()), t, 4, 4),
            Some(10.0),
            "static: the maximum"
        );
        so.fallback = Some(fb(FallbackBehavior::CurrentReplicasIfLower));
        assert_eq!(
            so.serve(Err(()), t, 4, 4),
            Some(4.0),
            "keeps the current size"
        );
        assert_eq!(so.serve(Ok(&[value(6, 0.0)]), t, 4, 4), Some(6.0));
        assert_eq!(
            so.serve(Err(()), t, 4, 4),
            None,
            "counter reset by a success"
        );
    }

    #[test]
    fn activation_only_around_zero() {
        let so = ScaledObject::new(1, 10, MetricType::AverageValue, None);
        assert_eq!(so.activation(true, 0), Some(1));
        assert_eq!(so.activation(false, 3), None);
        let to_zero = ScaledObject::new(0, 10, MetricType::AverageValue, None);
        assert_eq!(to_zero.activation(false, 3), Some(0));
    }
}
