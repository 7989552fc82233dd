//! Fixture builders for the renderer tests: a base cluster (one GatewayClass, GatewayConfig,
//! Dataplane, Gateway, UDPRoute, backend Service with EndpointSlice, and the Gateway's LoadBalancer
//! Service with an address), plus helpers to tweak it and read the results.

use gateway_api::gateways::GatewayStatus;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use operator::render::{RenderOptions, Rendered, RouteApi, RouteId, render};
use operator::store::{ObjectKey, Snapshot};
use proto::config::StunnerConfig;

pub(crate) const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: stunner-gatewayclass, generation: 1 }
spec:
  controllerName: "stunner.l7mp.io/gateway-operator"
  parametersRef: { group: stunner.l7mp.io, kind: GatewayConfig, name: stunner-gatewayconfig, namespace: stunner }
---
apiVersion: stunner.l7mp.io/v1
kind: GatewayConfig
metadata: { name: stunner-gatewayconfig, namespace: stunner }
spec: { realm: stunner.l7mp.io, authType: plaintext, userName: user-1, password: pass-1 }
---
apiVersion: stunner.l7mp.io/v1
kind: Dataplane
metadata: { name: default }
spec: { image: "docker.io/l7mp/stunnerd:latest", imagePullPolicy: Always, args: ["-w", "--udp-thread-num=16"] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: udp-gateway, namespace: stunner, uid: uid-udp, generation: 3 }
spec:
  gatewayClassName: stunner-gatewayclass
  listeners: [{ name: udp-listener, port: 3478, protocol: TURN-UDP }]
---
apiVersion: stunner.l7mp.io/v1
kind: UDPRoute
metadata: { name: media-plane, namespace: stunner, generation: 2 }
spec:
  parentRefs: [{ name: udp-gateway }]
  rules: [{ backendRefs: [{ name: media-server, namespace: default }] }]
---
apiVersion: v1
kind: Service
metadata: { name: media-server, namespace: default }
spec: { clusterIP: 10.96.0.10, ports: [{ port: 9001, protocol: UDP }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: media-server-abcde, namespace: default, labels: { kubernetes.io/service-name: media-server } }
addressType: IPv4
endpoints:
  - { addresses: [10.244.0.5], conditions: { ready: true } }
  - { addresses: [10.244.0.6], conditions: { ready: false } }
---
apiVersion: v1
kind: Service
metadata:
  name: udp-gateway
  namespace: stunner
  labels: { stunner.l7mp.io/owned-by: stunner }
  annotations: { stunner.l7mp.io/related-gateway-name: stunner/udp-gateway }
spec:
  type: LoadBalancer
  ports: [{ name: udp-listener, port: 3478, protocol: UDP, nodePort: 30478 }]
status: { loadBalancer: { ingress: [{ ip: 1.2.3.4 }] } }
"#;

/// The base snapshot.
pub(crate) fn base() -> Snapshot {
    with(&Snapshot::default(), BASE)
}

/// `snap` plus (or with replaced) the objects of `yaml`.
pub(crate) fn with(snap: &Snapshot, yaml: &str) -> Snapshot {
    let mut s = snap.clone();
    s.apply_manifests(yaml).expect("fixture manifest");
    s
}

/// The base snapshot plus `yaml`.
pub(crate) fn base_with(yaml: &str) -> Snapshot {
    with(&base(), yaml)
}

/// Renders with fixed options.
pub(crate) fn run(snap: &Snapshot) -> Rendered {
    render(snap, &RenderOptions::default())
}

pub(crate) fn key(k: &str) -> ObjectKey {
    let (ns, name) = k.split_once('/').unwrap_or(("", k));
    ObjectKey::new(ns, name)
}

/// The config of Gateway `k` (`ns/name`); panics when missing.
pub(crate) fn config<'a>(r: &'a Rendered, k: &str) -> &'a StunnerConfig {
    r.configs
        .get(&key(k))
        .unwrap_or_else(|| panic!("no config for {k}: {:?}", r.gateway_statuses.get(&key(k))))
}

pub(crate) fn gw_status<'a>(r: &'a Rendered, k: &str) -> &'a GatewayStatus {
    r.gateway_statuses
        .get(&key(k))
        .unwrap_or_else(|| panic!("no status for {k}"))
}

fn find<'a>(conds: &'a [Condition], t: &str) -> &'a Condition {
    conds
        .iter()
        .find(|c| c.type_ == t)
        .unwrap_or_else(|| panic!("no {t} condition in {conds:?}"))
}

/// (status, reason) of a Gateway condition.
pub(crate) fn gw_cond(r: &Rendered, k: &str, t: &str) -> (String, String) {
    let c = find(gw_status(r, k).conditions.as_deref().unwrap_or_default(), t);
    (c.status.clone(), c.reason.clone())
}

/// (status, reason) of a listener condition.
pub(crate) fn l_cond(r: &Rendered, k: &str, listener: &str, t: &str) -> (String, String) {
    let l = gw_status(r, k)
        .listeners
        .iter()
        .flatten()
        .find(|l| l.name == listener)
        .expect("listener status");
    let c = find(&l.conditions, t);
    (c.status.clone(), c.reason.clone())
}

pub(crate) fn attached(r: &Rendered, k: &str, listener: &str) -> i32 {
    gw_status(r, k)
        .listeners
        .iter()
        .flatten()
        .find(|l| l.name == listener)
        .expect("listener status")
        .attached_routes
}

pub(crate) fn stunner_route(k: &str) -> RouteId {
    RouteId {
        api: RouteApi::StunnerV1,
        key: key(k),
    }
}

/// (status, reason) of our parent entry `idx` of a stunner route.
pub(crate) fn route_cond(r: &Rendered, id: &RouteId, parent: &str, t: &str) -> (String, String) {
    let st = r
        .route_statuses
        .get(id)
        .unwrap_or_else(|| panic!("no status for {id:?}"));
    let p = st
        .parents
        .iter()
        .find(|p| {
            p.controller_name == "stunner.l7mp.io/gateway-operator" && p.parent_ref.name == parent
        })
        .unwrap_or_else(|| panic!("no parent {parent} in {st:?}"));
    let c = find(&p.conditions, t);
    (c.status.clone(), c.reason.clone())
}

/// (status, reason) of condition `t` of the base route `stunner/media-plane` for `udp-gateway`.
pub(crate) fn base_route_cond(r: &Rendered, t: &str) -> (String, String) {
    route_cond(r, &stunner_route("stunner/media-plane"), "udp-gateway", t)
}

/// Names of the ports of a Service.
pub(crate) fn port_names(svc: &Service) -> Vec<String> {
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter_map(|p| p.name.clone())
        .collect()
}

pub(crate) fn ok(reason: &str) -> (String, String) {
    ("True".into(), reason.into())
}

pub(crate) fn no(reason: &str) -> (String, String) {
    ("False".into(), reason.into())
}

/// Endpoints of cluster `name` in the config of `gw`.
pub(crate) fn endpoints(r: &Rendered, gw: &str, name: &str) -> Vec<String> {
    config(r, gw)
        .cluster(name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
        .endpoints
        .clone()
}

/// Routes of listener `name` in the config of `gw`.
pub(crate) fn routes(r: &Rendered, gw: &str, name: &str) -> Vec<String> {
    config(r, gw)
        .listener(name)
        .unwrap_or_else(|| panic!("no listener {name}"))
        .routes
        .clone()
}

/// A Gateway in `stunner` with the given listeners (`name:port:protocol`).
pub(crate) fn gateway(name: &str, listeners: &[&str]) -> String {
    let ls: Vec<String> = listeners
        .iter()
        .map(|l| {
            let mut it = l.split(':');
            let (n, p, proto) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            format!("{{ name: {n}, port: {p}, protocol: {proto} }}")
        })
        .collect();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: {name}, namespace: stunner, uid: uid-{name} }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners: [{}]\n",
        ls.join(", ")
    )
}

/// A stunner UDPRoute `ns/name` with the given parentRefs (YAML flow) and backends (YAML flow).
pub(crate) fn route(ns: &str, name: &str, parents: &str, backends: &str) -> String {
    format!(
        "apiVersion: stunner.l7mp.io/v1\nkind: UDPRoute\nmetadata: {{ name: {name}, namespace: {ns} }}\nspec:\n  parentRefs: {parents}\n  rules: [{{ backendRefs: {backends} }}]\n"
    )
}

/// Base64 of a PEM certificate stand-in.
pub(crate) const CERT: &str =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";
/// Base64 of a PEM key stand-in.
pub(crate) const KEY: &str =
    "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUIKLS0tLS1FTkQgUFJJVkFURSBLRVktLS0tLQo=";

/// A Secret `stunner/<name>` of type `ty` holding [`CERT`] and [`KEY`] under the given keys.
pub(crate) fn tls_secret(name: &str, ty: &str, crt_key: &str, key_key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: {name}, namespace: stunner }}\ntype: {ty}\ndata: {{ {crt_key}: {CERT}, {key_key}: {KEY} }}\n"
    )
}

/// The base Gateway with one TLS-ish listener `tls` on 443 referencing `refs` (YAML flow).
pub(crate) fn tls_gateway(proto: &str, refs: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: udp-gateway, namespace: stunner }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners:\n    - name: tls\n      port: 443\n      protocol: {proto}\n      tls: {{ mode: Terminate, certificateRefs: {refs} }}\n"
    )
}

/// A Gateway `stunner/udp-gateway` with `listeners` and annotations `ann` (YAML flow map).
pub(crate) fn annotated(ann: &str, listeners: &[&str]) -> String {
    gateway("udp-gateway", listeners).replace(
        "uid: uid-udp-gateway }",
        &format!("uid: uid-udp-gateway, annotations: {ann} }}"),
    )
}

/// The base GatewayConfig with `loadBalancerServiceAnnotations: ann` (YAML flow map).
pub(crate) fn conf_annotations(ann: &str) -> String {
    format!(
        "apiVersion: stunner.l7mp.io/v1\nkind: GatewayConfig\nmetadata: {{ name: stunner-gatewayconfig, namespace: stunner }}\nspec: {{ userName: u, password: p, loadBalancerServiceAnnotations: {ann} }}\n"
    )
}
