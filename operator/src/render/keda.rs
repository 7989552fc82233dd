//! The slice of KEDA's `keda.sh/v1alpha1` `ScaledObject` the operator renders, as plain serde
//! types (no KEDA crate): the renderer builds it typed, the updater applies it through a kube
//! `DynamicObject` API described by [`api_resource`].

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, GroupVersionKind};
use serde::{Deserialize, Serialize};

/// API group of KEDA.
pub const GROUP: &str = "keda.sh";
/// Served version of ScaledObject.
pub const VERSION: &str = "v1alpha1";
/// Kind of the scaled object.
pub const KIND: &str = "ScaledObject";

/// The kube API description of ScaledObject (plural `scaledobjects`, namespaced).
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, VERSION, KIND))
}

/// A KEDA ScaledObject.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObject {
    /// Always `keda.sh/v1alpha1`.
    pub api_version: String,
    /// Always `ScaledObject`.
    pub kind: String,
    /// Name (= the Gateway's), namespace, labels, owner reference.
    pub metadata: ObjectMeta,
    /// What to scale and on which trigger.
    pub spec: ScaledObjectSpec,
}

/// Spec of a ScaledObject.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    /// The scaled workload (the Gateway's Deployment).
    pub scale_target_ref: ScaleTargetRef,
    /// Seconds between two trigger polls of KEDA.
    pub polling_interval: i32,
    /// Lower bound of the replica count.
    pub min_replica_count: i32,
    /// Upper bound of the replica count.
    pub max_replica_count: i32,
    /// Replica count KEDA keeps while the scaler keeps failing.
    pub fallback: Fallback,
    /// Settings of the HPA KEDA creates.
    pub advanced: Advanced,
    /// The triggers (one `external` trigger to the STUNner scaler).
    pub triggers: Vec<Trigger>,
}

/// The workload a ScaledObject scales.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// Name of the workload, in the ScaledObject's namespace.
    pub name: String,
}

/// `fallback.behavior` keeping the current size, capped by `fallback.replicas` (KEDA 2.17+).
pub const FALLBACK_CURRENT_IF_LOWER: &str = "currentReplicasIfLower";

/// KEDA's behaviour when the scaler fails.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// Consecutive failures before the fallback applies.
    pub failure_threshold: i32,
    /// Replicas to run meanwhile (with `behavior`, the cap or floor of the current size).
    pub replicas: i32,
    /// `static` (KEDA's default: `replicas`), `currentReplicas`, `currentReplicasIfHigher` or
    /// `currentReplicasIfLower` (KEDA 2.17+; an older KEDA prunes the field and acts as static).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
}

/// `spec.advanced` of a ScaledObject.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Advanced {
    /// Settings of the generated HPA.
    pub horizontal_pod_autoscaler_config: HpaConfig,
}

/// `spec.advanced.horizontalPodAutoscalerConfig`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HpaConfig {
    /// The HPA scale-up/scale-down behaviour (same type as an autoscaling/v2 HPA's).
    pub behavior: HorizontalPodAutoscalerBehavior,
}

/// One ScaledObject trigger.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// Trigger type (`external`).
    #[serde(rename = "type")]
    pub type_: String,
    /// How the metric is compared with the target (`AverageValue`, required by `fallback`).
    pub metric_type: String,
    /// Scaler metadata, forwarded by KEDA to the external scaler.
    pub metadata: BTreeMap<String, String>,
}
