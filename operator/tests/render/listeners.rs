//! Listener protocols and aliases, conflicts, TLS certificates and allowed route kinds.

use crate::fixtures::*;
use proto::config::ListenerProtocol;

/// A listener spelled `alias` renders as `want`, accepted, with a cert only for TLS/DTLS.
fn protocol_alias(alias: &str, want: ListenerProtocol) {
    let s = base_with(&format!(
        "{}---\n{}",
        tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key"),
        tls_gateway(alias, "[{ name: cert }]")
    ));
    let r = run(&s);
    let c = config(&r, "stunner/udp-gateway");
    assert_eq!(c.listeners[0].protocol, want);
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "tls", "Accepted"),
        ok("Accepted")
    );
    assert_eq!(!c.listeners[0].cert.is_empty(), want.is_tls());
}

cases! { protocol_alias {
    alias_turn_udp: ("TURN-UDP", ListenerProtocol::TurnUdp),
    alias_udp: ("UDP", ListenerProtocol::TurnUdp),
    alias_turn_tcp: ("TURN-TCP", ListenerProtocol::TurnTcp),
    alias_tcp: ("TCP", ListenerProtocol::TurnTcp),
    alias_turn_dtls: ("TURN-DTLS", ListenerProtocol::TurnDtls),
    alias_dtls: ("DTLS", ListenerProtocol::TurnDtls),
    alias_turn_tls: ("TURN-TLS", ListenerProtocol::TurnTls),
    alias_tls: ("TLS", ListenerProtocol::TurnTls),
}}

/// A listener of protocol `proto` is refused while its sibling renders.
fn unsupported_protocol(proto: &str) {
    let r = run(&base_with(&gateway(
        "udp-gateway",
        &[&format!("bad:3478:{proto}"), "good:3479:UDP"],
    )));
    let c = config(&r, "stunner/udp-gateway");
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].name, "stunner/udp-gateway/good");
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "bad", "Accepted"),
        no("UnsupportedProtocol")
    );
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "bad", "Programmed"),
        no("Invalid")
    );
    assert_eq!(attached(&r, "stunner/udp-gateway", "bad"), 0);
}

cases! { unsupported_protocol {
    unsupported_http: ("HTTP"),
    unsupported_https: ("HTTPS"),
    unsupported_sctp: ("SCTP"),
    unsupported_turn_quic: ("TURN-QUIC"),
    unsupported_quic: ("quic"),
}}

/// Listeners `ls` (`name:port:protocol`, names `a` and `b`): only `conflicted` (or none when
/// empty) is Conflicted, refused and left out of the config.
fn conflict(ls: &[&str], conflicted: &str) {
    let secret = tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key");
    let mut gw = gateway("udp-gateway", ls);
    for proto in ["TURN-TLS", "TURN-DTLS"] {
        gw = gw.replace(
            &format!("protocol: {proto} }}"),
            &format!("protocol: {proto}, tls: {{ certificateRefs: [{{ name: cert }}] }} }}"),
        );
    }
    let r = run(&base_with(&format!("{secret}---\n{gw}")));
    for name in ["a", "b"] {
        let want = if name == conflicted {
            ok("ProtocolConflict")
        } else {
            no("NoConflicts")
        };
        assert_eq!(
            l_cond(&r, "stunner/udp-gateway", name, "Conflicted"),
            want,
            "{name}"
        );
    }
    let rendered: Vec<String> = config(&r, "stunner/udp-gateway")
        .listeners
        .iter()
        .map(|l| l.name.clone())
        .collect();
    if !conflicted.is_empty() {
        assert!(!rendered.contains(&format!("stunner/udp-gateway/{conflicted}")));
        assert_eq!(
            l_cond(&r, "stunner/udp-gateway", conflicted, "Accepted"),
            no("PortUnavailable")
        );
    }
}

cases! { conflict {
    conflict_same_port_udp: (&["a:3478:UDP", "b:3478:UDP"], "b"),
    conflict_udp_and_dtls_share_transport: (&["a:3478:TURN-UDP", "b:3478:TURN-DTLS"], "b"),
    conflict_tcp_and_tls_share_transport: (&["a:3478:TURN-TCP", "b:3478:TURN-TLS"], "b"),
    no_conflict_udp_and_tcp_same_port: (&["a:3478:TURN-UDP", "b:3478:TURN-TCP"], ""),
    no_conflict_different_ports: (&["a:3478:UDP", "b:3479:UDP"], ""),
    conflict_same_port_tcp: (&["a:3478:TCP", "b:3478:TCP"], "b"),
    no_conflict_with_unsupported_listener: (&["a:3478:HTTP", "b:3478:UDP"], ""),
    no_conflict_tls_and_dtls_same_port: (&["a:443:TURN-TLS", "b:443:TURN-DTLS"], ""),
}}

/// A TLS listener whose Opaque Secret holds the cert and key under `c` and `k`.
fn tls_secret_keys(c: &str, k: &str) {
    let s = base_with(&format!(
        "{}---\n{}",
        tls_secret("cert", "Opaque", c, k),
        tls_gateway("TURN-TLS", "[{ name: cert }]")
    ));
    let r = run(&s);
    let l = &config(&r, "stunner/udp-gateway").listeners[0];
    assert_eq!((l.cert.as_str(), l.key.as_str()), (CERT, KEY), "{c}/{k}");
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "tls", "ResolvedRefs"),
        ok("ResolvedRefs")
    );
}

cases! { tls_secret_keys {
    tls_keys_tls_crt_tls_key: ("tls.crt", "tls.key"),
    tls_keys_crt_key: ("crt", "key"),
    tls_keys_cert_key: ("cert", "key"),
    tls_keys_tls_crt_key: ("tls.crt", "key"),
}}

/// A DTLS listener with certificateRefs `refs` that do not resolve: not rendered, accepted,
/// ResolvedRefs=False with `reason`.
fn tls_unresolvable(refs: &str, reason: &str) {
    let secret = tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key");
    let broken = "apiVersion: v1\nkind: Secret\nmetadata: { name: broken, namespace: stunner }\ndata: { tls.crt: Zm9v }\n";
    let s = base_with(&format!(
        "{secret}---\n{broken}---\n{}",
        tls_gateway("TURN-DTLS", refs)
    ));
    let r = run(&s);
    assert!(config(&r, "stunner/udp-gateway").listeners.is_empty());
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "tls", "ResolvedRefs"),
        no(reason)
    );
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "tls", "Accepted"),
        ok("Accepted")
    );
}

cases! { tls_unresolvable {
    tls_no_refs: ("[]", "InvalidCertificateRef"),
    tls_missing_secret: ("[{ name: nope }]", "InvalidCertificateRef"),
    tls_no_key_in_secret: ("[{ name: broken }]", "InvalidCertificateRef"),
    tls_ref_not_a_secret: ("[{ name: cert, kind: ConfigMap }]", "InvalidCertificateRef"),
    tls_ref_wrong_group: ("[{ name: cert, group: example.com }]", "InvalidCertificateRef"),
    tls_ref_other_namespace_without_grant: ("[{ name: cert, namespace: default }]", "RefNotPermitted"),
}}

#[test]
fn tls_falls_through_to_second_ref() {
    let s = base_with(&format!(
        "{}---\n{}",
        tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key"),
        tls_gateway("TURN-TLS", "[{ name: missing }, { name: cert }]")
    ));
    assert_eq!(
        config(&run(&s), "stunner/udp-gateway").listeners[0].cert,
        CERT
    );
}

#[test]
fn tls_passthrough_rejected() {
    let gw = tls_gateway("TURN-TLS", "[{ name: cert }]").replace("Terminate", "Passthrough");
    let s = base_with(&format!(
        "{}---\n{gw}",
        tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key")
    ));
    let r = run(&s);
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "tls", "ResolvedRefs"),
        no("InvalidCertificateRef")
    );
}

#[test]
fn tls_without_tls_section() {
    let r = run(&base_with(&gateway("udp-gateway", &["tls:443:TURN-TLS"])));
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "tls", "ResolvedRefs"),
        no("InvalidCertificateRef")
    );
}

#[test]
fn udp_listener_ignores_tls_section() {
    let s = base_with(&tls_gateway("TURN-UDP", "[{ name: missing }]"));
    let r = run(&s);
    let l = &config(&r, "stunner/udp-gateway").listeners[0];
    assert!(l.cert.is_empty());
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "tls", "ResolvedRefs"),
        ok("ResolvedRefs")
    );
}

fn kinds_gateway(kinds: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: udp-gateway, namespace: stunner }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners:\n    - {{ name: udp-listener, port: 3478, protocol: UDP, allowedRoutes: {{ kinds: {kinds} }} }}\n"
    )
}

/// `allowedRoutes.kinds: kinds` admits the base route (`allowed`) or refuses it.
fn route_kinds(kinds: &str, allowed: bool) {
    let r = run(&base_with(&kinds_gateway(kinds)));
    assert_eq!(
        attached(&r, "stunner/udp-gateway", "udp-listener"),
        i32::from(allowed)
    );
    let (resolved, accepted) = if allowed {
        (ok("ResolvedRefs"), ok("Accepted"))
    } else {
        (no("InvalidRouteKinds"), no("NotAllowedByListeners"))
    };
    assert_eq!(
        l_cond(&r, "stunner/udp-gateway", "udp-listener", "ResolvedRefs"),
        resolved
    );
    assert_eq!(base_route_cond(&r, "Accepted"), accepted);
}

cases! { route_kinds {
    kinds_empty_allows: ("[]", true),
    kinds_udproute_allows: ("[{ kind: UDPRoute }]", true),
    kinds_stunner_udproute_allows: ("[{ group: stunner.l7mp.io, kind: UDPRoute }]", true),
    kinds_gateway_api_udproute_allows: ("[{ group: gateway.networking.k8s.io, kind: UDPRoute }]", true),
    kinds_tcproute_refuses: ("[{ kind: TCPRoute }]", false),
    kinds_foreign_group_refuses: ("[{ group: example.com, kind: UDPRoute }]", false),
    kinds_any_matching_entry_allows: ("[{ kind: HTTPRoute }, { kind: UDPRoute }]", true),
}}

#[test]
fn listener_port_rendered() {
    for port in [1, 3478, 65535] {
        let r = run(&base_with(&gateway(
            "udp-gateway",
            &[&format!("l:{port}:UDP")],
        )));
        assert_eq!(
            u32::from(config(&r, "stunner/udp-gateway").listeners[0].port),
            port
        );
    }
}

#[test]
fn multiple_listeners_all_rendered_in_order() {
    let r = run(&base_with(&gateway(
        "udp-gateway",
        &["a:3478:UDP", "b:3479:TCP", "c:3480:TURN-UDP"],
    )));
    let names: Vec<_> = config(&r, "stunner/udp-gateway")
        .listeners
        .iter()
        .map(|l| l.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "stunner/udp-gateway/a",
            "stunner/udp-gateway/b",
            "stunner/udp-gateway/c"
        ]
    );
    assert_eq!(
        gw_status(&r, "stunner/udp-gateway")
            .listeners
            .as_ref()
            .unwrap()
            .len(),
        3
    );
}
