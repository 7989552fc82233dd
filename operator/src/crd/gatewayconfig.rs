//! `GatewayConfig`: per-GatewayClass parameters (realm, auth, dataplane name, LB annotations).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a GatewayConfig, referenced from a GatewayClass `parametersRef`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "stunner.l7mp.io",
    version = "v1",
    kind = "GatewayConfig",
    plural = "gatewayconfigs",
    namespaced,
    shortname = "gwconf",
    category = "stunner",
    derive = "Default",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Realm","type":"string","jsonPath":".spec.realm"}"#,
    printcolumn = r#"{"name":"Dataplane","type":"string","jsonPath":".spec.dataplane"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfigSpec {
    /// Name of the (cluster-scoped) Dataplane that Gateways using this config are deployed with.
    #[serde(default = "default_dataplane", skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<String>,
    /// STUN/TURN authentication realm.
    #[serde(default = "default_realm", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ))]
    pub realm: Option<String>,
    /// Authentication type: `plaintext`/`static` or `longterm`/`ephemeral`/`timewindowed`.
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
    /// Shared secret for ephemeral (TURN REST API) authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_secret: Option<String>,
    /// Lifetime of ephemeral credentials in seconds (used by credential issuers, not by stunnerd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_lifetime: Option<i32>,
    /// A Secret holding all auth credentials (`type`, `username`/`password` or `secret`); when set,
    /// it overrides every inline credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_ref: Option<SecretObjectReference>,
    /// Annotations added to the LoadBalancer Services created for Gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_service_annotations: Option<BTreeMap<String, String>>,
    /// Default stunnerd log level, e.g. `all:INFO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Allocations one TURN username may hold at once (RFC 8656 §5); over the limit stunnerd
    /// answers 486 Allocation Quota Reached. Unset or 0: no quota. Rendered into stunnerd's
    /// `admin.user_quota` (upstream reserves it for its paid tiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "plain_integer")]
    pub user_quota: Option<i64>,
    /// STUN-only mode (upstream's paid tiers): not implemented here. Accepted; a Gateway using a
    /// GatewayConfig with `stunMode: true` keeps serving TURN and its status says so.
    #[serde(default, rename = "stunMode", skip_serializing_if = "Option::is_none")]
    pub stun_mode: Option<bool>,
}

/// Upstream's `int` fields: `type: integer` without a format.
fn plain_integer(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "integer" })
}

/// A reference to a Secret, as Gateway API's `SecretObjectReference`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretObjectReference {
    /// API group: empty (core) or omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub group: Option<String>,
    /// Kind: `Secret` or omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: Option<String>,
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret; defaults to the namespace of the referrer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_on_empty_spec() {
        let spec: GatewayConfigSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec.dataplane.as_deref(), Some("default"));
        assert_eq!(spec.realm.as_deref(), Some("stunner.l7mp.io"));
        assert_eq!(spec.auth_type.as_deref(), Some("plaintext"));
        assert_eq!(spec.username, None);
    }

    #[test]
    fn upstream_field_names_roundtrip() {
        let json = r#"{"realm":"r","authType":"static","userName":"u","password":"p",
            "authRef":{"name":"s","namespace":"n"},"loadBalancerServiceAnnotations":{"a":"b"}}"#;
        let spec: GatewayConfigSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.username.as_deref(), Some("u"));
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["userName"], "u");
        assert_eq!(back["authRef"]["name"], "s");
    }

    #[test]
    fn schema_has_defaults_and_patterns() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(GatewayConfig::crd()).unwrap();
        let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"];
        assert_eq!(props["realm"]["default"], "stunner.l7mp.io");
        assert_eq!(props["authType"]["default"], "plaintext");
        assert_eq!(props["dataplane"]["default"], "default");
        assert!(props["realm"]["pattern"].is_string());
    }
}
