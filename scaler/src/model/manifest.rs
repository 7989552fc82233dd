//! A ScaledObject manifest (as the operator renders it, the chart ships it or a user writes it)
//! read into the model: KEDA's side ([`ScaledObject`]: bounds, fallback), the HPA KEDA creates
//! from it ([`Hpa`]: `advanced.horizontalPodAutoscalerConfig.behavior`, with the defaults the
//! autoscaling/v2 API fills in) and the scaler's policy from the `external` trigger's metadata,
//! parsed by the scaler's own [`TriggerMetadata::parse`]. So a test can put exactly the rendered
//! object through the model instead of a hand-written copy of it.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::hpa::{Behavior, Hpa, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy, Target};
use super::keda::{Fallback, FallbackBehavior, MetricType, ScaledObject};
use super::sim::{Removal, Reporter, SimConfig};
use super::sweep::{self, SweepSpec, Worst};
use crate::metadata::TriggerMetadata;
use crate::policy::Policy;

/// Why a manifest cannot be modelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ScaledObject field `{field}`: {reason}")]
pub struct ManifestError {
    /// The JSON path of the offending field.
    pub field: String,
    /// What was expected.
    pub reason: String,
}

fn bad(field: &str, reason: impl Into<String>) -> ManifestError {
    ManifestError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Everything the model needs from one ScaledObject.
#[derive(Debug, Clone)]
pub struct Modelled {
    /// KEDA's view (bounds, metric type, fallback).
    pub keda: ScaledObject,
    /// The HPA KEDA creates (target filled in from the scaler's metric spec later).
    pub hpa: Hpa,
    /// The scaler's policy for the trigger's metadata.
    pub policy: Policy,
}

impl Modelled {
    /// The simulation of this ScaledObject with the shipped scaler (drain steering, graceful
    /// drain) on a cluster whose HPA honours `behavior.*.tolerance` when
    /// `configurable_tolerance` (Kubernetes 1.35+); 15 s syncs, pods Ready 20 s after creation,
    /// calls of 10 minutes on average.
    pub fn sim_config(&self, configurable_tolerance: bool) -> SimConfig {
        let mut hpa = self.hpa.clone();
        hpa.configurable_tolerance = configurable_tolerance;
        SimConfig {
            reporter: Reporter::Scaler(self.policy),
            removal: Removal::SteeredDrain,
            hpa,
            keda: self.keda.clone(),
            sync: Duration::from_secs(15),
            startup: Duration::from_secs(20),
            end_rate: 1.0 / 600.0,
        }
    }
}

impl Modelled {
    /// Sweeps every current size up to `largest` both ways ([`sweep`]) on a cluster that does
    /// (or not) honour `behavior.*.tolerance`; returns the scale-out and scale-in worst cases.
    pub fn sweep(
        &self,
        configurable_tolerance: bool,
        largest: u32,
    ) -> Result<(Worst, Worst), String> {
        let cfg = self.sim_config(configurable_tolerance);
        let t = cfg.hpa.tolerances();
        let spec = SweepSpec {
            per_pod: self.policy.target,
            max: self.keda.max,
            largest,
            tolerance: t.up.max(t.down),
            step: self.policy.scale_in_step,
        };
        Ok((
            sweep::scale_out(&cfg, &spec)?,
            sweep::scale_in(&cfg, &spec)?,
        ))
    }
}

/// Reads `obj` (a `keda.sh/v1alpha1` ScaledObject with one `external` trigger).
pub fn read(obj: &Value) -> Result<Modelled, ManifestError> {
    let spec = obj.get("spec").ok_or_else(|| bad("spec", "missing"))?;
    // KEDA's defaults: minReplicaCount 0, maxReplicaCount 100.
    let min = uint(spec, "spec.minReplicaCount", "minReplicaCount")?.unwrap_or(0);
    let max = uint(spec, "spec.maxReplicaCount", "maxReplicaCount")?.unwrap_or(100);
    let trigger = trigger(spec)?;
    let metric_type = match trigger.get("metricType").and_then(Value::as_str) {
        None | Some("AverageValue") => MetricType::AverageValue,
        Some("Value") => MetricType::Value,
        Some(other) => return Err(bad("triggers[].metricType", format!("{other:?}"))),
    };
    let namespace = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let metadata = string_map(trigger.get("metadata"));
    let md = TriggerMetadata::parse(namespace, &metadata)
        .map_err(|e| bad("triggers[].metadata", e.to_string()))?;
    let fallback = spec.get("fallback").map(fallback).transpose()?;
    let behavior = spec
        .pointer("/advanced/horizontalPodAutoscalerConfig/behavior")
        .map(behavior)
        .transpose()?;
    // KEDA keeps the HPA at least at 1 (0 is its own activation path).
    let hpa = Hpa::new(min.max(1), max, Target::AverageValue(1.0), behavior);
    Ok(Modelled {
        keda: ScaledObject::new(min, max, metric_type, fallback),
        hpa,
        policy: Policy::from_metadata(&md),
    })
}

fn trigger(spec: &Value) -> Result<&Value, ManifestError> {
    let triggers = spec
        .get("triggers")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("spec.triggers", "missing"))?;
    let external: Vec<&Value> = triggers
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("external"))
        .collect();
    match external.as_slice() {
        [one] if triggers.len() == 1 => Ok(one),
        _ => Err(bad(
            "spec.triggers",
            "the model takes exactly one trigger, of type external",
        )),
    }
}

fn string_map(v: Option<&Value>) -> HashMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn uint(obj: &Value, path: &str, key: &str) -> Result<Option<u32>, ManifestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(path, format!("not a count: {v}"))),
    }
}

fn fallback(v: &Value) -> Result<Fallback, ManifestError> {
    let behavior = match v.get("behavior").and_then(Value::as_str) {
        None | Some("static") => FallbackBehavior::Static,
        Some("currentReplicas") => FallbackBehavior::CurrentReplicas,
        Some("currentReplicasIfHigher") => FallbackBehavior::CurrentReplicasIfHigher,
        Some("currentReplicasIfLower") => FallbackBehavior::CurrentReplicasIfLower,
        Some(other) => return Err(bad("spec.fallback.behavior", format!("{other:?}"))),
    };
    Ok(Fallback {
        failure_threshold: uint(v, "spec.fallback.failureThreshold", "failureThreshold")?
            .ok_or_else(|| bad("spec.fallback.failureThreshold", "missing"))?,
        replicas: uint(v, "spec.fallback.replicas", "replicas")?
            .ok_or_else(|| bad("spec.fallback.replicas", "missing"))?,
        behavior,
    })
}

/// `behavior`, each direction defaulted as the autoscaling/v2 API does
/// (`pkg/apis/autoscaling/v2/defaults.go`: an absent direction takes the whole default rules, a
/// present one keeps its fields and takes the default only for what it leaves out).
fn behavior(v: &Value) -> Result<Behavior, ManifestError> {
    let defaults = Behavior::kubernetes_default();
    Ok(Behavior {
        up: rules(v.get("scaleUp"), defaults.up, "scaleUp")?,
        down: rules(v.get("scaleDown"), defaults.down, "scaleDown")?,
    })
}

fn rules(
    v: Option<&Value>,
    default: ScalingRules,
    dir: &str,
) -> Result<ScalingRules, ManifestError> {
    let Some(v) = v else { return Ok(default) };
    let field = |k: &str| format!("behavior.{dir}.{k}");
    let stabilization = match uint(
        v,
        &field("stabilizationWindowSeconds"),
        "stabilizationWindowSeconds",
    )? {
        Some(s) => Duration::from_secs(u64::from(s)),
        None => default.stabilization,
    };
    let select = match v.get("selectPolicy").and_then(Value::as_str) {
        None | Some("Max") => SelectPolicy::Max,
        Some("Min") => SelectPolicy::Min,
        Some("Disabled") => SelectPolicy::Disabled,
        Some(other) => return Err(bad(&field("selectPolicy"), format!("{other:?}"))),
    };
    let policies = match v.get("policies").and_then(Value::as_array) {
        None => default.policies,
        Some(list) => list
            .iter()
            .map(|p| policy(p, &field("policies[]")))
            .collect::<Result<_, _>>()?,
    };
    let tolerance = match v.get("tolerance") {
        None | Some(Value::Null) => None,
        Some(t) => Some(quantity(t).ok_or_else(|| bad(&field("tolerance"), format!("{t}")))?),
    };
    Ok(ScalingRules {
        stabilization,
        select,
        policies,
        tolerance,
    })
}

fn policy(p: &Value, field: &str) -> Result<ScalingPolicy, ManifestError> {
    let kind = match p.get("type").and_then(Value::as_str) {
        Some("Pods") => PolicyKind::Pods,
        Some("Percent") => PolicyKind::Percent,
        other => return Err(bad(&format!("{field}.type"), format!("{other:?}"))),
    };
    let value = uint(p, &format!("{field}.value"), "value")?
        .ok_or_else(|| bad(&format!("{field}.value"), "missing"))?;
    let period = uint(p, &format!("{field}.periodSeconds"), "periodSeconds")?
        .ok_or_else(|| bad(&format!("{field}.periodSeconds"), "missing"))?;
    Ok(ScalingPolicy {
        kind,
        value,
        period: Duration::from_secs(u64::from(period)),
    })
}

/// A resource.Quantity as the tolerance field takes it: a number, or a string like `"0"`,
/// `"0.05"` or `"50m"`.
fn quantity(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    match s.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(behavior: Value) -> Value {
        json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "gw", "namespace": "media"},
            "spec": {
                "minReplicaCount": 1, "maxReplicaCount": 20,
                "fallback": {"failureThreshold": 3, "replicas": 20, "behavior": "currentReplicasIfLower"},
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}},
                "triggers": [{"type": "external", "metadata": {
                    "scalerAddress": "s:9090", "source": "direct", "gateway": "gw", "targetAllocationsPerPod": "50",
                    "scaleInStep": "2", "hpaTolerance": "0"}}]
            }
        })
    }

    #[test]
    fn reads_bounds_fallback_policy_and_behavior() {
        let m = read(&object(json!({
            "scaleDown": {"stabilizationWindowSeconds": 300,
                          "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
                          "tolerance": "0"}
        })))
        .unwrap();
        assert_eq!(
            (m.keda.min, m.keda.max, m.hpa.min, m.hpa.max),
            (1, 20, 1, 20)
        );
        let fb = m.keda.fallback.unwrap();
        assert_eq!(fb.behavior, FallbackBehavior::CurrentReplicasIfLower);
        assert_eq!((m.policy.target, m.policy.scale_in_step), (50.0, 2));
        assert_eq!(m.policy.hpa_tolerance, 0.0);
        let b = m.hpa.behavior.unwrap();
        assert_eq!(b.down.policies[0].kind, PolicyKind::Pods);
        assert_eq!(b.down.policies[0].period, Duration::from_secs(60));
        assert_eq!(b.down.tolerance, Some(0.0));
        // scaleUp absent: the API's default rules
        assert_eq!(b.up, Behavior::kubernetes_default().up);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = read(&object(json!({"scaleUp": {"selectPolicy": "Most"}}))).unwrap_err();
        assert_eq!(e.field, "behavior.scaleUp.selectPolicy");
        let mut o = object(json!({}));
        o["spec"]["triggers"][0]["metadata"]["scaleInStep"] = json!("zero");
        let e = read(&o).unwrap_err();
        assert!(e.reason.contains("scaleInStep"), "{e}");
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity(&json!("50m")), Some(0.05));
        assert_eq!(quantity(&json!("0")), Some(0.0));
        assert_eq!(quantity(&json!(0.1)), Some(0.1));
        assert_eq!(quantity(&json!("x")), None);
    }
}
