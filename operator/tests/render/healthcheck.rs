//! The health-check port of LoadBalancer Services: added (TCP, named `gateway-health-check`) when
//! the merged annotations carry a `service.beta.kubernetes.io/…health…port` and a TCP/HTTP
//! `…health…protocol`, as upstream; never for other Service types or when disabled.

use crate::fixtures::*;
use k8s_openapi::api::core::v1::ServicePort;
use operator::render::HEALTH_CHECK_PORT_NAME;

const AWS_PORT: &str = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port";
const AWS_PROTO: &str = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol";
const DO_PORT: &str = "service.beta.kubernetes.io/do-loadbalancer-healthcheck-port";
const DO_PROTO: &str = "service.beta.kubernetes.io/do-loadbalancer-healthcheck-protocol";

/// The base Gateway annotated with `ann` (YAML flow map body).
fn gw(ann: &str) -> String {
    annotated(&format!("{{ {ann} }}"), &["udp-listener:3478:TURN-UDP"])
}

fn health_port(yaml: &str) -> Option<ServicePort> {
    let r = run(&base_with(yaml));
    let ports = r.services[0].spec.as_ref().unwrap().ports.clone().unwrap();
    let mut health = ports
        .into_iter()
        .filter(|p| p.name.as_deref() == Some(HEALTH_CHECK_PORT_NAME));
    let first = health.next();
    assert!(health.next().is_none(), "at most one health-check port");
    first
}

/// Renders `yaml` over the base and checks the health-check port number (None: no port).
fn health(yaml: &str, want: Option<i32>) {
    let port = health_port(yaml);
    assert_eq!(port.as_ref().map(|p| p.port), want, "{yaml}");
    if let Some(p) = port {
        assert_eq!(p.protocol.as_deref(), Some("TCP"));
        assert_eq!(p.node_port, None);
    }
}

fn gw_ann(port_key: &str, port: &str, proto_key: &str, proto: &str) -> String {
    gw(&format!(
        "\"{port_key}\": \"{port}\", \"{proto_key}\": \"{proto}\""
    ))
}

fn conf_ann(ann: &str) -> String {
    conf_annotations(&format!("{{ {ann} }}"))
}

cases! { health {
    health_none_without_annotations: ("", None),
    health_aws_tcp: (&gw_ann(AWS_PORT, "8086", AWS_PROTO, "TCP"), Some(8086)),
    health_aws_http: (&gw_ann(AWS_PORT, "8086", AWS_PROTO, "HTTP"), Some(8086)),
    health_digitalocean_lowercase_http: (&gw_ann(DO_PORT, "8086", DO_PROTO, "http"), Some(8086)),
    health_other_port_number_kept: (&gw_ann(DO_PORT, "9000", DO_PROTO, "tcp"), Some(9000)),
    health_udp_protocol_adds_nothing: (&gw_ann(AWS_PORT, "8086", AWS_PROTO, "UDP"), None),
    health_https_protocol_adds_nothing: (&gw_ann(AWS_PORT, "8086", AWS_PROTO, "HTTPS"), None),
    health_non_numeric_port_adds_nothing: (&gw_ann(AWS_PORT, "traffic-port", AWS_PROTO, "TCP"), None),
    health_out_of_range_port_adds_nothing: (&gw_ann(AWS_PORT, "70000", AWS_PROTO, "TCP"), None),
    health_port_without_protocol_adds_nothing: (&gw(&format!("\"{AWS_PORT}\": \"8086\"")), None),
    health_protocol_without_port_adds_nothing: (&gw(&format!("\"{AWS_PROTO}\": \"TCP\"")), None),
    health_key_outside_cloud_prefix_ignored: (
        &gw_ann("example.com/healthcheck-port", "8086", "example.com/healthcheck-protocol", "TCP"), None),
    health_key_without_health_ignored: (
        &gw_ann("service.beta.kubernetes.io/lb-port", "8086", AWS_PROTO, "TCP"), None),
    health_from_gatewayconfig_defaults: (
        &conf_ann(&format!("\"{AWS_PORT}\": \"8086\", \"{AWS_PROTO}\": \"TCP\"")), Some(8086)),
    health_disabled_by_annotation: (
        &gw(&format!("\"{AWS_PORT}\": \"8086\", \"{AWS_PROTO}\": \"TCP\", stunner.l7mp.io/disable-health-check-expose: \"true\"")),
        None),
    health_disable_annotation_other_value_keeps_port: (
        &gw(&format!("\"{AWS_PORT}\": \"8086\", \"{AWS_PROTO}\": \"TCP\", stunner.l7mp.io/disable-health-check-expose: \"no\"")),
        Some(8086)),
    health_not_on_nodeport_services: (
        &gw(&format!("\"{AWS_PORT}\": \"8086\", \"{AWS_PROTO}\": \"TCP\", stunner.l7mp.io/service-type: NodePort")),
        None),
    health_not_on_clusterip_services: (
        &gw(&format!("\"{AWS_PORT}\": \"8086\", \"{AWS_PROTO}\": \"TCP\", stunner.l7mp.io/service-type: ClusterIP")),
        None),
}}

#[test]
fn gateway_annotation_overrides_gatewayconfig_port() {
    let conf = conf_ann(&format!(
        "\"{AWS_PORT}\": \"9000\", \"{AWS_PROTO}\": \"TCP\""
    ));
    let yaml = format!("{conf}---\n{}", gw(&format!("\"{AWS_PORT}\": \"8086\"")));
    assert_eq!(health_port(&yaml).map(|p| p.port), Some(8086));
}

#[test]
fn health_port_follows_the_listener_ports_and_annotations_are_copied() {
    let r = run(&base_with(&gw_ann(AWS_PORT, "8086", AWS_PROTO, "HTTP")));
    let svc = &r.services[0];
    assert_eq!(port_names(svc), ["udp-listener", HEALTH_CHECK_PORT_NAME]);
    assert_eq!(
        svc.metadata.annotations.as_ref().unwrap()[AWS_PROTO],
        "HTTP"
    );
}
