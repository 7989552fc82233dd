//! The autoscaler of a Gateway whose Dataplane has `spec.autoscaling`: a KEDA ScaledObject with an
//! `external` trigger to the STUNner scaler when KEDA is served, otherwise an autoscaling/v2 HPA on
//! CPU. Both scale up fast and down slowly (every removed pod must drain its calls first, docs/ARCHITECTURE.md §4),
//! and both target the Gateway's Deployment, which leaves `replicas` to them.
//!
//! The ScaledObject is the configuration the scaler's report is designed for (and that the
//! HPA/KEDA model in `scaler::model` checks for every size from 1 to 200): an AverageValue
//! target of 1 replica, a scale-down policy of `scaleInStep` pods per minute (the HPA stops a
//! below-the-band report there), a fallback that keeps the current size, and, where the
//! cluster honours it, an HPA tolerance of 0 (told to the scaler as `hpaTolerance`).

use std::collections::BTreeMap;

use gateway_api::gateways::Gateway;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

use super::keda::{
    self, Advanced, Fallback, HpaConfig, ScaleTargetRef, ScaledObject, ScaledObjectSpec, Trigger,
};
use super::keys;
use super::options::RenderOptions;
use super::output::Rendered;
use super::service::owned_labels;
use crate::crd::AutoscalingSpec;
use crate::store::ObjectKey;

/// Scale-down stabilization window: the highest recommendation of the last 5 minutes wins.
pub const SCALE_DOWN_STABILIZATION_SECONDS: i32 = 300;
/// Period of the scale-down policy: at most `scaleInStep` pods removed per period. It must be
/// longer than the time the scaler takes to see a removed pod as draining (its cache interval
/// plus a KEDA poll), so one stale reading never removes a second step.
pub const SCALE_DOWN_PERIOD_SECONDS: i32 = 60;
/// CPU utilisation target of the HPA fallback, in percent of the requests.
pub const HPA_CPU_UTILIZATION: i32 = 70;
/// Consecutive scaler failures before KEDA's fallback replica count applies.
pub const FALLBACK_FAILURE_THRESHOLD: i32 = 3;
/// Seconds between KEDA polls of the scaler.
pub const POLLING_INTERVAL_SECONDS: i32 = 10;
/// The HPA tolerance rendered (both directions) where the cluster honours it.
pub const CONFIGURABLE_TOLERANCE: &str = "0";
/// The first Kubernetes minor (of major 1) where `HPAConfigurableTolerance` is on by default
/// (beta; alpha and off by default in 1.33 and 1.34).
pub const CONFIGURABLE_TOLERANCE_MINOR: u32 = 35;

/// Whether an API server of version `major.minor` (as `GET /version` spells them, e.g. `1` and
/// `35+`) honours `behavior.scaleUp/scaleDown.tolerance` by default.
pub fn configurable_tolerance_by_default(major: &str, minor: &str) -> bool {
    let num = |s: &str| {
        s.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
            .ok()
    };
    match (num(major), num(minor)) {
        (Some(1), Some(minor)) => minor >= CONFIGURABLE_TOLERANCE_MINOR,
        (Some(major), _) => major > 1,
        _ => false,
    }
}

/// Renders the autoscaler of `gw` into `out` (a ScaledObject when `opts.keda`, else an HPA).
pub(crate) fn render(
    gw: &Gateway,
    spec: &AutoscalingSpec,
    opts: &RenderOptions,
    owner: &OwnerReference,
    out: &mut Rendered,
) {
    let meta = metadata(gw, owner);
    if opts.keda {
        let tolerance = spec
            .configurable_tolerance
            .unwrap_or(opts.hpa_configurable_tolerance);
        out.scaled_objects
            .push(scaled_object(gw, spec, tolerance, meta));
    } else {
        out.hpas.push(hpa(gw, spec, meta));
    }
}

/// Name and namespace of the Gateway (and its Deployment), the Deployment's labels, the owner.
fn metadata(gw: &Gateway, owner: &OwnerReference) -> ObjectMeta {
    let mut labels: BTreeMap<String, String> = gw.labels().clone();
    labels.extend(owned_labels(gw));
    labels.insert(keys::APP.into(), keys::APP_VALUE.into());
    ObjectMeta {
        name: Some(gw.name_any()),
        namespace: gw.namespace(),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(
            keys::RELATED_GATEWAY_NAME.into(),
            ObjectKey::of(gw).to_string(),
        )])),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

fn scaled_object(
    gw: &Gateway,
    spec: &AutoscalingSpec,
    tolerance: bool,
    metadata: ObjectMeta,
) -> ScaledObject {
    let max = spec.effective_max();
    let mut behavior = behavior(spec);
    if tolerance {
        for rules in [&mut behavior.scale_up, &mut behavior.scale_down] {
            if let Some(r) = rules.as_mut() {
                r.tolerance = Some(Quantity(CONFIGURABLE_TOLERANCE.into()));
            }
        }
    }
    ScaledObject {
        api_version: format!("{}/{}", keda::GROUP, keda::VERSION),
        kind: keda::KIND.into(),
        metadata,
        spec: ScaledObjectSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: gw.name_any(),
            },
            polling_interval: POLLING_INTERVAL_SECONDS,
            min_replica_count: spec.effective_min(),
            max_replica_count: max,
            // A scaler outage keeps the current size (KEDA 2.17+: min(current, max)); an older
            // KEDA drops `behavior` and keeps the maximum, never shrinking the gateway either.
            fallback: Fallback {
                failure_threshold: FALLBACK_FAILURE_THRESHOLD,
                replicas: max,
                behavior: Some(keda::FALLBACK_CURRENT_IF_LOWER.into()),
            },
            advanced: Advanced {
                horizontal_pod_autoscaler_config: HpaConfig { behavior },
            },
            triggers: vec![Trigger {
                type_: "external".into(),
                metric_type: "AverageValue".into(),
                metadata: trigger_metadata(gw, spec, tolerance),
            }],
        },
    }
}

/// The scaler's trigger metadata (keys as parsed by `scaler::metadata`).
fn trigger_metadata(
    gw: &Gateway,
    spec: &AutoscalingSpec,
    tolerance: bool,
) -> BTreeMap<String, String> {
    let mut md = BTreeMap::from([
        ("scalerAddress".to_string(), spec.scaler_address.clone()),
        ("source".into(), spec.source.as_str().into()),
        ("gateway".into(), ObjectKey::of(gw).to_string()),
        (
            "targetAllocationsPerPod".into(),
            spec.target_allocations_per_pod.max(1).to_string(),
        ),
        ("scaleInStep".into(), spec.scale_in_step.max(1).to_string()),
        ("drainSteering".into(), "true".into()),
        ("minReplicas".into(), spec.effective_min().to_string()),
        ("maxReplicas".into(), spec.effective_max().to_string()),
    ]);
    if tolerance {
        md.insert("hpaTolerance".into(), CONFIGURABLE_TOLERANCE.into());
    }
    let optional = [
        ("serverAddress", &spec.server_address),
        ("query", &spec.query),
        ("customHeaders", &spec.custom_headers),
    ];
    for (k, v) in optional {
        if let Some(v) = v.as_ref().filter(|v| !v.trim().is_empty()) {
            md.insert(k.into(), v.clone());
        }
    }
    md
}

fn hpa(gw: &Gateway, spec: &AutoscalingSpec, metadata: ObjectMeta) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata,
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: gw.name_any(),
            },
            min_replicas: Some(spec.effective_min()),
            max_replicas: spec.effective_max(),
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(HPA_CPU_UTILIZATION),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            behavior: Some(behavior(spec)),
        },
        status: None,
    }
}

/// Slow scale-down (5 min stabilization, `scaleInStep` pods a minute), immediate scale-up (the
/// Kubernetes default: the larger of doubling and 4 pods every 15 s).
fn behavior(spec: &AutoscalingSpec) -> HorizontalPodAutoscalerBehavior {
    let policy = |type_: &str, value, period_seconds| HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds,
    };
    HorizontalPodAutoscalerBehavior {
        scale_down: Some(HPAScalingRules {
            stabilization_window_seconds: Some(SCALE_DOWN_STABILIZATION_SECONDS),
            policies: Some(vec![policy(
                "Pods",
                spec.scale_in_step.max(1),
                SCALE_DOWN_PERIOD_SECONDS,
            )]),
            ..Default::default()
        }),
        scale_up: Some(HPAScalingRules {
            stabilization_window_seconds: Some(0),
            select_policy: Some("Max".into()),
            policies: Some(vec![policy("Percent", 100, 15), policy("Pods", 4, 15)]),
            ..Default::default()
        }),
    }
}
