//! Clusters: EndpointSlice addresses (ready or not), the ClusterIP, StaticService prefixes, port
//! ranges, missing and invalid backends.

use crate::fixtures::*;

const STATIC: &str = "apiVersion: stunner.l7mp.io/v1\nkind: StaticService\nmetadata: { name: static-svc, namespace: stunner }\nspec: { prefixes: [10.11.12.13, 10.0.0.0/8] }\n";

/// Renders the base with route `stunner/media-plane` to `backends` and [`STATIC`].
fn with_route(backends: &str) -> operator::render::Rendered {
    let r = route(
        "stunner",
        "media-plane",
        "[{ name: udp-gateway }]",
        backends,
    );
    run(&base_with(&format!("{r}---\n{STATIC}")))
}

fn one_route(backends: &str) -> Vec<String> {
    config(&with_route(backends), "stunner/udp-gateway")
        .cluster("stunner/media-plane")
        .map(|c| c.endpoints.clone())
        .unwrap_or_default()
}

#[test]
fn endpoints_include_not_ready_and_cluster_ip_sorted() {
    assert_eq!(
        one_route("[{ name: media-server, namespace: default }]"),
        ["10.244.0.5", "10.244.0.6", "10.96.0.10"]
    );
}

/// The cluster of a route to `backends` has endpoints `eps` and ResolvedRefs `want`.
fn backend(backends: &str, eps: &[&str], want: (String, String)) {
    let r = with_route(backends);
    let got = config(&r, "stunner/udp-gateway")
        .cluster("stunner/media-plane")
        .map(|c| c.endpoints.clone())
        .unwrap_or_default();
    assert_eq!(got, eps);
    assert_eq!(base_route_cond(&r, "ResolvedRefs"), want);
}

const ALL: &[&str] = &["10.244.0.5", "10.244.0.6", "10.96.0.10"];
const PREFIXES: &[&str] = &["10.0.0.0/8", "10.11.12.13"];

cases! { backend {
    backend_port: ("[{ name: media-server, namespace: default, port: 9001 }]",
        &["10.244.0.5:<9001-9001>", "10.244.0.6:<9001-9001>", "10.96.0.10:<9001-9001>"], ok("ResolvedRefs")),
    backend_port_range: ("[{ name: media-server, namespace: default, port: 10000, endPort: 20000 }]",
        &["10.244.0.5:<10000-20000>", "10.244.0.6:<10000-20000>", "10.96.0.10:<10000-20000>"], ok("ResolvedRefs")),
    backend_end_port_below_port_ignored: ("[{ name: media-server, namespace: default, port: 5000, endPort: 10 }]",
        &["10.244.0.5:<5000-5000>", "10.244.0.6:<5000-5000>", "10.96.0.10:<5000-5000>"], ok("ResolvedRefs")),
    backend_end_port_without_port_ignored: (
        "[{ name: media-server, namespace: default, endPort: 20000 }]", ALL, ok("ResolvedRefs")),
    backend_static_service: (
        "[{ name: static-svc, group: stunner.l7mp.io, kind: StaticService }]", PREFIXES, ok("ResolvedRefs")),
    backend_static_service_without_group: (
        "[{ name: static-svc, kind: StaticService }]", PREFIXES, ok("ResolvedRefs")),
    backend_static_service_port_range: (
        "[{ name: static-svc, group: stunner.l7mp.io, kind: StaticService, port: 1, endPort: 2 }]",
        &["10.0.0.0/8:<1-2>", "10.11.12.13:<1-2>"], ok("ResolvedRefs")),
    backend_missing_service: ("[{ name: nope, namespace: default }]", &[], no("BackendNotFound")),
    backend_missing_static_service: (
        "[{ name: nope, group: stunner.l7mp.io, kind: StaticService }]", &[], no("BackendNotFound")),
    backend_invalid_kind: ("[{ name: media-server, namespace: default, kind: Pod }]", &[], no("InvalidKind")),
    backend_invalid_group: (
        "[{ name: media-server, namespace: default, group: example.com }]", &[], no("InvalidKind")),
    backend_partial_resolution_keeps_found: (
        "[{ name: media-server, namespace: default }, { name: nope }]", ALL, no("BackendNotFound")),
}}

#[test]
fn unresolved_route_still_listed_on_listener_without_cluster() {
    let r = run(&base_with(&route(
        "stunner",
        "media-plane",
        "[{ name: udp-gateway }]",
        "[{ name: nope }]",
    )));
    assert_eq!(
        routes(
            &r,
            "stunner/udp-gateway",
            "stunner/udp-gateway/udp-listener"
        ),
        ["stunner/media-plane"]
    );
    assert!(config(&r, "stunner/udp-gateway").clusters.is_empty());
    assert_eq!(base_route_cond(&r, "Accepted"), ok("Accepted"));
}

#[test]
fn headless_service_has_no_cluster_ip() {
    let svc = "apiVersion: v1\nkind: Service\nmetadata: { name: media-server, namespace: default }\nspec: { clusterIP: None }\n";
    let r = run(&base_with(svc));
    assert_eq!(
        endpoints(&r, "stunner/udp-gateway", "stunner/media-plane"),
        ["10.244.0.5", "10.244.0.6"]
    );
}

#[test]
fn service_without_slices_uses_cluster_ip_only() {
    let mut s = base();
    s.endpoint_slices.clear();
    assert_eq!(
        endpoints(&run(&s), "stunner/udp-gateway", "stunner/media-plane"),
        ["10.96.0.10"]
    );
}

#[test]
fn slices_without_service_still_render() {
    let mut s = base();
    s.services.remove(&key("default/media-server"));
    let r = run(&s);
    assert_eq!(
        endpoints(&r, "stunner/udp-gateway", "stunner/media-plane"),
        ["10.244.0.5", "10.244.0.6"]
    );
    assert_eq!(base_route_cond(&r, "ResolvedRefs"), ok("ResolvedRefs"));
}

#[test]
fn multiple_slices_merged_and_deduplicated() {
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: media-server-xyz, namespace: default, labels: { kubernetes.io/service-name: media-server } }\naddressType: IPv4\nendpoints: [{ addresses: [10.244.1.1, 10.244.0.5] }, { addresses: [10.244.1.2], conditions: { ready: false, terminating: true } }]\n";
    let r = run(&base_with(slice));
    assert_eq!(
        endpoints(&r, "stunner/udp-gateway", "stunner/media-plane"),
        [
            "10.244.0.5",
            "10.244.0.6",
            "10.244.1.1",
            "10.244.1.2",
            "10.96.0.10"
        ]
    );
}

#[test]
fn slices_of_other_services_ignored() {
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: other-1, namespace: default, labels: { kubernetes.io/service-name: other } }\naddressType: IPv4\nendpoints: [{ addresses: [192.168.9.9] }]\n";
    let r = run(&base_with(slice));
    assert!(
        !endpoints(&r, "stunner/udp-gateway", "stunner/media-plane")
            .contains(&"192.168.9.9".to_string())
    );
}

#[test]
fn ipv6_endpoints_with_port_range() {
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: media-server-abcde, namespace: default, labels: { kubernetes.io/service-name: media-server } }\naddressType: IPv6\nendpoints: [{ addresses: ['fd00::1'] }]\n";
    let s = base_with(&format!(
        "{slice}---\n{}",
        route(
            "stunner",
            "media-plane",
            "[{ name: udp-gateway }]",
            "[{ name: media-server, namespace: default, port: 1000, endPort: 2000 }]"
        )
    ));
    let eps = endpoints(&run(&s), "stunner/udp-gateway", "stunner/media-plane");
    assert!(eps.contains(&"fd00::1:<1000-2000>".to_string()), "{eps:?}");
}

#[test]
fn backend_namespace_defaults_to_route_namespace() {
    let svc = "apiVersion: v1\nkind: Service\nmetadata: { name: local, namespace: stunner }\nspec: { clusterIP: 10.96.5.5 }\n";
    let s = base_with(&format!(
        "{svc}---\n{}",
        route(
            "stunner",
            "media-plane",
            "[{ name: udp-gateway }]",
            "[{ name: local }]"
        )
    ));
    assert_eq!(
        endpoints(&run(&s), "stunner/udp-gateway", "stunner/media-plane"),
        ["10.96.5.5"]
    );
}

#[test]
fn mixed_service_and_static_backends() {
    let eps = one_route(
        "[{ name: media-server, namespace: default }, { name: static-svc, kind: StaticService, group: stunner.l7mp.io }]",
    );
    assert_eq!(
        eps,
        [
            "10.0.0.0/8",
            "10.11.12.13",
            "10.244.0.5",
            "10.244.0.6",
            "10.96.0.10"
        ]
    );
}

#[test]
fn multiple_rules_merged() {
    let yaml = "apiVersion: stunner.l7mp.io/v1\nkind: UDPRoute\nmetadata: { name: media-plane, namespace: stunner }\nspec:\n  parentRefs: [{ name: udp-gateway }]\n  rules:\n    - backendRefs: [{ name: media-server, namespace: default }]\n    - backendRefs: [{ name: static-svc, kind: StaticService }]\n";
    let r = run(&base_with(&format!("{yaml}---\n{STATIC}")));
    assert_eq!(
        endpoints(&r, "stunner/udp-gateway", "stunner/media-plane").len(),
        5
    );
}

#[test]
fn malformed_static_prefix_invalidates_config() {
    let bad = STATIC.replace("10.11.12.13", "not-an-ip");
    let s = base_with(&format!(
        "{}---\n{bad}",
        route(
            "stunner",
            "media-plane",
            "[{ name: udp-gateway }]",
            "[{ name: static-svc, kind: StaticService }]"
        )
    ));
    let r = run(&s);
    assert!(r.configs.is_empty());
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        no("Invalid")
    );
}
