//! ReferenceGrants: a TLS certificateRef into another namespace needs a grant there
//! (`RefNotPermitted` otherwise); route backends in other namespaces are allowed without one
//! (upstream STUNner) unless `require_backend_grants` is set.

use crate::fixtures::*;
use operator::render::{RenderOptions, Rendered, RouteApi, RouteId, render};
use operator::store::Snapshot;

const GW: &str = "stunner/udp-gateway";

/// A ReferenceGrant `certs/<name>` with the given `from` and `to` entries (YAML flow).
fn grant(ns: &str, from: &str, to: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{ name: g, namespace: {ns} }}\nspec: {{ from: {from}, to: {to} }}\n"
    )
}

const FROM_GW: &str = "[{ group: gateway.networking.k8s.io, kind: Gateway, namespace: stunner }]";
const TO_SECRETS: &str = "[{ group: '', kind: Secret }]";

/// The TLS Gateway referencing Secret `certs/cert`, plus that Secret and `extra`.
fn cross_ns_tls(extra: &str) -> Snapshot {
    let secret = tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key")
        .replace("namespace: stunner", "namespace: certs");
    let gw = tls_gateway("TURN-TLS", "[{ name: cert, namespace: certs }]");
    base_with(&format!("{secret}---\n{gw}---\n{extra}"))
}

/// Renders [`cross_ns_tls`] and checks the listener's ResolvedRefs and whether it is rendered.
fn cert_grant(extra: &str, want: (String, String)) {
    let r = run(&cross_ns_tls(extra));
    let permitted = want.0 == "True";
    assert_eq!(l_cond(&r, GW, "tls", "ResolvedRefs"), want);
    assert_eq!(
        config(&r, GW).listeners.iter().any(|l| l.key == KEY),
        permitted
    );
}

cases! { cert_grant {
    cert_in_other_namespace_without_grant_not_permitted: ("", no("RefNotPermitted")),
    cert_grant_permits_any_secret: (&grant("certs", FROM_GW, TO_SECRETS), ok("ResolvedRefs")),
    cert_grant_naming_the_secret_permits: (
        &grant("certs", FROM_GW, "[{ group: '', kind: Secret, name: cert }]"), ok("ResolvedRefs")),
    cert_grant_naming_another_secret_denies: (
        &grant("certs", FROM_GW, "[{ group: '', kind: Secret, name: other }]"), no("RefNotPermitted")),
    cert_grant_in_gateway_namespace_denies: (&grant("stunner", FROM_GW, TO_SECRETS), no("RefNotPermitted")),
    cert_grant_from_other_namespace_denies: (
        &grant("certs", "[{ group: gateway.networking.k8s.io, kind: Gateway, namespace: other }]", TO_SECRETS),
        no("RefNotPermitted")),
    cert_grant_from_other_kind_denies: (
        &grant("certs", "[{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: stunner }]", TO_SECRETS),
        no("RefNotPermitted")),
    cert_grant_from_other_group_denies: (
        &grant("certs", "[{ group: example.com, kind: Gateway, namespace: stunner }]", TO_SECRETS),
        no("RefNotPermitted")),
    cert_grant_to_services_denies: (&grant("certs", FROM_GW, "[{ group: '', kind: Service }]"), no("RefNotPermitted")),
    cert_grant_core_group_alias_permits: (
        &grant("certs", FROM_GW, "[{ group: core, kind: Secret }]"), ok("ResolvedRefs")),
    cert_grant_with_several_entries_permits: (
        &grant("certs",
            "[{ group: x, kind: Y, namespace: z }, { group: gateway.networking.k8s.io, kind: Gateway, namespace: stunner }]",
            "[{ group: '', kind: ConfigMap }, { group: '', kind: Secret }]"),
        ok("ResolvedRefs")),
}}

#[test]
fn granted_but_missing_secret_is_invalid_not_refused() {
    let gw = tls_gateway("TURN-TLS", "[{ name: gone, namespace: certs }]");
    let r = run(&base_with(&format!(
        "{gw}---\n{}",
        grant("certs", FROM_GW, TO_SECRETS)
    )));
    assert_eq!(
        l_cond(&r, GW, "tls", "ResolvedRefs"),
        no("InvalidCertificateRef")
    );
}

#[test]
fn refused_ref_falls_through_to_a_same_namespace_secret() {
    let gw = tls_gateway(
        "TURN-DTLS",
        "[{ name: cert, namespace: certs }, { name: local }]",
    );
    let secrets = [
        tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key")
            .replace("namespace: stunner", "namespace: certs"),
        tls_secret("local", "kubernetes.io/tls", "tls.crt", "tls.key"),
    ];
    let r = run(&base_with(&format!(
        "{}---\n{}---\n{gw}",
        secrets[0], secrets[1]
    )));
    assert_eq!(l_cond(&r, GW, "tls", "ResolvedRefs"), ok("ResolvedRefs"));
    assert_eq!(config(&r, GW).listeners[0].cert, CERT);
}

#[test]
fn refused_listener_is_not_programmed_but_accepted() {
    let r = run(&cross_ns_tls(""));
    assert_eq!(l_cond(&r, GW, "tls", "Accepted"), ok("Accepted"));
    assert_eq!(l_cond(&r, GW, "tls", "Programmed"), no("Invalid"));
}

fn strict(snap: &Snapshot) -> Rendered {
    let opts = RenderOptions {
        require_backend_grants: true,
        ..RenderOptions::default()
    };
    render(snap, &opts)
}

const FROM_ROUTE: &str = "[{ group: stunner.l7mp.io, kind: UDPRoute, namespace: stunner }]";

/// With `require_backend_grants`: the base route (`stunner`) to its Service in `default`, plus
/// `extra`.
fn backend_grant(extra: &str, want: (String, String)) {
    let r = strict(&base_with(extra));
    assert_eq!(base_route_cond(&r, "ResolvedRefs"), want);
    let has_cluster = config(&r, GW).cluster("stunner/media-plane").is_some();
    assert_eq!(has_cluster, want.0 == "True");
}

cases! { backend_grant {
    strict_backend_without_grant_not_permitted: ("", no("RefNotPermitted")),
    strict_backend_with_grant_resolves: (&grant("default", FROM_ROUTE, "[{ group: '', kind: Service }]"), ok("ResolvedRefs")),
    strict_backend_grant_naming_it_resolves: (
        &grant("default", FROM_ROUTE, "[{ group: '', kind: Service, name: media-server }]"), ok("ResolvedRefs")),
    strict_backend_grant_naming_other_denies: (
        &grant("default", FROM_ROUTE, "[{ group: '', kind: Service, name: other }]"), no("RefNotPermitted")),
    strict_backend_grant_for_gateway_api_routes_denies: (
        &grant("default", "[{ group: gateway.networking.k8s.io, kind: UDPRoute, namespace: stunner }]",
            "[{ group: '', kind: Service }]"),
        no("RefNotPermitted")),
    strict_backend_grant_for_secrets_denies: (&grant("default", FROM_ROUTE, TO_SECRETS), no("RefNotPermitted")),
}}

#[test]
fn backend_in_other_namespace_allowed_by_default_as_upstream() {
    let r = run(&base());
    assert_eq!(base_route_cond(&r, "ResolvedRefs"), ok("ResolvedRefs"));
    assert!(!endpoints(&r, GW, "stunner/media-plane").is_empty());
}

#[test]
fn strict_same_namespace_backend_needs_no_grant() {
    let route = route(
        "default",
        "local",
        "[{ name: udp-gateway, namespace: stunner }]",
        "[{ name: media-server }]",
    );
    let gw = gateway("udp-gateway", &["udp-listener:3478:TURN-UDP"]).replace(
        "protocol: TURN-UDP }",
        "protocol: TURN-UDP, allowedRoutes: { namespaces: { from: All } } }",
    );
    let r = strict(&base_with(&format!("{route}---\n{gw}")));
    assert_eq!(
        route_cond(
            &r,
            &stunner_route("default/local"),
            "udp-gateway",
            "ResolvedRefs"
        ),
        ok("ResolvedRefs")
    );
    assert_eq!(
        endpoints(&r, GW, "default/local"),
        ["10.244.0.5", "10.244.0.6", "10.96.0.10"]
    );
}

#[test]
fn strict_static_service_needs_a_static_service_grant() {
    let svc = "apiVersion: stunner.l7mp.io/v1\nkind: StaticService\nmetadata: { name: ext, namespace: statics }\nspec: { prefixes: [192.0.2.0/24] }\n";
    let route = route(
        "stunner",
        "media-plane",
        "[{ name: udp-gateway }]",
        "[{ group: stunner.l7mp.io, kind: StaticService, name: ext, namespace: statics }]",
    );
    let to = "[{ group: stunner.l7mp.io, kind: StaticService }]";
    let denied = strict(&base_with(&format!("{svc}---\n{route}")));
    assert!(config(&denied, GW).cluster("stunner/media-plane").is_none());
    let snap = base_with(&format!(
        "{svc}---\n{route}---\n{}",
        grant("statics", FROM_ROUTE, to)
    ));
    assert_eq!(
        endpoints(&strict(&snap), GW, "stunner/media-plane"),
        ["192.0.2.0/24"]
    );
}

#[test]
fn strict_refused_backend_keeps_the_other_backends() {
    let route = route(
        "stunner",
        "media-plane",
        "[{ name: udp-gateway }]",
        "[{ name: media-server, namespace: default }, { name: local }]",
    );
    let local = "apiVersion: v1\nkind: Service\nmetadata: { name: local, namespace: stunner }\nspec: { clusterIP: 10.96.0.99 }\n";
    let r = strict(&base_with(&format!("{route}---\n{local}")));
    assert_eq!(endpoints(&r, GW, "stunner/media-plane"), ["10.96.0.99"]);
    assert_eq!(base_route_cond(&r, "ResolvedRefs"), no("RefNotPermitted"));
}

/// A Gateway API v1alpha2 route `stunner/v1a2` to the Service `default/media-server`.
const V1A2_ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: UDPRoute\nmetadata: { name: v1a2, namespace: stunner }\nspec:\n  parentRefs: [{ name: udp-gateway }]\n  rules: [{ backendRefs: [{ name: media-server, namespace: default }] }]\n";

/// With `require_backend_grants`, the v1alpha2 route's backend resolves only with a grant naming
/// the Gateway API group as the referrer.
fn v1a2_backend_grant(from_group: &str, want: (String, String)) {
    let from = format!("[{{ group: {from_group}, kind: UDPRoute, namespace: stunner }}]");
    let g = grant("default", &from, "[{ group: '', kind: Service }]");
    let r = strict(&base_with(&format!("{V1A2_ROUTE}---\n{g}")));
    let id = RouteId {
        api: RouteApi::GatewayV1Alpha2,
        key: key("stunner/v1a2"),
    };
    assert_eq!(route_cond(&r, &id, "udp-gateway", "ResolvedRefs"), want);
}

cases! { v1a2_backend_grant {
    strict_v1alpha2_route_with_gateway_api_grant_resolves: ("gateway.networking.k8s.io", ok("ResolvedRefs")),
    strict_v1alpha2_route_with_stunner_grant_denied: ("stunner.l7mp.io", no("RefNotPermitted")),
}}
