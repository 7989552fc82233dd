//! The routes a render sees: [`Route`], one shape for STUNner v1 UDPRoutes and Gateway API
//! v1alpha2 UDPRoutes (a v1 route masks the same-named v1alpha2 one), their [`RouteId`]s, and the
//! index of routes by the Gateways their parentRefs name.

use std::borrow::Cow;
use std::collections::HashMap;

use gateway_api::experimental::udproutes::{UdpRoute as UdpRouteV1A2, UdpRouteStatus};

use crate::crd::{BackendRef, UDPRoute, UDPRouteRule, UDPRouteSpec};
use crate::store::{ObjectKey, Snapshot};

/// The API a route comes from (status is written back to the same API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteApi {
    /// `stunner.l7mp.io/v1` UDPRoute.
    StunnerV1,
    /// `gateway.networking.k8s.io/v1alpha2` UDPRoute.
    GatewayV1Alpha2,
}

/// A route in STUNner v1 shape, whichever API it came from.
#[derive(Clone, Debug)]
pub(crate) struct Route<'a> {
    /// API and key.
    pub(crate) id: RouteId,
    /// metadata.generation (for observedGeneration).
    pub(crate) generation: Option<i64>,
    /// The spec (converted for v1alpha2 routes: backend ports are ignored, as upstream).
    pub(crate) spec: Cow<'a, UDPRouteSpec>,
    /// The current status (to keep other controllers' parent entries).
    pub(crate) status: Option<&'a UdpRouteStatus>,
}

impl Route<'_> {
    /// `namespace/name`, also the cluster name.
    pub(crate) fn key(&self) -> &ObjectKey {
        &self.id.key
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

/// Route indexes (into `routes`) by the Gateway keys their parentRefs name, each route once per
/// Gateway.
pub(crate) fn by_gateway(routes: &[Route<'_>]) -> HashMap<ObjectKey, Vec<usize>> {
    let mut index: HashMap<ObjectKey, Vec<usize>> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        for p in r.spec.parent_refs.iter().flatten() {
            let ns = p
                .namespace
                .clone()
                .unwrap_or_else(|| r.key().namespace.clone());
            let list = index.entry(ObjectKey::new(ns, &p.name)).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    index
}

/// The effective routes, ordered by key: every STUNner v1 route, and each Gateway API v1alpha2
/// route that no same-named v1 route masks.
pub(crate) fn effective(snap: &Snapshot) -> Vec<Route<'_>> {
    let mut routes: Vec<Route<'_>> = snap
        .udp_routes
        .iter()
        .map(|(k, r)| stunner_route(k, r))
        .collect();
    for (k, r) in &snap.udp_routes_v1a2 {
        if !snap.udp_routes.contains_key(k) {
            routes.push(v1a2_route(k, r));
        }
    }
    routes.sort_by(|a, b| a.id.key.cmp(&b.id.key));
    routes
}

fn stunner_route<'a>(key: &ObjectKey, r: &'a UDPRoute) -> Route<'a> {
    Route {
        id: RouteId {
            api: RouteApi::StunnerV1,
            key: key.clone(),
        },
        generation: r.metadata.generation,
        spec: Cow::Borrowed(&r.spec),
        status: r.status.as_ref(),
    }
}

/// Converts a Gateway API UDPRoute; like upstream, backend ports are dropped (all ports allowed).
fn v1a2_route<'a>(key: &ObjectKey, r: &'a UdpRouteV1A2) -> Route<'a> {
    let rules = r
        .spec
        .rules
        .iter()
        .map(|rule| UDPRouteRule {
            backend_refs: rule
                .backend_refs
                .iter()
                .map(|b| BackendRef {
                    group: b.group.clone(),
                    kind: b.kind.clone(),
                    name: b.name.clone(),
                    namespace: b.namespace.clone(),
                    port: None,
                    end_port: None,
                })
                .collect(),
        })
        .collect();
    let spec = UDPRouteSpec {
        parent_refs: r.spec.parent_refs.clone(),
        rules,
        use_default_gateways: None,
    };
    Route {
        id: RouteId {
            api: RouteApi::GatewayV1Alpha2,
            key: key.clone(),
        },
        generation: r.metadata.generation,
        spec: Cow::Owned(spec),
        status: r.status.as_ref(),
    }
}
