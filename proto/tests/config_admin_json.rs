//! `/status` and `/drain` JSON shapes: upstream STUNner's `/status` keys (`pkg/apis/v1`
//! `StunnerStatus`, `AdminStatus`, `ListenerStatus`) plus our camelCase additions, state
//! spellings, no secrets.

use proto::admin::{DataplaneState, DrainRequest, DrainResponse, Status};
use proto::config::StunnerConfig;

const CONFIG: &str = r#"
version: v1
admin: {name: ns/gw, metrics_endpoint: "http://:8080/metrics"}
auth: {type: static, credentials: {username: alice, password: hunter2}}
listeners: [{name: udp, address: 10.0.0.5, routes: [media]}, {name: tls, protocol: TLS, cert: Y2VydA==, key: c2VjcmV0a2V5}]
clusters: [{name: media, endpoints: [10.0.0.0/8]}]
"#;

#[test]
fn status_json_shape() {
    let mut config = StunnerConfig::parse_with_env(CONFIG, &|_| None).unwrap();
    config.validate().unwrap();
    let mut status = Status::new(&config, DataplaneState::Draining, 7, "0.1.0");
    status.drain_started_at = Some(1_700_000_000);
    status.drain_deadline = Some(1_700_003_600);
    let text = serde_json::to_string(&status).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("alice") && !text.contains("c2VjcmV0a2V5"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "v1");
    assert_eq!(v["state"], "DRAINING");
    assert_eq!(v["allocationCount"], 7);
    assert_eq!(v["drainStartedAt"], 1_700_000_000u64);
    assert_eq!(v["drainDeadline"], 1_700_003_600u64);
    assert_eq!(v["admin"]["name"], "ns/gw");
    assert_eq!(
        v["status"], "TERMINATING",
        "upstream's word for a draining dataplane"
    );
    assert_eq!(v["admin"]["loglevel"], "all:INFO");
    assert_eq!(v["admin"]["metrics_endpoint"], "http://:8080/metrics");
    assert_eq!(v["admin"]["healthcheck_endpoint"], "http://:8086");
    assert_eq!(v["admin"]["quota"], "0");
    assert_eq!(v["listeners"][0]["name"], "udp");
    assert_eq!(v["listeners"][0]["public_address"], "");
    assert_eq!(v["listeners"][0]["public_port"], 0);
    assert_eq!(v["listeners"][0]["routes"][0], "media");
    assert_eq!(v["clusters"][0]["endpoints"][0], "10.0.0.0/8");
    assert_eq!(v["clusters"][0]["protocol"], "UDP");
    assert_eq!(v["auth"]["type"], "static");
    assert_eq!(v["listeners"][0]["protocol"], "TURN-UDP");
    assert_eq!(v["listeners"][0]["address"], "10.0.0.5");
    assert_eq!(v["listeners"][1]["port"], 3478);
    assert_eq!(v["clusters"][0]["type"], "STATIC");
    let back: Status = serde_json::from_str(&text).unwrap();
    assert_eq!(back, status);
}

#[test]
fn state_spellings_and_optional_drain_fields() {
    for (state, wire) in [
        (DataplaneState::Ready, "\"READY\""),
        (DataplaneState::NotReady, "\"NOT-READY\""),
        (DataplaneState::Draining, "\"DRAINING\""),
        (DataplaneState::Terminating, "\"TERMINATING\""),
    ] {
        assert_eq!(serde_json::to_string(&state).unwrap(), wire);
        assert_eq!(format!("\"{state}\""), wire);
    }
    let words = [
        DataplaneState::Ready,
        DataplaneState::NotReady,
        DataplaneState::Draining,
    ]
    .map(DataplaneState::upstream_word);
    assert_eq!(words, ["READY", "NOT-READY", "TERMINATING"]);
    let ready = Status::new(&StunnerConfig::default(), DataplaneState::NotReady, 0, "x");
    let v: serde_json::Value = serde_json::to_value(&ready).unwrap();
    assert!(v.get("drainDeadline").is_none() && v.get("drainStartedAt").is_none());
}

#[test]
fn drain_types() {
    let r: DrainResponse = serde_json::from_str(
        r#"{"state":"READY","allocationCount":0,"message":"drain cancelled"}"#,
    )
    .unwrap();
    assert_eq!((r.state, r.drain_deadline), (DataplaneState::Ready, None));
    assert_eq!(
        serde_json::to_string(&DrainRequest { timeout: Some(30) }).unwrap(),
        r#"{"timeout":30}"#
    );
}
