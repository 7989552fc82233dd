//! STUNner's own `UDPRoute` (`stunner.l7mp.io/v1`): Gateway API's UDPRoute with port ranges
//! (`port`..`endPort`), optional ports and no weights. It masks a same-named
//! `gateway.networking.k8s.io/v1alpha2` UDPRoute.

use gateway_api::experimental::udproutes::{UdpRouteParentRefs, UdpRouteStatus};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a STUNner UDPRoute.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "stunner.l7mp.io",
    version = "v1",
    kind = "UDPRoute",
    plural = "udproutes",
    namespaced,
    category = "stunner",
    status = "UdpRouteStatus",
    derive = "Default",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct UDPRouteSpec {
    /// Gateways (and listeners, via `sectionName`) this route attaches to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub parent_refs: Option<Vec<UdpRouteParentRefs>>,
    /// Routing rules.
    #[schemars(length(min = 1, max = 16))]
    pub rules: Vec<UDPRouteRule>,
    /// Gateway API's default-Gateway scope (`All` or `None`, experimental). Accepted; STUNner
    /// has no default Gateways, so, as upstream, it attaches the route to nothing extra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_default_gateways: Option<DefaultGatewayScope>,
}

/// `useDefaultGateways` values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DefaultGatewayScope {
    /// Attach to every default Gateway.
    All,
    /// Attach to no default Gateway (the default).
    None,
}

/// One rule: the backends reachable through the route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UDPRouteRule {
    /// Backends (Services or StaticServices), with optional port ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 16))]
    pub backend_refs: Vec<BackendRef>,
}

/// A backend reference with an optional port range `[port, endPort]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    /// API group: empty for Services, `stunner.l7mp.io` for StaticServices.
    #[serde(default = "default_group", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub group: Option<String>,
    /// Kind: `Service` (default) or `StaticService`.
    #[serde(default = "default_kind", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: Option<String>,
    /// Name of the backend.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the backend; defaults to the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// Destination port; all ports when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Upper end of the port range (only with `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub end_port: Option<i32>,
}

fn default_group() -> Option<String> {
    Some(String::new())
}

fn default_kind() -> Option<String> {
    Some("Service".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_defaults_and_port_range() {
        let yaml = r#"
apiVersion: stunner.l7mp.io/v1
kind: UDPRoute
metadata: { name: media-plane, namespace: stunner }
spec:
  parentRefs: [{ name: udp-gateway }]
  rules:
    - backendRefs:
        - name: media-server
          namespace: default
          port: 10000
          endPort: 20000
"#;
        let r: UDPRoute = serde_norway::from_str(yaml).unwrap();
        let b = &r.spec.rules[0].backend_refs[0];
        assert_eq!(b.kind.as_deref(), Some("Service"));
        assert_eq!(b.group.as_deref(), Some(""));
        assert_eq!((b.port, b.end_port), (Some(10000), Some(20000)));
        assert_eq!(r.spec.parent_refs.unwrap()[0].name, "udp-gateway");
    }
}
