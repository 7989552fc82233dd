//! `Dataplane.spec.autoscaling` (our addition to upstream's Dataplane): per-Gateway autoscaling of
//! the dataplane Deployment by the STUNner KEDA external scaler (or a CPU HPA when KEDA is absent),
//! with the graceful-drain settings that keep calls alive on scale-in (docs/ARCHITECTURE.md §4).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Autoscaling settings shared by every Gateway deployed with the Dataplane.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// The API server refuses bounds the autoscaler could not honour as written, instead of the
// renderer quietly raising `maxReplicas` (a CEL rule: Kubernetes 1.25+, the chart claims 1.30+).
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.maxReplicas >= self.minReplicas",
    "message": "maxReplicas must be >= minReplicas"
}]))]
pub struct AutoscalingSpec {
    /// Lower bound of the replica count (>= 1: a TURN gateway with no pod accepts no calls).
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Upper bound of the replica count (raised to `minReplicas` when below it).
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Allocations one dataplane pod should carry; the scaler's desired count is
    /// `ceil(allocations / targetAllocationsPerPod)`.
    #[serde(default = "default_target")]
    #[schemars(range(min = 1))]
    pub target_allocations_per_pod: i32,
    /// At most this many pods are removed per scale-in decision.
    #[serde(default = "default_scale_in_step")]
    #[schemars(range(min = 1))]
    pub scale_in_step: i32,
    /// How long a terminating stunnerd keeps relaying its allocations (`--drain-timeout`); the
    /// pod's terminationGracePeriodSeconds is this plus a margin.
    #[serde(default = "default_drain_timeout")]
    #[schemars(range(min = 0))]
    pub drain_timeout_seconds: i64,
    /// Where the scaler reads allocation counts from.
    #[serde(default)]
    pub source: AutoscalingSource,
    /// Prometheus-compatible API base URL (source `prometheus`; may carry Mimir's `/prometheus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_address: Option<String>,
    /// Custom PromQL query replacing the scaler's default one (source `prometheus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Headers sent with every Prometheus request, `Name=value,Name2=value2`
    /// (e.g. `X-Scope-OrgID=tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_headers: Option<String>,
    /// Whether the ScaledObject sets the HPA's `behavior.scaleUp/scaleDown.tolerance` to 0 (and
    /// tells the scaler so), which lets the gateway step down to exactly the size it needs.
    /// Absent: when the API server is Kubernetes 1.35 or newer (the feature on by default). Set
    /// `false` with KEDA older than 2.18 (its ScaledObject schema drops the field), `true` on
    /// 1.33/1.34 clusters with the `HPAConfigurableTolerance` feature gate enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configurable_tolerance: Option<bool>,
    /// gRPC address (`host:port`) of the STUNner KEDA external scaler.
    #[schemars(length(min = 1))]
    pub scaler_address: String,
}

/// Source of the allocation counts the scaler scales on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutoscalingSource {
    /// PromQL against `serverAddress` (Prometheus, Mimir, Thanos, VictoriaMetrics).
    Prometheus,
    /// Each dataplane pod's `/status`, pods found through the Kubernetes API (the default).
    #[default]
    Direct,
}

impl AutoscalingSource {
    /// The value of the scaler's `source` trigger metadata key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prometheus => "prometheus",
            Self::Direct => "direct",
        }
    }
}

impl AutoscalingSpec {
    /// `maxReplicas`, never below `minReplicas` (both clamped to >= 1).
    pub fn effective_max(&self) -> i32 {
        self.max_replicas.max(self.effective_min())
    }

    /// `minReplicas`, at least 1.
    pub fn effective_min(&self) -> i32 {
        self.min_replicas.max(1)
    }

    /// `drainTimeoutSeconds`, never negative.
    pub fn drain_timeout(&self) -> i64 {
        self.drain_timeout_seconds.max(0)
    }
}

fn default_min_replicas() -> i32 {
    1
}

fn default_max_replicas() -> i32 {
    10
}

fn default_target() -> i32 {
    200
}

fn default_scale_in_step() -> i32 {
    1
}

fn default_drain_timeout() -> i64 {
    3600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_an_minimal_spec() {
        let a: AutoscalingSpec =
            serde_norway::from_str("scalerAddress: scaler.stunner-system.svc:9090").unwrap();
        assert_eq!(
            (
                a.min_replicas,
                a.max_replicas,
                a.target_allocations_per_pod,
                a.scale_in_step,
                a.drain_timeout_seconds,
                a.source,
            ),
            (1, 10, 200, 1, 3600, AutoscalingSource::Direct)
        );
        assert_eq!(a.server_address, None);
    }

    #[test]
    fn prometheus_fields_and_clamps() {
        let yaml = "{ minReplicas: 4, maxReplicas: 2, drainTimeoutSeconds: -5, source: prometheus, \
            serverAddress: 'http://mimir/prometheus', query: 'sum(x)', customHeaders: 'X-Scope-OrgID=t', \
            scalerAddress: 's:1' }";
        let a: AutoscalingSpec = serde_norway::from_str(yaml).unwrap();
        assert_eq!(a.source.as_str(), "prometheus");
        assert_eq!(a.custom_headers.as_deref(), Some("X-Scope-OrgID=t"));
        assert_eq!((a.effective_min(), a.effective_max()), (4, 4));
        assert_eq!(a.drain_timeout(), 0);
        assert!(
            serde_norway::from_str::<AutoscalingSpec>("{ source: kafka, scalerAddress: s }")
                .is_err()
        );
        assert!(serde_norway::from_str::<AutoscalingSpec>("{ minReplicas: 1 }").is_err());
    }
}
