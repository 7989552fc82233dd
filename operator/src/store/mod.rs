//! The store: an immutable snapshot of every object the operator watches, keyed by
//! `namespace/name`. The controller builds one from its reflector caches per render; tests build
//! one from fixtures. The renderer reads only this, which is what keeps it pure.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use gateway_api::experimental::udproutes::UdpRoute as UdpRouteV1A2;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{DynamicObject, ObjectMeta};

use crate::crd::{Dataplane, GatewayConfig, StaticService, UDPRoute};

mod manifests;

pub use manifests::ManifestError;

/// `namespace/name` of an object; `namespace` is empty for cluster-scoped objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace (empty when cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a Kubernetes object.
    pub fn of<K: ResourceExt>(obj: &K) -> Self {
        Self::new(obj.namespace().unwrap_or_default(), obj.name_any())
    }

    /// The key an object's metadata names (empty parts when unset).
    pub fn from_meta(meta: &ObjectMeta) -> Self {
        Self::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }
}

/// `ns/name`, or `name` for cluster-scoped objects (upstream's `GetObjectKey`).
impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// Objects of one kind, ordered by key (renders are deterministic).
pub type Objects<K> = BTreeMap<ObjectKey, Arc<K>>;

/// A consistent view of all watched objects at one instant.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// GatewayClasses (all; the renderer filters by controllerName).
    pub gateway_classes: Objects<GatewayClass>,
    /// STUNner GatewayConfigs.
    pub gateway_configs: Objects<GatewayConfig>,
    /// Dataplanes (cluster-scoped).
    pub dataplanes: Objects<Dataplane>,
    /// Gateways.
    pub gateways: Objects<Gateway>,
    /// `stunner.l7mp.io/v1` UDPRoutes.
    pub udp_routes: Objects<UDPRoute>,
    /// `gateway.networking.k8s.io/v1alpha2` UDPRoutes (when that CRD is installed).
    pub udp_routes_v1a2: Objects<UdpRouteV1A2>,
    /// StaticServices.
    pub static_services: Objects<StaticService>,
    /// Services (backends, and the operator's own LoadBalancer Services).
    pub services: Objects<Service>,
    /// EndpointSlices of backend Services.
    pub endpoint_slices: Objects<EndpointSlice>,
    /// Nodes (for the NodePort public-address fallback).
    pub nodes: Objects<Node>,
    /// Secrets (authRef credentials, TLS certificates).
    pub secrets: Objects<Secret>,
    /// Namespaces (for `allowedRoutes` label selectors).
    pub namespaces: Objects<Namespace>,
    /// ReferenceGrants (cross-namespace TLS Secret and backend references).
    pub reference_grants: Objects<ReferenceGrant>,
    /// Deployments owned by the operator (to find orphans).
    pub deployments: Objects<Deployment>,
    /// DaemonSets owned by the operator (to find orphans).
    pub daemon_sets: Objects<DaemonSet>,
    /// KEDA ScaledObjects labelled as owned by the operator (to find orphans; empty until the
    /// KEDA API is discovered).
    pub scaled_objects: Objects<DynamicObject>,
    /// HorizontalPodAutoscalers labelled as owned by the operator (to find orphans).
    pub hpas: Objects<HorizontalPodAutoscaler>,
}

/// Inserting objects into one of the snapshot maps.
pub trait Insert<K> {
    /// Inserts (or replaces) `obj` under its own key.
    fn put(&mut self, obj: K);
}

impl<K: ResourceExt> Insert<K> for Objects<K> {
    fn put(&mut self, obj: K) {
        self.insert(ObjectKey::of(&obj), Arc::new(obj));
    }
}

/// Builds an [`Objects`] map from a reflector's cached objects.
pub fn objects_from<K: ResourceExt>(items: impl IntoIterator<Item = Arc<K>>) -> Objects<K> {
    items
        .into_iter()
        .map(|o| (ObjectKey::of(o.as_ref()), o))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_display_and_order() {
        assert_eq!(ObjectKey::new("ns", "a").to_string(), "ns/a");
        assert_eq!(ObjectKey::new("", "dp").to_string(), "dp");
        let mut snap = Snapshot::default();
        for (ns, name) in [("b", "x"), ("a", "y"), ("a", "x")] {
            snap.secrets.put(Secret {
                metadata: ObjectMeta {
                    namespace: Some(ns.into()),
                    name: Some(name.into()),
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        let keys: Vec<String> = snap.secrets.keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["a/x", "a/y", "b/x"]);
    }
}
