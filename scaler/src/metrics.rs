//! The scaler's own Prometheus metrics (`stunner_scaler_*`), registered once at start-up.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of per-ScaledObject series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// `namespace/name` of the ScaledObject.
    pub scaledobject: String,
    /// `prometheus` or `direct`.
    pub source: String,
}

/// Labels of gRPC request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// RPC method name.
    pub method: String,
    /// `ok` or the gRPC code name.
    pub code: String,
}

/// Every metric the scaler exports.
#[derive(Debug, Clone)]
pub struct ScalerMetrics {
    /// Upstream (Prometheus or pod) query latency.
    pub upstream_duration: Family<ObjectLabels, Histogram>,
    /// Upstream queries made.
    pub upstream_queries: Family<ObjectLabels, Counter>,
    /// Upstream queries that failed (including unreachable pods).
    pub upstream_errors: Family<ObjectLabels, Counter>,
    /// Desired replicas last reported.
    pub desired_replicas: Family<ObjectLabels, Gauge>,
    /// Metric value last reported to KEDA (desired replicas moved out of the HPA tolerance).
    pub reported_replicas: Family<ObjectLabels, Gauge>,
    /// Non-draining pods left out of the last reading (not Ready or unreachable).
    pub pods_excluded: Family<ObjectLabels, Gauge>,
    /// Allocations on non-draining pods last seen.
    pub allocations: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    /// Draining pods last seen.
    pub pods_draining: Family<ObjectLabels, Gauge>,
    /// pod-deletion-cost patches applied.
    pub deletion_cost_patches: Counter,
    /// gRPC requests served.
    pub grpc_requests: Family<RpcLabels, Counter>,
}

impl ScalerMetrics {
    /// Registers every metric under `registry` (which the caller prefixes `stunner_scaler`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            upstream_duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
            }),
            upstream_queries: Family::default(),
            upstream_errors: Family::default(),
            desired_replicas: Family::default(),
            reported_replicas: Family::default(),
            pods_excluded: Family::default(),
            allocations: Family::default(),
            pods_draining: Family::default(),
            deletion_cost_patches: Counter::default(),
            grpc_requests: Family::default(),
        };
        registry.register(
            "upstream_query_duration_seconds",
            "Upstream query latency",
            m.upstream_duration.clone(),
        );
        registry.register(
            "upstream_queries",
            "Upstream queries made",
            m.upstream_queries.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream queries that failed",
            m.upstream_errors.clone(),
        );
        registry.register(
            "desired_replicas",
            "Desired dataplane replicas last reported",
            m.desired_replicas.clone(),
        );
        registry.register(
            "reported_replicas",
            "Metric value last reported to KEDA (target 1 replica)",
            m.reported_replicas.clone(),
        );
        registry.register(
            "pods_excluded",
            "Dataplane pods left out of the reading: not Ready or unreachable",
            m.pods_excluded.clone(),
        );
        registry.register(
            "allocations",
            "Allocations on non-draining dataplane pods",
            m.allocations.clone(),
        );
        registry.register(
            "pods_draining",
            "Draining dataplane pods",
            m.pods_draining.clone(),
        );
        registry.register(
            "deletion_cost_patches",
            "pod-deletion-cost annotations written",
            m.deletion_cost_patches.clone(),
        );
        registry.register(
            "grpc_requests",
            "gRPC requests served",
            m.grpc_requests.clone(),
        );
        m
    }

    /// Removes every per-ScaledObject series of `labels`.
    pub fn forget(&self, labels: &ObjectLabels) {
        self.upstream_duration.remove(labels);
        self.upstream_queries.remove(labels);
        self.upstream_errors.remove(labels);
        self.desired_replicas.remove(labels);
        self.reported_replicas.remove(labels);
        self.pods_excluded.remove(labels);
        self.allocations.remove(labels);
        self.pods_draining.remove(labels);
    }
}
