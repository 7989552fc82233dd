//! Every default, alias and validation error path of `StunnerConfig::validate`, with the field
//! path each error must name.

use proto::config::{
    AuthType, ClusterProtocol, ClusterType, ConfigError, ListenerConfig, ListenerProtocol,
    StunnerConfig,
};

fn parse(text: &str) -> Result<StunnerConfig, ConfigError> {
    let mut c = StunnerConfig::parse_with_env(text, &|_| None)?;
    c.validate()?;
    Ok(c)
}

/// Asserts that `text` is rejected with exactly `expected` (`path: message` prefix).
fn rejects(text: &str, expected: &str) {
    let err = parse(text).expect_err(text).to_string();
    assert!(
        err.starts_with(expected),
        "{text}\n  got:  {err}\n  want: {expected}"
    );
}

const NONE: &str = "version: v1\nauth: {type: none}\n";

#[test]
fn defaults_are_filled() {
    let c = parse("version: v1\nauth: {credentials: {username: u, password: p}}\nlisteners: [{name: l}]\nclusters: [{name: c}]").unwrap();
    assert_eq!(c.admin.name, "default-stunnerd");
    assert_eq!(c.admin.loglevel, "all:INFO");
    assert_eq!(c.admin.metrics_endpoint, "");
    assert_eq!(
        c.admin.healthcheck_endpoint.as_deref(),
        Some("http://:8086")
    );
    assert_eq!(c.admin.user_quota, 0);
    assert_eq!(c.auth.auth_type, AuthType::Static);
    assert_eq!(c.auth.realm, "stunner.l7mp.io");
    let l = &c.listeners[0];
    assert_eq!(
        (l.protocol, l.address.as_str(), l.port),
        (ListenerProtocol::TurnUdp, "0.0.0.0", 3478)
    );
    let cl = &c.clusters[0];
    assert_eq!(
        (cl.cluster_type, cl.protocol),
        (ClusterType::Static, ClusterProtocol::Udp)
    );
}

#[test]
fn validate_is_idempotent() {
    let mut c = parse(&format!("{NONE}listeners: [{{name: b, routes: [z, a]}}]")).unwrap();
    let before = c.clone();
    c.validate().unwrap();
    assert_eq!(c, before);
}

#[test]
fn auth_type_aliases() {
    for (raw, want) in [
        ("static", AuthType::Static),
        ("plaintext", AuthType::Static),
        ("ephemeral", AuthType::Ephemeral),
        ("longterm", AuthType::Ephemeral),
        ("timewindowed", AuthType::Ephemeral),
        ("TimeWindowed", AuthType::Ephemeral),
        ("none", AuthType::None),
    ] {
        let text = format!(
            "version: v1\nauth: {{type: {raw}, credentials: {{username: u, password: p, secret: s}}}}"
        );
        assert_eq!(parse(&text).unwrap().auth.auth_type, want, "{raw}");
    }
    rejects(
        "version: v1\nauth: {type: oauth}",
        "auth.type: unknown authentication type \"oauth\"",
    );
}

#[test]
fn listener_protocol_aliases() {
    for (raw, want) in [
        ("UDP", ListenerProtocol::TurnUdp),
        ("udp", ListenerProtocol::TurnUdp),
        ("turn-udp", ListenerProtocol::TurnUdp),
        ("TCP", ListenerProtocol::TurnTcp),
        ("TURN-TCP", ListenerProtocol::TurnTcp),
        ("tls", ListenerProtocol::TurnTls),
        ("Turn-Tls", ListenerProtocol::TurnTls),
        ("DTLS", ListenerProtocol::TurnDtls),
        ("TURN-DTLS", ListenerProtocol::TurnDtls),
    ] {
        let text =
            format!("{NONE}listeners: [{{name: l, protocol: {raw}, cert: Y2VydA==, key: a2V5}}]");
        assert_eq!(parse(&text).unwrap().listeners[0].protocol, want, "{raw}");
    }
    rejects(
        &format!("{NONE}listeners: [{{name: l}}, {{name: m, protocol: SCTP}}]"),
        "listeners[1].protocol: unknown listener protocol",
    );
}

#[test]
fn cluster_type_and_protocol_are_case_insensitive() {
    let c = parse(&format!(
        "{NONE}clusters: [{{name: c, type: strict_dns, protocol: tcp, endpoints: [a.b]}}]"
    ))
    .unwrap();
    assert_eq!(
        (c.clusters[0].cluster_type, c.clusters[0].protocol),
        (ClusterType::StrictDns, ClusterProtocol::Tcp)
    );
    rejects(
        &format!("{NONE}clusters: [{{name: c, type: LOGICAL_DNS}}]"),
        "clusters[0].type: unknown cluster type",
    );
    rejects(
        &format!("{NONE}clusters: [{{name: c, protocol: SCTP}}]"),
        "clusters[0].protocol: unknown cluster protocol",
    );
}

#[test]
fn version_is_required_and_must_be_v1() {
    rejects(
        "auth: {type: none}",
        "version: unsupported API version \"\"",
    );
    rejects(
        "version: v1alpha1\nauth: {type: none}",
        "version: unsupported API version \"v1alpha1\"",
    );
}

#[test]
fn credentials_required_per_auth_type() {
    rejects(
        "version: v1",
        "auth.credentials.username: required for static authentication",
    );
    rejects(
        "version: v1\nauth: {credentials: {username: u}}",
        "auth.credentials.password: required for static",
    );
    rejects(
        "version: v1\nauth: {credentials: {username: u, password: ''}}",
        "auth.credentials.password: required",
    );
    rejects(
        "version: v1\nauth: {type: ephemeral}",
        "auth.credentials.secret: required for ephemeral authentication",
    );
    assert!(parse("version: v1\nauth: {type: ephemeral, credentials: {secret: s}}").is_ok());
}

#[test]
fn listener_rules() {
    let l = |body: &str| format!("{NONE}listeners: [{{name: ok}}, {body}]");
    rejects(&l("{protocol: udp}"), "listeners[1].name: required");
    rejects(&l("{name: ok}"), "listeners[1].name: duplicate name \"ok\"");
    rejects(
        &l("{name: x, port: 70000}"),
        "listeners[1].port: must be 1-65535",
    );
    rejects(
        &l("{name: x, port: -1}"),
        "listeners[1].port: must be 1-65535",
    );
    rejects(
        &l("{name: x, port: abc}"),
        "listeners[1].port: must be an integer",
    );
    rejects(
        &l("{name: x, public_port: 65536}"),
        "listeners[1].public_port: must be 0-65535",
    );
    rejects(
        &l("{name: x, address: my-host}"),
        "listeners[1].address: \"my-host\" is not an IP address",
    );
    rejects(
        &l("{name: x, protocol: TLS}"),
        "listeners[1].cert: required for TURN-TLS listeners",
    );
    rejects(
        &l("{name: x, protocol: DTLS, cert: Y2VydA==}"),
        "listeners[1].key: required for TURN-DTLS listeners",
    );
    rejects(
        &l("{name: x, protocol: TLS, cert: '!!!', key: a2V5}"),
        "listeners[1].cert: not valid base64",
    );
    rejects(
        &l("{name: x, routes: {a: b}}"),
        "listeners[1].routes: must be a list of strings",
    );
    rejects(
        &l("{name: x, routes: [[a]]}"),
        "listeners[1].routes[0]: must be a string",
    );
    let c = parse(&l("{name: v6, address: 'fd00::1', port: 0}")).unwrap();
    assert_eq!(c.listeners[1].port, 3478);
    assert_eq!(c.listeners[1].ip(), Some("fd00::1".parse().unwrap()));
}

#[test]
fn tls_material_decodes() {
    let c = parse(&format!(
        "{NONE}listeners: [{{name: t, protocol: TLS, cert: \"Y2Vy\\nd\\nA==\", key: a2V5}}]"
    ))
    .unwrap();
    assert_eq!(c.listeners[0].cert_pem().unwrap(), b"cert");
    assert_eq!(c.listeners[0].key_pem().unwrap(), b"key");
}

#[test]
fn cluster_rules() {
    let c = |body: &str| format!("{NONE}clusters: [{{name: ok}}, {body}]");
    rejects(&c("{endpoints: []}"), "clusters[1].name: required");
    rejects(&c("{name: ok}"), "clusters[1].name: duplicate name \"ok\"");
    rejects(
        &c("{name: x, endpoints: [1.2.3.4, not-an-ip]}"),
        "clusters[1].endpoints[1]: \"not-an-ip\" is not an IP address or prefix",
    );
    rejects(
        &c("{name: x, endpoints: ['10.0.0.0/33']}"),
        "clusters[1].endpoints[0]: invalid prefix length",
    );
    rejects(
        &c("{name: x, endpoints: ['10.0.0.0/8:<20-10>']}"),
        "clusters[1].endpoints[0]: empty port range",
    );
    rejects(
        &c("{name: x, type: STRICT_DNS, endpoints: ['bad_host!']}"),
        "clusters[1].endpoints[0]:",
    );
    rejects(
        &c("{name: x, endpoints: 1.2.3.4}"),
        "clusters[1].endpoints: must be a list of strings",
    );
}

#[test]
fn structural_type_errors_name_the_path() {
    rejects("version: v1\nadmin: [1]", "admin: must be an object");
    rejects(
        "version: v1\nauth: {type: none}\nlisteners: {name: x}",
        "listeners: must be a list",
    );
    rejects(
        "version: v1\nauth: {type: none}\nlisteners: [x]",
        "listeners[0]: must be an object",
    );
    rejects(
        "version: v1\nauth: {type: none, credentials: {username: [1]}}",
        "auth.credentials.username: must be a string",
    );
    rejects(
        "version: v1\nauth: {type: none}\nadmin: {user_quota: 1.5}",
        "admin.user_quota: must be an integer",
    );
    rejects("[1, 2]", "<root>: must be an object");
    assert!(matches!(
        parse("version: [unclosed"),
        Err(ConfigError::Syntax(_))
    ));
}

#[test]
fn admin_endpoints() {
    let c = parse(&format!(
        "{NONE}admin: {{metrics_endpoint: 'http://:9090', healthcheck_endpoint: ''}}"
    ))
    .unwrap();
    let m = c.admin.metrics_addr().unwrap().unwrap();
    assert_eq!(
        (m.addr.to_string(), m.path.as_str()),
        ("0.0.0.0:9090".into(), "/")
    );
    assert_eq!(
        c.admin.healthcheck_addr().unwrap(),
        None,
        "empty healthcheck endpoint = off"
    );
    let c = parse(NONE).unwrap();
    assert_eq!(
        c.admin.metrics_addr().unwrap(),
        None,
        "no metrics endpoint = off"
    );
    assert_eq!(
        c.admin
            .healthcheck_addr()
            .unwrap()
            .unwrap()
            .addr
            .to_string(),
        "0.0.0.0:8086"
    );
    rejects(
        &format!("{NONE}admin: {{metrics_endpoint: 'ftp://x'}}"),
        "admin.metrics_endpoint: unsupported scheme",
    );
    rejects(
        &format!("{NONE}admin: {{healthcheck_endpoint: 'http://:99999'}}"),
        "admin.healthcheck_endpoint: invalid port",
    );
    let c = parse(&format!("{NONE}admin: {{user_quota: -5}}")).unwrap();
    assert_eq!(
        c.admin.user_quota, 0,
        "negative quota clamps to unlimited, as upstream"
    );
}

#[test]
fn dangling_routes_are_reported_not_rejected() {
    let c = parse(&format!(
        "{NONE}listeners: [{{name: l, routes: [c, gone]}}]\nclusters: [{{name: c}}]"
    ))
    .unwrap();
    assert_eq!(c.dangling_routes(), [("l", "gone")]);
    let l = c.listener("l").unwrap();
    assert_eq!(
        c.routed_clusters(l)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["c"]
    );
}

#[test]
fn listener_restart_rule() {
    let base = ListenerConfig {
        name: "l".into(),
        address: "10.0.0.1".into(),
        port: 3478,
        ..Default::default()
    };
    let same = ListenerConfig {
        routes: vec!["x".into()],
        public_address: "1.2.3.4".into(),
        public_port: 1,
        ..base.clone()
    };
    assert!(!base.requires_restart(&same));
    for changed in [
        ListenerConfig {
            address: "10.0.0.2".into(),
            ..base.clone()
        },
        ListenerConfig {
            port: 3479,
            ..base.clone()
        },
        ListenerConfig {
            protocol: ListenerProtocol::TurnTcp,
            ..base.clone()
        },
        ListenerConfig {
            cert: "Y2VydA==".into(),
            ..base.clone()
        },
        ListenerConfig {
            key: "a2V5".into(),
            ..base.clone()
        },
    ] {
        assert!(base.requires_restart(&changed), "{changed:?}");
    }
}

#[test]
fn debug_output_redacts_credentials() {
    let c =
        parse("version: v1\nauth: {credentials: {username: alice, password: hunter2}}").unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2") && !dbg.contains("alice"), "{dbg}");
    assert!(dbg.contains("password"));
}
