//! Listener protocols and aliases, conflicts, TLS certificates and allowed route kinds.

use crate::fixtures::*;
use proto::config::ListenerProtocol;

const CERT: &str =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";
const KEY: &str =
    "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUIKLS0tLS1FTkQgUFJJVkFURSBLRVktLS0tLQo=";

fn tls_secret(name: &str, ty: &str, crt_key: &str, key_key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: {name}, namespace: stunner }}\ntype: {ty}\ndata: {{ {crt_key}: {CERT}, {key_key}: {KEY} }}\n"
    )
}

fn tls_gateway(proto: &str, refs: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: udp-gateway, namespace: stunner }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners:\n    - name: tls\n      port: 443\n      protocol: {proto}\n      tls: {{ mode: Terminate, certificateRefs: {refs} }}\n"
    )
}

#[test]
fn protocol_aliases_table() {
    let cases = [
        ("TURN-UDP", ListenerProtocol::TurnUdp),
        ("UDP", ListenerProtocol::TurnUdp),
        ("TURN-TCP", ListenerProtocol::TurnTcp),
        ("TCP", ListenerProtocol::TurnTcp),
        ("TURN-DTLS", ListenerProtocol::TurnDtls),
        ("DTLS", ListenerProtocol::TurnDtls),
        ("TURN-TLS", ListenerProtocol::TurnTls),
        ("TLS", ListenerProtocol::TurnTls),
    ];
    for (alias, want) in cases {
        let s = base_with(&format!(
            "{}---\n{}",
            tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key"),
            tls_gateway(alias, "[{ name: cert }]")
        ));
        let r = run(&s);
        let c = config(&r, "stunner/udp-gateway");
        assert_eq!(c.listeners[0].protocol, want, "{alias}");
        assert_eq!(
            l_cond(&r, "stunner/udp-gateway", "tls", "Accepted"),
            ok("Accepted"),
            "{alias}"
        );
        let tls = want.is_tls();
        assert_eq!(
            !c.listeners[0].cert.is_empty(),
            tls,
            "{alias}: cert only for TLS/DTLS"
        );
    }
}

#[test]
fn unsupported_protocols_table() {
    for proto in ["HTTP", "HTTPS", "SCTP", "TURN-QUIC", "quic"] {
        let r = run(&base_with(&gateway(
            "udp-gateway",
            &[&format!("bad:3478:{proto}"), "good:3479:UDP"],
        )));
        let c = config(&r, "stunner/udp-gateway");
        assert_eq!(c.listeners.len(), 1, "{proto}");
        assert_eq!(c.listeners[0].name, "stunner/udp-gateway/good");
        assert_eq!(
            l_cond(&r, "stunner/udp-gateway", "bad", "Accepted"),
            no("UnsupportedProtocol"),
            "{proto}"
        );
        assert_eq!(
            l_cond(&r, "stunner/udp-gateway", "bad", "Programmed"),
            no("Invalid"),
            "{proto}"
        );
        assert_eq!(attached(&r, "stunner/udp-gateway", "bad"), 0);
    }
}

#[test]
fn conflicts_table() {
    // (listeners, conflicted listener or "")
    let cases: [(&[&str], &str); 8] = [
        (&["a:3478:UDP", "b:3478:UDP"], "b"),
        (&["a:3478:TURN-UDP", "b:3478:TURN-DTLS"], "b"),
        (&["a:3478:TURN-TCP", "b:3478:TURN-TLS"], "b"),
        (&["a:3478:TURN-UDP", "b:3478:TURN-TCP"], ""),
        (&["a:3478:UDP", "b:3479:UDP"], ""),
        (&["a:3478:TCP", "b:3478:TCP"], "b"),
        (&["a:3478:HTTP", "b:3478:UDP"], ""),
        (&["a:443:TURN-TLS", "b:443:TURN-DTLS"], ""),
    ];
    let secret = tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key");
    for (ls, conflicted) in cases {
        let mut gw = gateway("udp-gateway", ls);
        if ls.iter().any(|l| l.contains("TLS")) {
            gw = gw.replace(
                "protocol: TURN-TLS }",
                "protocol: TURN-TLS, tls: { certificateRefs: [{ name: cert }] } }",
            );
            gw = gw.replace(
                "protocol: TURN-DTLS }",
                "protocol: TURN-DTLS, tls: { certificateRefs: [{ name: cert }] } }",
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
                "{ls:?} {name}"
            );
        }
        let rendered: Vec<String> = config(&r, "stunner/udp-gateway")
            .listeners
            .iter()
            .map(|l| l.name.clone())
            .collect();
        if !conflicted.is_empty() {
            assert!(
                !rendered.contains(&format!("stunner/udp-gateway/{conflicted}")),
                "{ls:?}"
            );
            assert_eq!(
                l_cond(&r, "stunner/udp-gateway", conflicted, "Accepted"),
                no("PortUnavailable")
            );
        }
    }
}

#[test]
fn tls_secret_key_variants_table() {
    let cases = [
        ("tls.crt", "tls.key"),
        ("crt", "key"),
        ("cert", "key"),
        ("tls.crt", "key"),
    ];
    for (c, k) in cases {
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
}

#[test]
fn tls_unresolvable_table() {
    let secret = tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key");
    let broken = "apiVersion: v1\nkind: Secret\nmetadata: { name: broken, namespace: stunner }\ndata: { tls.crt: Zm9v }\n";
    let cases = [
        ("no refs", "[]"),
        ("missing secret", "[{ name: nope }]"),
        ("no key in secret", "[{ name: broken }]"),
        ("not a secret", "[{ name: cert, kind: ConfigMap }]"),
        ("wrong group", "[{ name: cert, group: example.com }]"),
        ("other namespace", "[{ name: cert, namespace: default }]"),
    ];
    for (name, refs) in cases {
        let s = base_with(&format!(
            "{secret}---\n{broken}---\n{}",
            tls_gateway("TURN-DTLS", refs)
        ));
        let r = run(&s);
        assert!(
            config(&r, "stunner/udp-gateway").listeners.is_empty(),
            "{name}"
        );
        assert_eq!(
            l_cond(&r, "stunner/udp-gateway", "tls", "ResolvedRefs"),
            no("InvalidCertificateRef"),
            "{name}"
        );
        assert_eq!(
            l_cond(&r, "stunner/udp-gateway", "tls", "Accepted"),
            ok("Accepted"),
            "{name}"
        );
    }
}

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
fn tls_cross_namespace_ref() {
    let secret = tls_secret("cert", "kubernetes.io/tls", "tls.crt", "tls.key")
        .replace("namespace: stunner", "namespace: certs");
    let s = base_with(&format!(
        "{secret}---\n{}",
        tls_gateway("TURN-TLS", "[{ name: cert, namespace: certs }]")
    ));
    assert_eq!(
        config(&run(&s), "stunner/udp-gateway").listeners[0].key,
        KEY
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

#[test]
fn allowed_route_kinds_table() {
    let cases = [
        ("[]", true),
        ("[{ kind: UDPRoute }]", true),
        ("[{ group: stunner.l7mp.io, kind: UDPRoute }]", true),
        (
            "[{ group: gateway.networking.k8s.io, kind: UDPRoute }]",
            true,
        ),
        ("[{ kind: TCPRoute }]", false),
        ("[{ group: example.com, kind: UDPRoute }]", false),
        ("[{ kind: HTTPRoute }, { kind: UDPRoute }]", true),
    ];
    for (kinds, allowed) in cases {
        let r = run(&base_with(&kinds_gateway(kinds)));
        assert_eq!(
            attached(&r, "stunner/udp-gateway", "udp-listener"),
            i32::from(allowed),
            "{kinds}"
        );
        let want = if allowed {
            ok("ResolvedRefs")
        } else {
            no("InvalidRouteKinds")
        };
        assert_eq!(
            l_cond(&r, "stunner/udp-gateway", "udp-listener", "ResolvedRefs"),
            want,
            "{kinds}"
        );
        let want = if allowed {
            ok("Accepted")
        } else {
            no("NotAllowedByListeners")
        };
        assert_eq!(
            route_cond(
                &r,
                &stunner_route("stunner/media-plane"),
                "udp-gateway",
                "Accepted"
            ),
            want,
            "{kinds}"
        );
    }
}

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
