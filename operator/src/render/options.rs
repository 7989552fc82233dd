//! What a render depends on besides the cluster: [`RenderOptions`] (flags, discovery results,
//! "now") and their defaults. A leaf: it uses no other render module.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The controllerName of GatewayClasses this operator manages.
pub const CONTROLLER_NAME: &str = "stunner.l7mp.io/gateway-operator";
/// Default CDS address written into `STUNNER_CONFIG_ORIGIN` of dataplane pods.
pub const DEFAULT_CONFIG_ORIGIN: &str = "http://stunner-config-discovery.stunner-system.svc:13478";
/// Upstream's default label filter (`DefaultLabelFilter`): Gateway label keys never copied onto
/// the dataplane object.
pub const DEFAULT_LABEL_FILTER: [&str; 6] = [
    "applyset.kubernetes.io/part-of",
    "applyset.k8s.io/part-of",
    "app.kubernetes.io/managed-by",
    "argocd.argoproj.io/instance",
    "kustomize.toolkit.fluxcd.io/name",
    "kustomize.toolkit.fluxcd.io/namespace",
];

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
