//! `Dataplane`: the cluster-scoped template of the stunnerd Deployment (or DaemonSet) run for each
//! Gateway.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, LocalObjectReference, PodSecurityContext,
    ResourceRequirements, SecurityContext, Toleration, TopologySpreadConstraint,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AutoscalingSpec;

/// Spec of a Dataplane: image, command, scheduling and pod settings of stunnerd.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "stunner.l7mp.io",
    version = "v1",
    kind = "Dataplane",
    plural = "dataplanes",
    shortname = "dps",
    category = "stunner",
    derive = "Default",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneSpec {
    /// Container image of stunnerd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy: Always, Never or IfNotPresent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Pull secrets, looked up in the Gateway's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Resource kind the dataplane is deployed as: Deployment (default) or DaemonSet (one pod per
    /// node; `replicas` and `autoscaling` are then ignored). Switching kinds deletes the old object.
    #[serde(default = "default_resource", skip_serializing_if = "Option::is_none")]
    pub dataplane_resource: Option<DataplaneResourceType>,
    /// Extra pod labels (mandatory labels win on conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Extra pod annotations (mandatory annotations win on conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Entrypoint; defaults to `stunnerd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Environment sources of the stunnerd container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_from: Option<Vec<EnvFromSource>>,
    /// Extra environment variables of the stunnerd container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Container-level security context of stunnerd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    /// Replica count; unset or 1 (or any value with `autoscaling`) leaves the Deployment's replicas
    /// to the autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Resources of stunnerd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Graceful termination period in seconds (default 3600, covering the drain timeout); with
    /// `autoscaling` it is `autoscaling.drainTimeoutSeconds` plus a 30 s margin instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// Run stunnerd in the host network namespace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    /// Scheduling constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Pod-level security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Pod tolerations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Topology spread constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Disable the liveness/readiness probes on port 8086.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_health_check: bool,
    /// Expose Prometheus metrics at `http://:8080/metrics` (upstream spelling of the key kept).
    #[serde(
        default,
        rename = "enableMetricsEndpoint",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub enable_metrics_endpoint: bool,
    /// Dataplane offload engine (upstream's paid tiers): `None` (default), `XDP`, `TC` or `Auto`.
    /// Not implemented here: anything but `None` is logged and ignored.
    #[serde(
        default = "default_offload_engine",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = r"^None|XDP|TC|Auto$"))]
    pub offload_engine: Option<String>,
    /// Interfaces the offload engine would run on (empty: all). Not implemented here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_interfaces: Option<Vec<String>>,
    /// Autoscaling of each Gateway's Deployment (our addition): a KEDA ScaledObject driven by the
    /// STUNner scaler, or a CPU HorizontalPodAutoscaler when KEDA is not installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
}

/// Kubernetes resource the dataplane is deployed as.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DataplaneResourceType {
    /// A Deployment (the default).
    #[default]
    Deployment,
    /// A DaemonSet: one stunnerd pod per schedulable node.
    DaemonSet,
}

fn default_resource() -> Option<DataplaneResourceType> {
    Some(DataplaneResourceType::Deployment)
}

fn default_offload_engine() -> Option<String> {
    Some("None".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_sample_parses() {
        let yaml = r#"
apiVersion: stunner.l7mp.io/v1
kind: Dataplane
metadata: { name: default }
spec:
  image: l7mp/stunnerd:latest
  imagePullPolicy: Always
  command: ["stunnerd"]
  args: ["-w", "--udp-thread-num=16"]
  resources: { limits: { cpu: 2, memory: 512Mi }, requests: { cpu: 500m, memory: 128Mi } }
  terminationGracePeriodSeconds: 3600
  enableMetricsEndpoint: true
"#;
        let dp: Dataplane = serde_norway::from_str(yaml).unwrap();
        assert_eq!(dp.spec.image.as_deref(), Some("l7mp/stunnerd:latest"));
        assert_eq!(
            dp.spec.dataplane_resource,
            Some(DataplaneResourceType::Deployment)
        );
        assert!(dp.spec.enable_metrics_endpoint);
        assert_eq!(dp.spec.replicas, None);
    }
}
