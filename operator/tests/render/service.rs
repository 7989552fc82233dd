//! The Gateway's Service: labels, selector, type, ports and every annotation.

use crate::fixtures::*;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn svc(r: &operator::render::Rendered) -> &Service {
    r.services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("udp-gateway"))
        .expect("service")
}

#[test]
fn service_metadata_and_selector() {
    let r = run(&base());
    let s = svc(&r);
    assert_eq!(s.metadata.namespace.as_deref(), Some("stunner"));
    let l = s.metadata.labels.as_ref().unwrap();
    assert_eq!(l["stunner.l7mp.io/owned-by"], "stunner");
    assert_eq!(l["stunner.l7mp.io/related-gateway-name"], "udp-gateway");
    assert_eq!(l["stunner.l7mp.io/related-gateway-namespace"], "stunner");
    assert_eq!(
        s.metadata.annotations.as_ref().unwrap()["stunner.l7mp.io/related-gateway-name"],
        "stunner/udp-gateway"
    );
    let sel = s.spec.as_ref().unwrap().selector.as_ref().unwrap();
    assert_eq!(sel.len(), 3);
    assert_eq!(sel["app"], "stunner");
    let o = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            o.kind.as_str(),
            o.name.as_str(),
            o.uid.as_str(),
            o.controller
        ),
        ("Gateway", "udp-gateway", "uid-udp", Some(true))
    );
}

#[test]
fn service_defaults() {
    let r = run(&base());
    let spec = svc(&r).spec.clone().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
    assert_eq!(spec.external_traffic_policy, None);
    let p = &spec.ports.unwrap()[0];
    assert_eq!(
        (
            p.name.as_deref(),
            p.protocol.as_deref(),
            p.port,
            p.node_port
        ),
        (Some("udp-listener"), Some("UDP"), 3478, None)
    );
}

/// `service-type: ann` gives a Service of type `want`.
fn service_type(ann: &str, want: &str) {
    let r = run(&base_with(&annotated(
        &format!("{{ stunner.l7mp.io/service-type: {ann} }}"),
        &["l:3478:UDP"],
    )));
    assert_eq!(svc(&r).spec.as_ref().unwrap().type_.as_deref(), Some(want));
}

cases! { service_type {
    service_type_load_balancer: ("LoadBalancer", "LoadBalancer"),
    service_type_node_port: ("NodePort", "NodePort"),
    service_type_cluster_ip: ("ClusterIP", "ClusterIP"),
    service_type_external_name: ("ExternalName", "ExternalName"),
    service_type_unknown_defaults: ("bogus", "LoadBalancer"),
}}

#[test]
fn gateway_annotation_overrides_gatewayconfig() {
    let s = base_with(&format!(
        "{}---\n{}",
        conf_annotations("{ stunner.l7mp.io/service-type: NodePort, cloud/lb: x }"),
        annotated(
            "{ stunner.l7mp.io/service-type: ClusterIP }",
            &["l:3478:UDP"]
        )
    ));
    let r = run(&s);
    let s = svc(&r);
    assert_eq!(s.spec.as_ref().unwrap().type_.as_deref(), Some("ClusterIP"));
    assert_eq!(s.metadata.annotations.as_ref().unwrap()["cloud/lb"], "x");
}

#[test]
fn gatewayconfig_annotation_alone_applies() {
    let r = run(&base_with(&conf_annotations(
        "{ stunner.l7mp.io/service-type: NodePort }",
    )));
    assert_eq!(
        svc(&r).spec.as_ref().unwrap().type_.as_deref(),
        Some("NodePort")
    );
}

fn external_traffic_policy(ann: &str, want: Option<&str>) {
    let r = run(&base_with(&annotated(ann, &["l:3478:UDP"])));
    let spec = svc(&r).spec.clone().unwrap();
    assert_eq!(spec.external_traffic_policy.as_deref(), want);
}

const ETP_LOCAL: &str = "stunner.l7mp.io/external-traffic-policy: local";

cases! { external_traffic_policy {
    etp_local: (&format!("{{ {ETP_LOCAL} }}"), Some("Local")),
    etp_local_any_case: ("{ stunner.l7mp.io/external-traffic-policy: Local }", Some("Local")),
    etp_cluster_is_default: ("{ stunner.l7mp.io/external-traffic-policy: cluster }", None),
    etp_local_on_node_port: (&format!("{{ {ETP_LOCAL}, stunner.l7mp.io/service-type: NodePort }}"), Some("Local")),
    etp_never_on_cluster_ip: (&format!("{{ {ETP_LOCAL}, stunner.l7mp.io/service-type: ClusterIP }}"), None),
}}

fn session_affinity(ann: &str, want: &str) {
    let r = run(&base_with(&annotated(ann, &["l:3478:UDP"])));
    let spec = svc(&r).spec.clone().unwrap();
    assert_eq!(spec.session_affinity.as_deref(), Some(want));
}

cases! { session_affinity {
    affinity_disabled: ("{ stunner.l7mp.io/disable-session-affinity: 'true' }", "None"),
    affinity_disabled_any_case: ("{ stunner.l7mp.io/disable-session-affinity: 'TRUE' }", "None"),
    affinity_kept_on_false: ("{ stunner.l7mp.io/disable-session-affinity: 'false' }", "ClientIP"),
    affinity_default_client_ip: ("{}", "ClientIP"),
}}

/// Listeners UDP `u`, TCP `t`, DTLS `d`, TURN-TCP `x`: with annotations `ann` the Service exposes
/// `want`.
fn mixed_protocol(ann: &str, want: &[&str]) {
    let ls = [
        "u:3478:UDP",
        "t:3479:TCP",
        "d:3480:TURN-DTLS",
        "x:3481:TURN-TCP",
    ];
    let gw = annotated(ann, &ls).replace(
        "protocol: TURN-DTLS }",
        "protocol: TURN-DTLS, tls: { certificateRefs: [{ name: x }] } }",
    );
    let r = run(&base_with(&gw));
    assert_eq!(port_names(svc(&r)), want);
}

cases! { mixed_protocol {
    mixed_off_exposes_first_transport: ("{}", &["u", "d"]),
    mixed_on_exposes_all: ("{ stunner.l7mp.io/enable-mixed-protocol-lb: 'true' }", &["u", "t", "d", "x"]),
    mixed_other_value_is_off: ("{ stunner.l7mp.io/enable-mixed-protocol-lb: 'no' }", &["u", "d"]),
}}

#[test]
fn first_listener_protocol_decides_service_protocol() {
    let r = run(&base_with(&gateway(
        "udp-gateway",
        &["t:3479:TCP", "u:3478:UDP"],
    )));
    let ports = svc(&r).spec.clone().unwrap().ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
}

/// Listeners `a` and `b` with annotations `ann` get these nodePorts and targetPorts.
fn port_maps(ann: &str, nodeports: [Option<i32>; 2], targets: [Option<i32>; 2]) {
    let r = run(&base_with(&annotated(ann, &["a:3478:UDP", "b:3479:UDP"])));
    let ports = svc(&r).spec.clone().unwrap().ports.unwrap();
    let np: Vec<Option<i32>> = ports.iter().map(|p| p.node_port).collect();
    let tp: Vec<Option<IntOrString>> = ports.iter().map(|p| p.target_port.clone()).collect();
    assert_eq!(np, nodeports);
    assert_eq!(tp, targets.map(|t| t.map(IntOrString::Int)));
}

cases! { port_maps {
    nodeport_per_listener: (r#"{ stunner.l7mp.io/nodeport: '{"a":30001,"b":30002}' }"#,
        [Some(30001), Some(30002)], [None, None]),
    nodeport_unknown_listener_ignored: (r#"{ stunner.l7mp.io/nodeport: '{"b":30002,"zz":1}' }"#,
        [None, Some(30002)], [None, None]),
    nodeport_malformed_ignored: (r#"{ stunner.l7mp.io/nodeport: 'not json' }"#, [None, None], [None, None]),
    targetport_one_listener: (r#"{ stunner.l7mp.io/targetport: '{"a":4000}' }"#, [None, None], [Some(4000), None]),
    targetport_and_nodeport_together: (
        r#"{ stunner.l7mp.io/targetport: '{"a":4000,"b":4001}', stunner.l7mp.io/nodeport: '{"a":30001}' }"#,
        [Some(30001), None], [Some(4000), Some(4001)]),
}}

#[test]
fn conflicted_and_unsupported_listeners_not_exposed() {
    let r = run(&base_with(&gateway(
        "udp-gateway",
        &["a:3478:UDP", "b:3478:UDP", "c:80:HTTP"],
    )));
    assert_eq!(port_names(svc(&r)), ["a"]);
}

#[test]
fn gateway_annotations_copied_to_service() {
    let r = run(&base_with(&annotated(
        "{ example.com/x: y }",
        &["l:3478:UDP"],
    )));
    assert_eq!(
        svc(&r).metadata.annotations.as_ref().unwrap()["example.com/x"],
        "y"
    );
}

#[test]
fn disable_managed_dataplane_keeps_service_drops_deployment() {
    let mut s = base_with(&annotated(
        "{ stunner.l7mp.io/disable-managed-dataplane: 'true' }",
        &["udp-listener:3478:UDP"],
    ));
    s.apply_manifests("apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: udp-gateway, namespace: stunner, labels: { stunner.l7mp.io/owned-by: stunner } }\nspec: { selector: {}, template: {} }\n").unwrap();
    let r = run(&s);
    assert!(r.deployments.is_empty());
    assert_eq!(r.services.len(), 1);
    assert!(r.orphans.contains(&(
        operator::render::OwnedKind::Deployment,
        key("stunner/udp-gateway")
    )));
    assert!(r.configs.contains_key(&key("stunner/udp-gateway")));
}

#[test]
fn disable_managed_dataplane_needs_no_dataplane() {
    let mut s = base_with(&annotated(
        "{ stunner.l7mp.io/disable-managed-dataplane: 'true' }",
        &["udp-listener:3478:UDP"],
    ));
    s.dataplanes.clear();
    let r = run(&s);
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        ok("Programmed")
    );
}
