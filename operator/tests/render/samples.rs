//! Upstream documentation sample manifests (tests/fixtures/*.yaml) are accepted and rendered.

use crate::fixtures::*;
use operator::store::Snapshot;
use proto::config::{AuthType, ListenerProtocol};

fn load(files: &[&str]) -> Snapshot {
    let mut s = Snapshot::default();
    for f in files {
        let path = format!("{}/tests/fixtures/{f}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        s.apply_manifests(&text)
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    s
}

#[test]
fn getting_started_udp_gateway() {
    let r = run(&load(&["common.yaml", "udp-gateway.yaml"]));
    let c = config(&r, "stunner/udp-gateway");
    assert_eq!(c.auth.credential("username"), Some("user-1"));
    assert_eq!(c.listeners[0].routes, ["stunner/iperf-server"]);
    assert_eq!(c.clusters[0].endpoints, ["10.96.23.4"]);
    assert_eq!(r.deployments.len(), 1);
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Accepted"),
        ok("Accepted")
    );
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        no("AddressNotAssigned")
    );
}

#[test]
fn tls_and_dtls_gateway_sample() {
    let r = run(&load(&["common.yaml", "tls-gateway.yaml"]));
    let c = config(&r, "stunner/tls-gateway");
    let protos: Vec<_> = c.listeners.iter().map(|l| l.protocol).collect();
    assert_eq!(
        protos,
        [ListenerProtocol::TurnTls, ListenerProtocol::TurnDtls]
    );
    assert!(
        c.listeners
            .iter()
            .all(|l| !l.cert.is_empty() && !l.key.is_empty())
    );
    assert_eq!(c.clusters[0].endpoints, ["10.244.1.10:<10000-20000>"]);
    let ports = r.services[0].spec.clone().unwrap().ports.unwrap();
    assert_eq!(ports.len(), 2, "mixed-protocol LB exposes both");
}

#[test]
fn static_service_sample_with_nodeport() {
    let r = run(&load(&["common.yaml", "static-service.yaml"]));
    assert_eq!(
        endpoints(&r, "stunner/udp-gateway", "stunner/static-route"),
        ["10.11.12.13", "10.11.12.14"]
    );
    let spec = r.services[0].spec.clone().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    assert_eq!(spec.ports.unwrap()[0].node_port, Some(30478));
}

#[test]
fn auth_ref_sample() {
    let r = run(&load(&["common.yaml", "authref.yaml"]));
    let a = &config(&r, "stunner/udp-gateway").auth;
    assert_eq!(a.auth_type, AuthType::Static);
    assert_eq!(
        (a.credential("username"), a.credential("password")),
        (Some("my-user"), Some("my-password"))
    );
}

#[test]
fn gateway_api_udproute_sample() {
    let r = run(&load(&["common.yaml", "gwapi-udproute.yaml"]));
    assert_eq!(
        endpoints(&r, "stunner/udp-gateway", "default/media-plane"),
        ["10.96.7.7"]
    );
}

#[test]
fn cross_namespace_tls_with_reference_grant_and_lb_health_check() {
    let mut s = load(&["common.yaml", "cross-namespace-tls.yaml"]);
    let r = run(&s);
    let l = &config(&r, "stunner/secure-gateway").listeners[0];
    assert_eq!(l.protocol, ListenerProtocol::TurnTls);
    assert!(!l.cert.is_empty() && !l.key.is_empty());
    let ports = r
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("secure-gateway"))
        .unwrap()
        .spec
        .clone()
        .unwrap()
        .ports
        .unwrap();
    let health = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("gateway-health-check"));
    assert_eq!(
        health.map(|p| (p.port, p.protocol.as_deref())),
        Some((8086, Some("TCP")))
    );
    s.reference_grants.clear();
    let r = run(&s);
    assert!(config(&r, "stunner/secure-gateway").listeners.is_empty());
    assert_eq!(
        l_cond(&r, "stunner/secure-gateway", "tls-listener", "ResolvedRefs"),
        no("RefNotPermitted")
    );
}

#[test]
fn all_samples_load_together() {
    let s = load(&[
        "common.yaml",
        "udp-gateway.yaml",
        "tls-gateway.yaml",
        "static-service.yaml",
        "authref.yaml",
        "gwapi-udproute.yaml",
        "cross-namespace-tls.yaml",
    ]);
    let r = run(&s);
    assert_eq!(r.configs.len(), 3);
}

#[test]
fn unknown_kind_is_an_error() {
    let mut s = Snapshot::default();
    let err = s
        .apply_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n")
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported kind v1/ConfigMap"),
        "{err}"
    );
    let err = s.apply_manifests("apiVersion: stunner.l7mp.io/v1\nkind: StaticService\nmetadata: { name: x }\nspec: { prefixes: 3 }\n").unwrap_err();
    assert!(err.to_string().contains("StaticService"), "{err}");
}
