//! The pure renderer: one [`Snapshot`] in, everything the operator wants the cluster to look like
//! out ([`Rendered`]). No I/O, no clock (the time is an input), deterministic order.
//!
//! ```text
//!  Snapshot ─► Context (indexes: routes with v1alpha2 masking, EndpointSlices per Service,
//!                        one cluster per route; ReferenceGrants checked by `grants`)
//!     for each GatewayClass with our controllerName ─► class::validate ─► GatewayConfig
//!        for each Gateway of the class ─► gateway::render ─► StunnerConfig, Deployment (+ ScaledObject
//!                                                            or HPA) or DaemonSet, Service, Gateway status
//!     route::statuses (parent entries of other controllers kept) ─► orphans (owned, not wanted)
//! ```

mod address;
mod adopt;
mod auth;
mod autoscale;
mod class;
mod cluster;
mod context;
mod deployment;
mod gateway;
mod grants;
pub mod keda;
mod listener;
mod orphans;
mod route;
mod service;
mod status;

use std::collections::BTreeMap;

use gateway_api::experimental::udproutes::UdpRouteStatus;
use gateway_api::gatewayclasses::GatewayClassStatus;
use gateway_api::gateways::GatewayStatus;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use proto::config::StunnerConfig;

use crate::store::{ObjectKey, Snapshot};

pub use adopt::{CONTAINER_NAME, DEFAULT_LABEL_FILTER};
pub use autoscale::{
    CONFIGURABLE_TOLERANCE, CONFIGURABLE_TOLERANCE_MINOR, FALLBACK_FAILURE_THRESHOLD,
    HPA_CPU_UTILIZATION, POLLING_INTERVAL_SECONDS, SCALE_DOWN_PERIOD_SECONDS,
    SCALE_DOWN_STABILIZATION_SECONDS, configurable_tolerance_by_default,
};
pub use context::RouteApi;
pub use deployment::{
    DEFAULT_TERMINATION_GRACE, DRAIN_GRACE_MARGIN, HEALTH_PORT, METRICS_PORT, METRICS_PORT_NAME,
};
pub use gateway::LISTENER_ADDRESS;
pub use keda::ScaledObject;
pub use service::HEALTH_CHECK_PORT_NAME;

/// The controllerName of GatewayClasses this operator manages.
pub const CONTROLLER_NAME: &str = "stunner.l7mp.io/gateway-operator";
/// Default CDS address written into `STUNNER_CONFIG_ORIGIN` of dataplane pods.
pub const DEFAULT_CONFIG_ORIGIN: &str = "http://stunner-config-discovery.stunner-system.svc:13478";

/// Label and annotation keys and values shared with upstream.
pub mod keys {
    /// Label marking objects created by the operator.
    pub const OWNED_BY: &str = "stunner.l7mp.io/owned-by";
    /// Value of [`OWNED_BY`].
    pub const OWNED_BY_VALUE: &str = "stunner";
    /// Label (gateway name) and annotation (`ns/name`) linking an object to its Gateway.
    pub const RELATED_GATEWAY_NAME: &str = "stunner.l7mp.io/related-gateway-name";
    /// Label linking an object to its Gateway's namespace.
    pub const RELATED_GATEWAY_NAMESPACE: &str = "stunner.l7mp.io/related-gateway-namespace";
    /// App label of dataplane pods.
    pub const APP: &str = "app";
    /// Value of [`APP`].
    pub const APP_VALUE: &str = "stunner";
    /// Service type of the Gateway's Service (default LoadBalancer).
    pub const SERVICE_TYPE: &str = "stunner.l7mp.io/service-type";
    /// `"true"`: put UDP and TCP listeners into one LoadBalancer Service.
    pub const MIXED_PROTOCOL: &str = "stunner.l7mp.io/enable-mixed-protocol-lb";
    /// `"local"`: `externalTrafficPolicy: Local`.
    pub const EXTERNAL_TRAFFIC_POLICY: &str = "stunner.l7mp.io/external-traffic-policy";
    /// JSON map listener name → nodePort.
    pub const NODEPORT: &str = "stunner.l7mp.io/nodeport";
    /// JSON map listener name → targetPort.
    pub const TARGETPORT: &str = "stunner.l7mp.io/targetport";
    /// `"true"`: `sessionAffinity: None` instead of ClientIP.
    pub const DISABLE_SESSION_AFFINITY: &str = "stunner.l7mp.io/disable-session-affinity";
    /// `"true"`: do not add the health-check port to a LoadBalancer Service even when a
    /// `service.beta.kubernetes.io/…health…port` annotation asks for one.
    pub const DISABLE_HEALTH_CHECK_EXPOSE: &str = "stunner.l7mp.io/disable-health-check-expose";
    /// Prefix of the cloud load-balancer annotations read for the health-check port/protocol.
    pub const CLOUD_LB_PREFIX: &str = "service.beta.kubernetes.io/";
    /// `"true"`: do not run a Deployment for this Gateway.
    pub const DISABLE_MANAGED_DATAPLANE: &str = "stunner.l7mp.io/disable-managed-dataplane";
}

/// Inputs of a render that do not come from the cluster.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// GatewayClass controllerName to manage.
    pub controller_name: String,
    /// CDS address the dataplane pods fetch their config from.
    pub config_origin: String,
    /// Image used when a Dataplane does not name one.
    pub default_image: String,
    /// "Now", stamped on changed conditions.
    pub now: Time,
    /// Whether the KEDA API (`keda.sh/v1alpha1` ScaledObject) is served (found by API discovery in
    /// the controller): autoscaled Gateways get a ScaledObject, otherwise a CPU HPA.
    pub keda: bool,
    /// Whether the API server honours `behavior.scaleUp/scaleDown.tolerance` by default
    /// (Kubernetes 1.35+, from `GET /version` at start-up): ScaledObjects then carry a tolerance
    /// of 0, unless the Dataplane's `autoscaling.configurableTolerance` says otherwise.
    pub hpa_configurable_tolerance: bool,
    /// Enforce ReferenceGrants on cross-namespace route backendRefs (Gateway API semantics). Off by
    /// default: upstream STUNner allows a route to name a backend in any namespace. TLS
    /// certificateRefs of listeners always need a grant.
    pub require_backend_grants: bool,
    /// Gateway label keys not copied onto dataplane objects (upstream's
    /// `STUNNER_GATEWAY_OPERATOR_LABEL_FILTER`; default [`DEFAULT_LABEL_FILTER`]).
    pub label_filter: Vec<String>,
    /// Run a dataplane per Gateway (upstream's `managed` mode, the default); false is upstream's
    /// `legacy` mode: configs are served over CDS, the user runs stunnerd.
    pub managed_dataplane: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            controller_name: CONTROLLER_NAME.into(),
            config_origin: DEFAULT_CONFIG_ORIGIN.into(),
            default_image: "l7mp/stunnerd:latest".into(),
            now: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            keda: false,
            hpa_configurable_tolerance: false,
            require_backend_grants: false,
            label_filter: DEFAULT_LABEL_FILTER.map(String::from).to_vec(),
            managed_dataplane: true,
        }
    }
}

/// Which route API an object lives in, plus its key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteId {
    /// The API of the route.
    pub api: RouteApi,
    /// `namespace/name`.
    pub key: ObjectKey,
}

/// A kind of object the operator creates per Gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OwnedKind {
    /// The dataplane Deployment.
    Deployment,
    /// The dataplane DaemonSet (Dataplane `spec.dataplaneResource: DaemonSet`).
    DaemonSet,
    /// The LoadBalancer (or NodePort, ...) Service.
    Service,
    /// The KEDA ScaledObject of an autoscaled Gateway.
    ScaledObject,
    /// The autoscaling/v2 HPA of an autoscaled Gateway (when KEDA is not served).
    HorizontalPodAutoscaler,
}

/// Everything a render produces.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// stunnerd config per Gateway (`admin.name` = key) of every Gateway that rendered.
    pub configs: BTreeMap<ObjectKey, StunnerConfig>,
    /// Dataplane Deployments to apply.
    pub deployments: Vec<Deployment>,
    /// Dataplane DaemonSets to apply (Gateways whose Dataplane asks for a DaemonSet).
    pub daemon_sets: Vec<DaemonSet>,
    /// Gateway Services to apply.
    pub services: Vec<Service>,
    /// KEDA ScaledObjects of autoscaled Gateways (when KEDA is served).
    pub scaled_objects: Vec<ScaledObject>,
    /// CPU HPAs of autoscaled Gateways (when KEDA is not served).
    pub hpas: Vec<HorizontalPodAutoscaler>,
    /// Status of each managed GatewayClass, by name.
    pub gateway_class_statuses: BTreeMap<String, GatewayClassStatus>,
    /// Status of each managed Gateway.
    pub gateway_statuses: BTreeMap<ObjectKey, GatewayStatus>,
    /// Status of each route with at least one parent of ours (or a stale entry of ours).
    pub route_statuses: BTreeMap<RouteId, UdpRouteStatus>,
    /// Operator-owned objects no Gateway wants any more.
    pub orphans: Vec<(OwnedKind, ObjectKey)>,
}

/// Renders a snapshot.
pub fn render(snap: &Snapshot, opts: &RenderOptions) -> Rendered {
    let ctx = context::Context::new(snap, opts);
    let mut out = Rendered::default();
    let mut outcomes = route::Outcomes::default();
    for gc in snap.gateway_classes.values() {
        if gc.spec.controller_name != opts.controller_name {
            continue;
        }
        let class = class::validate(snap, gc);
        out.gateway_class_statuses
            .insert(gc.name_any(), class::status(gc, &class, opts));
        for gw in snap.gateways.values() {
            if gw.spec.gateway_class_name != gc.name_any() {
                continue;
            }
            match &class {
                Ok(gwconf) => gateway::render(&ctx, gw, gwconf, &mut outcomes, &mut out),
                Err(e) => gateway::reject(&ctx, gw, e, &mut outcomes, &mut out),
            }
        }
    }
    route::statuses(&ctx, &outcomes, &mut out);
    orphans::find(snap, &mut out);
    out
}
