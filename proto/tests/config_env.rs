//! Environment expansion: `$VAR`/`${VAR}` everywhere except under `auth.credentials`, and the
//! upstream `STUNNER_PORT` fallback.

use proto::config::{StunnerConfig, expand_env, os_lookup};

fn env(name: &str) -> Option<String> {
    match name {
        "POD_IP" => Some("10.1.2.3".into()),
        "NS" => Some("media".into()),
        "PORT" => Some("3480".into()),
        "SECRET" => Some("expanded-secret".into()),
        _ => None,
    }
}

#[test]
fn expansion_applies_to_every_section_but_credentials() {
    let yaml = r#"
version: v1
admin: {name: "${NS}/gw", metrics_endpoint: "http://$POD_IP:9000/metrics"}
auth: {type: ephemeral, realm: "$NS.example.com", credentials: {secret: "$SECRET"}}
listeners: [{name: "$NS-udp", address: "$POD_IP", port: "${PORT}", routes: ["$NS/media"]}]
clusters: [{name: "$NS/media", endpoints: ["$POD_IP/32:<1-2>"]}]
"#;
    let mut c = StunnerConfig::parse_with_env(yaml, &env).unwrap();
    c.validate().unwrap();
    assert_eq!(c.admin.name, "media/gw");
    assert_eq!(c.admin.metrics_endpoint, "http://10.1.2.3:9000/metrics");
    assert_eq!(c.auth.realm, "media.example.com");
    assert_eq!(
        c.auth.credential("secret"),
        Some("$SECRET"),
        "credentials are never expanded"
    );
    let l = &c.listeners[0];
    assert_eq!(
        (l.name.as_str(), l.address.as_str(), l.port),
        ("media-udp", "10.1.2.3", 3480)
    );
    assert_eq!(l.routes, ["media/media"]);
    assert_eq!(c.clusters[0].endpoints, ["10.1.2.3/32:<1-2>"]);
}

#[test]
fn unset_variables_become_empty_and_then_defaults() {
    let yaml = "version: v1\nauth: {type: none}\nlisteners: [{name: l, address: $STUNNER_ADDR, port: $NOPE}]";
    let mut c = StunnerConfig::parse_with_env(yaml, &|_| None).unwrap();
    c.validate().unwrap();
    assert_eq!(
        (c.listeners[0].address.as_str(), c.listeners[0].port),
        ("0.0.0.0", 3478)
    );
}

#[test]
fn expansion_cannot_inject_structure() {
    let evil = |_: &str| Some("x\nclusters: [{name: any, endpoints: [0.0.0.0/0]}]".to_owned());
    let c = StunnerConfig::parse_with_env("version: v1\nadmin: {name: $EVIL}", &evil).unwrap();
    assert!(c.clusters.is_empty());
    assert!(c.admin.name.starts_with("x\nclusters"));
}

#[test]
fn expand_function() {
    assert_eq!(expand_env("${NS}-$NS-$$-${", &env), "media-media-$$-${");
}

#[test]
fn stunner_port_falls_back_like_upstream() {
    // Only meaningful when the test environment does not set these; CI does not.
    if std::env::var_os("STUNNER_PORT").is_none()
        && std::env::var_os("STUNNER_PUBLIC_PORT").is_none()
    {
        assert_eq!(os_lookup("STUNNER_PORT").as_deref(), Some("3478"));
    }
    assert_eq!(os_lookup("STUNNER_SURELY_UNSET_VARIABLE_42"), None);
}
