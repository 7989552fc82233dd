//! Round trips of upstream-style stunnerd configs (YAML as in STUNner's docs, JSON as the
//! gateway operator renders it) through parse → validate → serialise → parse.

use proto::config::{AuthType, ClusterType, ListenerProtocol, StunnerConfig};

fn env(name: &str) -> Option<String> {
    match name {
        "STUNNER_ADDR" => Some("10.244.0.17".into()),
        "STUNNER_PUBLIC_ADDR" => Some("198.51.100.7".into()),
        "STUNNER_PUBLIC_PORT" => Some("30478".into()),
        "STUNNER_PORT" => Some("3478".into()),
        _ => None,
    }
}

const DOCS_YAML: &str = r#"
version: v1
admin:
  name: stunner-daemon
  loglevel: all:INFO,turn:DEBUG
  metrics_endpoint: "http://0.0.0.0:8080/metrics"
  user_quota: 10
auth:
  type: plaintext
  realm: stunner.l7mp.io
  credentials:
    username: user1
    password: "pa$$word"
listeners:
  - name: default-listener
    public_address: "$STUNNER_PUBLIC_ADDR"
    public_port: $STUNNER_PUBLIC_PORT
    address: "$STUNNER_ADDR"
    port: $STUNNER_PORT
    protocol: udp
    routes:
      - media-plane
      - allow-any
  - name: tcp-listener
    protocol: TURN-TCP
    port: 3479
    routes: [media-plane]
clusters:
  - name: media-plane
    type: STATIC
    protocol: udp
    endpoints:
      - 10.96.0.0/12:<10000-20000>
      - "10.244.0.0/16"
  - name: allow-any
    endpoints: ["0.0.0.0/0"]
"#;

const OPERATOR_JSON: &str = r#"{
  "version": "v1",
  "admin": {"name": "stunner/udp-gateway", "loglevel": "all:INFO",
            "healthcheck_endpoint": "http://0.0.0.0:8086"},
  "auth": {"type": "ephemeral", "realm": "stunner.l7mp.io", "credentials": {"secret": "my-shared-secret"}},
  "listeners": [
    {"name": "stunner/udp-gateway/udp-listener", "protocol": "TURN-UDP", "public_address": "1.2.3.4",
     "public_port": 3478, "address": "$STUNNER_ADDR", "port": 3478,
     "routes": ["stunner/media-plane", "stunner/headless"]}
  ],
  "clusters": [
    {"name": "stunner/media-plane", "type": "STATIC", "protocol": "UDP",
     "endpoints": ["10.100.10.17", "fd00:10:96::/112:<5000-6000>"]},
    {"name": "stunner/headless", "type": "STRICT_DNS", "protocol": "UDP",
     "endpoints": ["media.stunner.svc.cluster.local"]}
  ]
}"#;

fn parse(text: &str) -> StunnerConfig {
    let mut c = StunnerConfig::parse_with_env(text, &env).expect("parses");
    c.validate().expect("valid");
    c
}

fn round_trip(c: &StunnerConfig) {
    let json = c.to_json();
    let yaml = serde_norway::to_string(c).expect("yaml");
    for text in [json.as_str(), yaml.as_str()] {
        let mut again = StunnerConfig::parse_with_env(text, &|_| None).expect("re-parses");
        again.validate().expect("re-validates");
        assert_eq!(&again, c, "round trip through:\n{text}");
    }
    let via_serde: StunnerConfig = serde_json::from_str(&json).expect("serde");
    assert_eq!(&via_serde, c);
}

#[test]
fn upstream_docs_yaml_parses_with_env_and_round_trips() {
    let c = parse(DOCS_YAML);
    assert_eq!(c.admin.name, "stunner-daemon");
    assert_eq!(c.admin.loglevel, "all:INFO,turn:DEBUG");
    assert_eq!(c.admin.user_quota, 10);
    assert_eq!(
        c.admin.healthcheck_endpoint.as_deref(),
        Some("http://:8086")
    );
    assert_eq!(c.auth.auth_type, AuthType::Static);
    assert_eq!(c.auth.credential("password"), Some("pa$$word"));
    let l = &c.listeners[0];
    assert_eq!(
        (l.protocol, l.address.as_str(), l.port),
        (ListenerProtocol::TurnUdp, "10.244.0.17", 3478)
    );
    assert_eq!(
        (l.public_address.as_str(), l.public_port),
        ("198.51.100.7", 30478)
    );
    assert_eq!(
        l.routes,
        ["allow-any", "media-plane"],
        "routes sorted like upstream"
    );
    assert_eq!(c.listeners[1].protocol, ListenerProtocol::TurnTcp);
    assert_eq!(c.listeners[1].address, "0.0.0.0");
    assert_eq!(
        c.clusters[0].endpoints,
        ["10.244.0.0/16", "10.96.0.0/12:<10000-20000>"]
    );
    round_trip(&c);
}

#[test]
fn operator_json_parses_and_round_trips() {
    let c = parse(OPERATOR_JSON);
    assert_eq!(c.auth.auth_type, AuthType::Ephemeral);
    assert_eq!(c.clusters[1].cluster_type, ClusterType::StrictDns);
    assert_eq!(c.listeners[0].address, "10.244.0.17");
    assert_eq!(
        c.listeners[0].routes,
        ["stunner/headless", "stunner/media-plane"]
    );
    assert!(c.dangling_routes().is_empty());
    round_trip(&c);
}

#[test]
fn serialisation_uses_upstream_keys_and_omits_empty_fields() {
    let c = parse(OPERATOR_JSON);
    let v: serde_json::Value = serde_json::from_str(&c.to_json()).expect("json");
    assert_eq!(v["auth"]["type"], "ephemeral");
    assert_eq!(v["listeners"][0]["protocol"], "TURN-UDP");
    assert_eq!(v["listeners"][0]["public_port"], 3478);
    assert_eq!(v["clusters"][1]["type"], "STRICT_DNS");
    assert_eq!(v["clusters"][0]["protocol"], "UDP");
    assert_eq!(v["admin"]["healthcheck_endpoint"], "http://0.0.0.0:8086");
    let listener = v["listeners"][0].as_object().expect("object");
    assert!(!listener.contains_key("cert") && !listener.contains_key("key"));
    assert!(
        !v["admin"]
            .as_object()
            .expect("object")
            .contains_key("user_quota")
    );
    assert!(
        !v["admin"]
            .as_object()
            .expect("object")
            .contains_key("metrics_endpoint")
    );
}

#[test]
fn keys_are_case_insensitive_in_yaml_and_json() {
    let yaml = "Version: v1\nADMIN: {Name: x, LogLevel: all:DEBUG}\nAuth: {Type: none}\n\
                Listeners: [{NAME: l, Protocol: tcp, PORT: 5000}]\n";
    let c = parse(yaml);
    assert_eq!(
        (c.admin.name.as_str(), c.admin.loglevel.as_str()),
        ("x", "all:DEBUG")
    );
    assert_eq!(c.auth.auth_type, AuthType::None);
    assert_eq!(
        (c.listeners[0].protocol, c.listeners[0].port),
        (ListenerProtocol::TurnTcp, 5000)
    );
    let json = r#"{"VERSION":"v1","Auth":{"TYPE":"static","Credentials":{"UserName":"u","Password":"p"}}}"#;
    let c = parse(json);
    assert_eq!(c.auth.credential("username"), Some("u"));
}

#[test]
fn json_with_tabs_and_yaml_flow_style_both_parse() {
    let json = "{\n\t\"version\": \"v1\",\n\t\"auth\": {\"type\": \"none\"}\n}";
    assert_eq!(parse(json).auth.auth_type, AuthType::None);
    let flow = "{version: v1, auth: {type: none}, listeners: [{name: a}]}";
    assert_eq!(parse(flow).listeners[0].port, 3478);
}

#[test]
fn numbers_in_string_fields_and_strings_in_number_fields() {
    let yaml = "version: v1\nauth: {credentials: {username: 1234, password: 5678}}\n\
                listeners: [{name: 42, port: \"3480\", public_port: ''}]\n";
    let c = parse(yaml);
    assert_eq!(c.auth.credential("username"), Some("1234"));
    assert_eq!(c.listeners[0].name, "42");
    assert_eq!((c.listeners[0].port, c.listeners[0].public_port), (3480, 0));
}

#[test]
fn unknown_upstream_fields_are_ignored() {
    let yaml = "version: v1\nadmin: {offload_engine: None, license_config: {key: k, hmac: h}}\n\
                auth: {type: none}\n";
    assert_eq!(parse(yaml).admin.name, "default-stunnerd");
}
