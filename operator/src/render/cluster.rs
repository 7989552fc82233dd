//! Clusters: one per route, named `<ns>/<route>`, whose endpoints are every address of the
//! backend Services' EndpointSlices (ready or not: a pod that is terminating or not yet ready may
//! still carry media) plus the ClusterIP, and the prefixes of StaticServices; a backend `port`
//! (and `endPort`) restricts each endpoint to `:<port-endPort>`. With
//! [`super::options::RenderOptions::require_backend_grants`], a backend in another namespace is used only
//! when a ReferenceGrant there permits the route (`RefNotPermitted` otherwise).
//!
//! Owns the index of EndpointSlices by Service, which nothing else reads.

use std::collections::HashMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use proto::config::{ClusterConfig, ClusterProtocol, ClusterType};

use super::grants;
use super::listener::GATEWAY_GROUP;
use super::routes::{Route, RouteApi};
use super::status::Reason;
use crate::crd::{BackendRef, GROUP};
use crate::store::{ObjectKey, Snapshot};

/// Label EndpointSlices carry naming their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The cluster of a route and whether all its backends resolved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClusterResult {
    /// The cluster, `None` when no backend resolved at all.
    pub(crate) config: Option<ClusterConfig>,
    /// `Err((reason, message))` of the last backend that failed (`BackendNotFound`, `InvalidKind`).
    pub(crate) resolved: Result<(), (Reason, String)>,
}

enum Backend {
    Service,
    Static,
}

/// Renders the cluster of each route, in the order of `routes`. With `require_grants`, a backend
/// in another namespace needs a ReferenceGrant.
pub(crate) fn render_all(
    snap: &Snapshot,
    require_grants: bool,
    routes: &[Route<'_>],
) -> Vec<ClusterResult> {
    let backends = Backends {
        snap,
        slices: slices_by_service(snap),
        require_grants,
    };
    routes.iter().map(|r| render(&backends, r)).collect()
}

/// What resolving a backend reads.
struct Backends<'a> {
    /// The snapshot (Services, StaticServices, ReferenceGrants).
    snap: &'a Snapshot,
    /// EndpointSlices by Service key.
    slices: HashMap<ObjectKey, Vec<&'a EndpointSlice>>,
    /// [`super::options::RenderOptions::require_backend_grants`].
    require_grants: bool,
}

/// EndpointSlices by the key of the Service their label names.
fn slices_by_service(snap: &Snapshot) -> HashMap<ObjectKey, Vec<&EndpointSlice>> {
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
    slices
}

/// Renders the cluster of one route.
fn render(ctx: &Backends<'_>, route: &Route<'_>) -> ClusterResult {
    let mut endpoints: Vec<String> = Vec::new();
    let mut resolved = Ok(());
    let mut any = false;
    for b in route.spec.rules.iter().flat_map(|r| r.backend_refs.iter()) {
        let ns = b
            .namespace
            .clone()
            .unwrap_or_else(|| route.key().namespace.clone());
        let key = ObjectKey::new(ns, &b.name);
        let Some(kind) = backend_kind(b) else {
            resolved = Err((
                Reason::InvalidKind,
                format!("invalid backend group/kind for {key}"),
            ));
            continue;
        };
        if ctx.require_grants && !backend_permitted(ctx, route, &kind, &key) {
            resolved = Err((
                Reason::RefNotPermitted,
                format!(
                    "no ReferenceGrant in {} permits backend {key}",
                    key.namespace
                ),
            ));
            continue;
        }
        let found = match kind {
            Backend::Service => service_endpoints(ctx, &key),
            Backend::Static => static_endpoints(ctx, &key),
        };
        let Some(addrs) = found else {
            resolved = Err((Reason::BackendNotFound, format!("backend {key} not found")));
            continue;
        };
        any = true;
        let suffix = port_suffix(b);
        for a in addrs {
            let ep = format!("{a}{suffix}");
            if !endpoints.contains(&ep) {
                endpoints.push(ep);
            }
        }
    }
    let config = any.then(|| ClusterConfig {
        name: route.key().to_string(),
        cluster_type: ClusterType::Static,
        protocol: ClusterProtocol::Udp,
        endpoints,
    });
    ClusterResult { config, resolved }
}

fn backend_kind(b: &BackendRef) -> Option<Backend> {
    let group = b.group.as_deref().unwrap_or("");
    let kind = b.kind.as_deref().unwrap_or("Service");
    match (group, kind) {
        ("", "Service") => Some(Backend::Service),
        ("" | GROUP, "StaticService") => Some(Backend::Static),
        _ => None,
    }
}

/// A ReferenceGrant (or the same namespace) lets `route` use the backend `key`.
fn backend_permitted(
    ctx: &Backends<'_>,
    route: &Route<'_>,
    kind: &Backend,
    key: &ObjectKey,
) -> bool {
    let from = grants::Referrer {
        group: match route.id.api {
            RouteApi::StunnerV1 => GROUP,
            RouteApi::GatewayV1Alpha2 => GATEWAY_GROUP,
        },
        kind: "UDPRoute",
        namespace: &route.key().namespace,
    };
    let (group, kind) = match kind {
        Backend::Service => ("", "Service"),
        Backend::Static => (GROUP, "StaticService"),
    };
    grants::permitted(ctx.snap, from, grants::Target { group, kind, key })
}

/// EndpointSlice addresses then the ClusterIP; `None` when neither the Service nor any slice exists.
fn service_endpoints(ctx: &Backends<'_>, key: &ObjectKey) -> Option<Vec<String>> {
    let svc = ctx.snap.services.get(key);
    let slices = ctx.slices.get(key);
    if svc.is_none() && slices.is_none() {
        return None;
    }
    let mut out: Vec<String> = slices
        .into_iter()
        .flatten()
        .flat_map(|s| s.endpoints.iter().flatten())
        .flat_map(|e| e.addresses.iter().cloned())
        .collect();
    let cluster_ip = svc
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.cluster_ip.clone());
    if let Some(ip) = cluster_ip.filter(|ip| !ip.is_empty() && ip != "None") {
        out.push(ip);
    }
    Some(out)
}

fn static_endpoints(ctx: &Backends<'_>, key: &ObjectKey) -> Option<Vec<String>> {
    ctx.snap
        .static_services
        .get(key)
        .map(|s| s.spec.prefixes.clone())
}

/// `:<port-endPort>` for a backend with a port, empty otherwise.
fn port_suffix(b: &BackendRef) -> String {
    match b.port {
        Some(p) if p > 0 => {
            let end = b.end_port.filter(|e| *e >= p).unwrap_or(p);
            format!(":<{p}-{end}>")
        }
        _ => String::new(),
    }
}
