//! The `stunner.l7mp.io/v1alpha1` versions upstream still serves (GatewayConfig, Dataplane,
//! StaticService), transcribed field by field from upstream's `config/crd/bases`. Clusters first
//! installed with STUNner 0.x list `v1alpha1` in the CRDs' `status.storedVersions`, so a CRD
//! update that drops it is refused by the API server; serving it keeps the upgrade possible.
//!
//! As upstream: served, not stored, no conversion webhook (strategy `None`: the API server only
//! rewrites `apiVersion`). The operator itself reads `v1` only. Fields that existed only in
//! v1alpha1 (`stunnerConfig`, `minPort`, `maxPort`, `healthCheckPort`, StaticService `ports`) are
//! accepted by the schema and have no effect, as in upstream v1.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, PodSecurityContext, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::SecretObjectReference;

/// Upstream's `int` fields: `type: integer` without a format.
fn plain_integer(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// `v1alpha1` GatewayConfig spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "stunner.l7mp.io",
    version = "v1alpha1",
    kind = "GatewayConfig",
    plural = "gatewayconfigs",
    namespaced,
    shortname = "gwconf",
    category = "stunner",
    derive = "Default",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Realm","type":"string","jsonPath":".spec.realm"}"#,
    printcolumn = r#"{"name":"Auth","type":"string","jsonPath":".spec.authType"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfigSpec {
    /// Name of the ConfigMap the operator rendered the stunnerd config into (v1alpha1 only).
    #[serde(
        default = "default_stunner_config",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(
        length(max = 64),
        regex(pattern = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
    )]
    pub stunner_config: Option<String>,
    /// Name of the Dataplane of the Gateways using this config.
    #[serde(default = "default_dataplane", skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<String>,
    /// STUN/TURN authentication realm.
    #[serde(default = "default_realm", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ))]
    pub realm: Option<String>,
    /// Authentication type.
    #[serde(default = "default_auth_type", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^plaintext|static|longterm|ephemeral|timewindowed$"))]
    pub auth_type: Option<String>,
    /// Username for static authentication.
    #[serde(default, rename = "userName", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$"))]
    pub username: Option<String>,
    /// Password for static authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$"))]
    pub password: Option<String>,
    /// Shared secret for ephemeral authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_secret: Option<String>,
    /// Lifetime of ephemeral credentials in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_lifetime: Option<i32>,
    /// A Secret holding the auth credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_ref: Option<SecretObjectReference>,
    /// Smallest relay port (v1alpha1 only; no effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_port: Option<i32>,
    /// Largest relay port (v1alpha1 only; no effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_port: Option<i32>,
    /// Metrics endpoint `http://address:port/path` (v1alpha1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_endpoint: Option<String>,
    /// Health-check endpoint `http://address:port` (v1alpha1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_endpoint: Option<String>,
    /// Annotations of the LoadBalancer Services created for Gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_service_annotations: Option<BTreeMap<String, String>>,
    /// Default stunnerd log level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

/// `v1alpha1` Dataplane spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "stunner.l7mp.io",
    version = "v1alpha1",
    kind = "Dataplane",
    plural = "dataplanes",
    shortname = "dps",
    category = "stunner",
    derive = "Default",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneSpec {
    /// Container image name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Entrypoint (default `stunnerd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Environment of the stunnerd container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Number of desired pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Host networking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Resources of stunnerd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Graceful termination period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// Scheduling constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Pod-level security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Pod tolerations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Health-check port (v1alpha1 only; no effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "plain_integer")]
    pub health_check_port: Option<i64>,
}

/// `v1alpha1` StaticService spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "stunner.l7mp.io",
    version = "v1alpha1",
    kind = "StaticService",
    plural = "staticservices",
    namespaced,
    shortname = "ssvc",
    category = "stunner",
    derive = "Default",
    derive = "PartialEq"
)]
pub struct StaticServiceSpec {
    /// IP address prefixes reachable via this service.
    pub prefixes: Vec<String>,
    /// Ports reachable via this service (upstream: "currently omitted"; no effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["port", "protocol"]))]
    pub ports: Option<Vec<ServicePort>>,
}

/// A port of a v1alpha1 StaticService (upstream's `ServicePort`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Protocol (default TCP).
    #[serde(default = "default_protocol", skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Application protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The port.
    pub port: i32,
    /// Target port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// Node port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i32>,
}

fn default_stunner_config() -> Option<String> {
    Some("stunnerd-config".into())
}

fn default_dataplane() -> Option<String> {
    Some("default".into())
}

fn default_realm() -> Option<String> {
    Some("stunner.l7mp.io".into())
}

fn default_auth_type() -> Option<String> {
    Some("plaintext".into())
}

fn default_protocol() -> Option<String> {
    Some("TCP".into())
}
