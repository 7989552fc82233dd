//! CDS message types: the config list and the deleted-config marker.

use proto::config::{ConfigList, StunnerConfig};

const ONE: &str = r#"{"version":"v1","admin":{"name":"ns/gw"},"auth":{"type":"none"},
  "listeners":[{"name":"l","port":3478}]}"#;

#[test]
fn config_list_round_trips() {
    let text = format!(r#"{{"version":"v1","items":[{ONE},{ONE}]}}"#);
    let list: ConfigList = serde_json::from_str(&text).unwrap();
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[0].listeners[0].name, "l");
    let again: ConfigList = serde_json::from_str(&serde_json::to_string(&list).unwrap()).unwrap();
    assert_eq!(again, list);
    let empty: ConfigList = serde_json::from_str(r#"{"version":"v1"}"#).unwrap();
    assert_eq!(empty, ConfigList::new(vec![]));
}

#[test]
fn deleted_marker_is_recognised_in_our_and_upstream_shape() {
    let ours = StunnerConfig::deleted("ns/gw");
    assert!(ours.is_deleted());
    let wire: StunnerConfig = serde_json::from_str(&ours.to_json()).unwrap();
    assert!(wire.is_deleted());
    let upstream = r#"{"version":"v1","admin":{"name":"ns/gw"},"auth":{"credentials":null}}"#;
    let parsed = StunnerConfig::parse_with_env(upstream, &|_| None).unwrap();
    assert!(parsed.is_deleted());
    assert_eq!(parsed.admin.name, "ns/gw");
}

#[test]
fn real_configs_are_not_deleted_markers() {
    let c: StunnerConfig = serde_json::from_str(ONE).unwrap();
    assert!(!c.is_deleted());
    assert!(
        !StunnerConfig::deleted("").is_deleted(),
        "a marker needs a name"
    );
    let mut validated = StunnerConfig::deleted("ns/gw");
    let _ = validated.validate();
    assert!(
        !validated.is_deleted(),
        "defaults filled: no longer a bare marker"
    );
}
