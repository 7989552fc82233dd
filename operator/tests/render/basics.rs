//! GatewayClass validation and the overall shape of a rendered config.

use crate::fixtures::*;
use proto::config::{AuthType, ClusterType, ListenerProtocol};

#[test]
fn base_renders_one_config_with_upstream_names() {
    let r = run(&base());
    assert_eq!(r.configs.len(), 1);
    let c = config(&r, "stunner/udp-gateway");
    assert_eq!(c.version, "v1");
    assert_eq!(c.admin.name, "stunner/udp-gateway");
    assert_eq!(c.admin.loglevel, "all:INFO");
    assert_eq!(
        c.admin.healthcheck_endpoint.as_deref(),
        Some("http://:8086")
    );
    assert_eq!(c.admin.metrics_endpoint, "");
    assert_eq!(c.auth.auth_type, AuthType::Static);
    assert_eq!(c.listeners.len(), 1);
    let l = &c.listeners[0];
    assert_eq!(l.name, "stunner/udp-gateway/udp-listener");
    assert_eq!(l.protocol, ListenerProtocol::TurnUdp);
    assert_eq!((l.address.as_str(), l.port), ("$STUNNER_ADDR", 3478));
    assert_eq!(l.routes, ["stunner/media-plane"]);
    assert_eq!(c.clusters.len(), 1);
    assert_eq!(c.clusters[0].name, "stunner/media-plane");
    assert_eq!(c.clusters[0].cluster_type, ClusterType::Static);
}

#[test]
fn rendered_config_survives_stunnerd_parse_and_validate() {
    let r = run(&base());
    let json = config(&r, "stunner/udp-gateway").to_json();
    let lookup = |v: &str| (v == "STUNNER_ADDR").then(|| "10.0.0.1".to_string());
    let mut parsed = proto::config::StunnerConfig::parse_with_env(&json, &lookup).unwrap();
    parsed.validate().unwrap();
    assert_eq!(parsed.listeners[0].address, "10.0.0.1");
    assert_eq!(parsed.clusters[0].endpoints.len(), 3);
}

#[test]
fn render_is_deterministic() {
    let s = base();
    let (a, b) = (run(&s), run(&s));
    assert_eq!(a.configs, b.configs);
    assert_eq!(a.gateway_statuses, b.gateway_statuses);
    assert_eq!(a.route_statuses, b.route_statuses);
    assert_eq!(a.services, b.services);
}

#[test]
fn empty_snapshot_renders_nothing() {
    let r = run(&Default::default());
    assert!(r.configs.is_empty() && r.gateway_statuses.is_empty() && r.deployments.is_empty());
}

#[test]
fn gatewayclass_accepted() {
    let r = run(&base());
    let st = &r.gateway_class_statuses["stunner-gatewayclass"];
    let c = &st.conditions.as_ref().unwrap()[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("Accepted", "True", "Accepted")
    );
    assert_eq!(c.observed_generation, Some(1));
}

#[test]
fn foreign_gatewayclass_ignored() {
    let s = base_with(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: { name: stunner-gatewayclass }\nspec: { controllerName: example.com/other }\n",
    );
    let r = run(&s);
    assert!(r.gateway_class_statuses.is_empty());
    assert!(r.configs.is_empty());
    assert!(r.gateway_statuses.is_empty());
}

fn class_with(params: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{ name: stunner-gatewayclass }}\nspec:\n  controllerName: stunner.l7mp.io/gateway-operator\n{params}"
    )
}

/// A GatewayClass with `params` is refused: nothing rendered, Gateway and route pending.
fn invalid_class(params: &str) {
    let r = run(&base_with(&class_with(params)));
    let c = &r.gateway_class_statuses["stunner-gatewayclass"]
        .conditions
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "InvalidParameters")
    );
    assert!(r.configs.is_empty());
    assert!(r.deployments.is_empty() && r.services.is_empty());
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Accepted"),
        no("InvalidParameters")
    );
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        no("Invalid")
    );
    assert_eq!(base_route_cond(&r, "Accepted"), no("Pending"));
}

fn params(group: &str, kind: &str, name: &str, ns: &str) -> String {
    format!("  parametersRef: {{ group: {group}, kind: {kind}, name: {name}{ns} }}\n")
}

const CONF: &str = "stunner-gatewayconfig";

cases! { invalid_class {
    class_missing_parameters_ref: (""),
    class_parameters_wrong_group: (&params("example.com", "GatewayConfig", CONF, ", namespace: stunner")),
    class_parameters_wrong_kind: (&params("stunner.l7mp.io", "Dataplane", CONF, ", namespace: stunner")),
    class_parameters_without_namespace: (&params("stunner.l7mp.io", "GatewayConfig", CONF, "")),
    class_parameters_unknown_config: (&params("stunner.l7mp.io", "GatewayConfig", "nope", ", namespace: stunner")),
    class_parameters_config_in_other_namespace: (
        &params("stunner.l7mp.io", "GatewayConfig", CONF, ", namespace: default")),
}}

#[test]
fn invalid_class_orphans_owned_service() {
    let r = run(&base_with(&class_with("")));
    assert!(
        r.orphans
            .iter()
            .any(|(k, o)| *k == operator::render::OwnedKind::Service
                && o.to_string() == "stunner/udp-gateway")
    );
}

#[test]
fn gateway_of_other_class_ignored() {
    let s = base_with(
        &gateway("other", &["l:3479:TURN-UDP"]).replace("stunner-gatewayclass", "other-class"),
    );
    let r = run(&s);
    assert!(!r.gateway_statuses.contains_key(&key("stunner/other")));
    assert_eq!(r.configs.len(), 1);
}

#[test]
fn two_classes_render_their_own_gateways() {
    let s = base_with(&format!(
        "{}---\n{}",
        class_with("  parametersRef: { group: stunner.l7mp.io, kind: GatewayConfig, name: stunner-gatewayconfig, namespace: stunner }\n").replace("name: stunner-gatewayclass", "name: second"),
        gateway("gw2", &["l:3479:TURN-UDP"]).replace("stunner-gatewayclass", "second")
    ));
    let r = run(&s);
    assert_eq!(r.gateway_class_statuses.len(), 2);
    assert_eq!(r.configs.len(), 2);
    assert_eq!(config(&r, "stunner/gw2").listeners[0].name, "stunner/gw2/l");
}

#[test]
fn many_gateways_each_get_config_service_deployment() {
    let mut s = base();
    for i in 0..5 {
        s = with(
            &s,
            &gateway(&format!("gw{i}"), &[&format!("l:{}:UDP", 4000 + i)]),
        );
    }
    let r = run(&s);
    assert_eq!(r.configs.len(), 6);
    assert_eq!(r.services.len(), 6);
    assert_eq!(r.deployments.len(), 6);
}

#[test]
fn loglevel_from_gatewayconfig() {
    let s = base_with(
        "apiVersion: stunner.l7mp.io/v1\nkind: GatewayConfig\nmetadata: { name: stunner-gatewayconfig, namespace: stunner }\nspec: { logLevel: 'all:DEBUG', userName: u, password: p }\n",
    );
    assert_eq!(
        config(&run(&s), "stunner/udp-gateway").admin.loglevel,
        "all:DEBUG"
    );
}

#[test]
fn gateway_without_listeners_renders_empty_config() {
    let s = base_with(&gateway("udp-gateway", &[]));
    let r = run(&s);
    let c = config(&r, "stunner/udp-gateway");
    assert!(c.listeners.is_empty() && c.clusters.is_empty());
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        no("AddressNotAssigned")
    );
}
