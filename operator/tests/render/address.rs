//! Public address precedence: Gateway addresses → LoadBalancer status → Node ExternalIP + NodePort.

use crate::fixtures::*;

fn lb_service(ty: &str, status: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: udp-gateway\n  namespace: stunner\n  labels: {{ stunner.l7mp.io/owned-by: stunner }}\n  annotations: {{ stunner.l7mp.io/related-gateway-name: stunner/udp-gateway }}\nspec:\n  type: {ty}\n  ports: [{{ name: udp-listener, port: 3478, protocol: UDP, nodePort: 30478 }}]\nstatus: {status}\n"
    )
}

const NODES: &str = "apiVersion: v1\nkind: Node\nmetadata: { name: node-b }\nstatus: { addresses: [{ type: InternalIP, address: 10.0.0.2 }, { type: ExternalIP, address: 5.6.7.8 }] }\n---\napiVersion: v1\nkind: Node\nmetadata: { name: node-a }\nstatus: { addresses: [{ type: InternalIP, address: 10.0.0.1 }] }\n";

fn public(r: &operator::render::Rendered) -> (String, u16) {
    let l = &config(r, "stunner/udp-gateway").listeners[0];
    (l.public_address.clone(), l.public_port)
}

fn gw_with_address(addr: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: udp-gateway, namespace: stunner }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  addresses: [{addr}]\n  listeners: [{{ name: udp-listener, port: 3478, protocol: UDP }}]\n"
    )
}

/// Gateway `gw` exposed by Service `svc` (two Nodes exist, one with an ExternalIP) advertises
/// `addr:port`, is Programmed and reports the address in its status.
fn precedence(gw: &str, svc: &str, addr: &str, port: u16) {
    let r = run(&base_with(&format!("{NODES}---\n{gw}---\n{svc}")));
    assert_eq!(public(&r), (addr.to_string(), port));
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        ok("Programmed")
    );
    let addrs = gw_status(&r, "stunner/udp-gateway")
        .addresses
        .clone()
        .unwrap();
    assert_eq!(addrs[0].value, addr);
}

const LB: &str = "{ loadBalancer: { ingress: [{ ip: 1.2.3.4 }] } }";

fn plain() -> String {
    gateway("udp-gateway", &["udp-listener:3478:UDP"])
}

cases! { precedence {
    spec_address_wins: (&gw_with_address("{ type: IPAddress, value: 9.9.9.9 }"),
        &lb_service("LoadBalancer", LB), "9.9.9.9", 3478),
    lb_ip: (&plain(), &lb_service("LoadBalancer", LB), "1.2.3.4", 3478),
    lb_hostname: (&plain(),
        &lb_service("LoadBalancer", "{ loadBalancer: { ingress: [{ hostname: lb.example.com }] } }"),
        "lb.example.com", 3478),
    lb_ip_before_hostname: (&plain(),
        &lb_service("LoadBalancer", "{ loadBalancer: { ingress: [{ ip: 1.1.1.1, hostname: h }] } }"),
        "1.1.1.1", 3478),
    lb_pending_falls_back_to_node_port: (&plain(), &lb_service("LoadBalancer", "{}"), "5.6.7.8", 30478),
    node_port_service: (&plain(), &lb_service("NodePort", "{}"), "5.6.7.8", 30478),
    node_port_ignores_lb_status: (&plain(), &lb_service("NodePort", LB), "5.6.7.8", 30478),
    empty_spec_address_skipped: (&gw_with_address("{ type: IPAddress, value: '' }"),
        &lb_service("LoadBalancer", LB), "1.2.3.4", 3478),
}}

#[test]
fn per_port_lb_status_preferred() {
    let svc = lb_service(
        "LoadBalancer",
        "{ loadBalancer: { ingress: [{ ip: 1.1.1.1, ports: [{ port: 9999, protocol: UDP }] }, { ip: 2.2.2.2, ports: [{ port: 3478, protocol: UDP }] }] } }",
    );
    assert_eq!(
        public(&run(&base_with(&svc))),
        ("2.2.2.2".to_string(), 3478)
    );
}

#[test]
fn no_address_anywhere() {
    let r = run(&base_with(&lb_service("LoadBalancer", "{}")));
    assert_eq!(public(&r), (String::new(), 0));
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        no("AddressNotAssigned")
    );
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "udp-listener", "Programmed"),
        no("Pending")
    );
    assert!(gw_status(&r, "stunner/udp-gateway").addresses.is_none());
}

#[test]
fn hostname_address_type() {
    let r = run(&base_with(&lb_service(
        "LoadBalancer",
        "{ loadBalancer: { ingress: [{ hostname: lb.example.com }] } }",
    )));
    assert_eq!(
        gw_status(&r, "stunner/udp-gateway")
            .addresses
            .clone()
            .unwrap()[0]
            .r#type
            .as_deref(),
        Some("Hostname")
    );
}

#[test]
fn unannotated_service_not_used() {
    let svc = lb_service(
        "LoadBalancer",
        "{ loadBalancer: { ingress: [{ ip: 1.2.3.4 }] } }",
    )
    .replace("stunner/udp-gateway", "stunner/other");
    assert_eq!(public(&run(&base_with(&svc))).0, "");
}

#[test]
fn listener_without_service_port_has_no_address() {
    let r = run(&base_with(&gateway(
        "udp-gateway",
        &["udp-listener:3478:UDP", "other:4000:UDP"],
    )));
    let c = config(&r, "stunner/udp-gateway");
    assert_eq!(c.listeners[0].public_address, "1.2.3.4");
    assert_eq!(c.listeners[1].public_address, "");
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "other", "Programmed"),
        no("Pending")
    );
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        ok("Programmed")
    );
}

#[test]
fn protocol_must_match_service_port() {
    let r = run(&base_with(&gateway(
        "udp-gateway",
        &["udp-listener:3478:TCP"],
    )));
    assert_eq!(public(&r).0, "");
}

#[test]
fn addresses_deduplicated() {
    let svc = "apiVersion: v1\nkind: Service\nmetadata: { name: udp-gateway, namespace: stunner, annotations: { stunner.l7mp.io/related-gateway-name: stunner/udp-gateway } }\nspec: { type: LoadBalancer, ports: [{ name: a, port: 3478, protocol: UDP }, { name: b, port: 3479, protocol: UDP }] }\nstatus: { loadBalancer: { ingress: [{ ip: 1.2.3.4 }] } }\n";
    let r = run(&base_with(&format!(
        "{svc}---\n{}",
        gateway("udp-gateway", &["a:3478:UDP", "b:3479:UDP"])
    )));
    assert_eq!(
        gw_status(&r, "stunner/udp-gateway")
            .addresses
            .clone()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        config(&r, "stunner/udp-gateway").listeners[1].public_port,
        3479
    );
}
