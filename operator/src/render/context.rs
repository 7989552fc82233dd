//! Per-render indexes over the snapshot: the effective routes (STUNner v1 routes mask same-named
//! Gateway API v1alpha2 ones), routes by parent Gateway, EndpointSlices by Service, and one
//! rendered cluster per route.

use std::borrow::Cow;
use std::collections::HashMap;

use gateway_api::experimental::udproutes::{UdpRoute as UdpRouteV1A2, UdpRouteStatus};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::address;
use super::cluster::{self, ClusterResult};
use super::{RenderOptions, RouteId};
use crate::crd::{BackendRef, UDPRoute, UDPRouteRule, UDPRouteSpec};
use crate::store::{ObjectKey, Snapshot};

/// Label EndpointSlices carry naming their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

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

/// Indexes built once per render.
pub(crate) struct Context<'a> {
    /// The snapshot.
    pub(crate) snap: &'a Snapshot,
    /// Render inputs.
    pub(crate) opts: &'a RenderOptions,
    /// Effective routes, ordered by key.
    pub(crate) routes: Vec<Route<'a>>,
    /// Route indexes by the Gateway keys their parentRefs name.
    pub(crate) routes_by_gateway: HashMap<ObjectKey, Vec<usize>>,
    /// EndpointSlices by Service key.
    pub(crate) slices: HashMap<ObjectKey, Vec<&'a EndpointSlice>>,
    /// The rendered cluster of each route, by route index.
    pub(crate) clusters: Vec<ClusterResult>,
    /// The public Service of each Gateway (`ns/name`).
    pub(crate) public_services: HashMap<String, &'a Service>,
    /// ExternalIP of the first Node that has one (NodePort fallback).
    pub(crate) node_ip: Option<String>,
}

impl<'a> Context<'a> {
    /// Builds the indexes.
    pub(crate) fn new(snap: &'a Snapshot, opts: &'a RenderOptions) -> Self {
        let routes = effective_routes(snap);
        let mut routes_by_gateway: HashMap<ObjectKey, Vec<usize>> = HashMap::new();
        for (i, r) in routes.iter().enumerate() {
            for p in r.spec.parent_refs.iter().flatten() {
                let ns = p
                    .namespace
                    .clone()
                    .unwrap_or_else(|| r.key().namespace.clone());
                let list = routes_by_gateway
                    .entry(ObjectKey::new(ns, &p.name))
                    .or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let mut slices: HashMap<ObjectKey, Vec<&EndpointSlice>> = HashMap::new();
        for (k, s) in &snap.endpoint_slices {
            if let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            {
                slices
                    .entry(ObjectKey::new(&k.namespace, svc))
                    .or_default()
                    .push(s);
            }
        }
        let public_services = address::public_services(snap);
        let node_ip = address::first_node_ip(snap);
        let mut ctx = Self {
            snap,
            opts,
            routes,
            routes_by_gateway,
            slices,
            clusters: Vec::new(),
            public_services,
            node_ip,
        };
        ctx.clusters = ctx
            .routes
            .iter()
            .map(|r| cluster::render(&ctx, r))
            .collect();
        ctx
    }
}

fn effective_routes(snap: &Snapshot) -> Vec<Route<'_>> {
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
