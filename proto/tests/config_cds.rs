//! CDS message types: the config list and the deletion notice (upstream's zero config).

use proto::config::{ConfigList, StunnerConfig};

const ONE: &str = r#"{"version":"v1","admin":{"name":"ns/gw"},"auth":{"type":"none"},
  "listeners":[{"name":"l","port":3478}]}"#;

/// The exact text upstream's CDS server (`pkg/config/server` `DeleteConfig`, which sends
/// `client.ZeroConfig(id)` unvalidated) writes on the watch WebSocket when `ns1/gw1` is deleted.
const UPSTREAM_DELETE: &str = r#"{"version":"v1","admin":{"name":"ns1/gw1"},"auth":{"type":"static","realm":"stunner.l7mp.io","credentials":{"password":"dummy-password","username":"dummy-username"}}}"#;

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

/// We send what upstream's server sends, byte for byte, so upstream's stunnerd learns of the
/// deletion; and the notice validates (upstream's client validates every config it receives).
#[test]
fn our_deletion_notice_is_upstreams_zero_config() {
    let ours = StunnerConfig::deleted("ns1/gw1");
    assert_eq!(ours.to_json(), UPSTREAM_DELETE);
    let mut validated = ours.clone();
    validated.validate().expect("the notice passes validation");
    assert!(ours.is_deleted() && validated.is_deleted());
}

/// Upstream's notice, as received and before or after validation, is recognised.
#[test]
fn upstreams_deletion_notice_is_recognised() {
    let parsed = StunnerConfig::parse_with_env(UPSTREAM_DELETE, &|_| None).unwrap();
    assert!(parsed.is_deleted());
    assert_eq!(parsed.admin.name, "ns1/gw1");
    let mut validated = parsed.clone();
    validated.validate().unwrap();
    assert!(validated.is_deleted());
}

/// Vectors of upstream stunner `pkg/config/cds_test.go` `testConfig`: `ZeroConfig(id)` with
/// the realm changed is a real config, never a deletion (`IsConfigDeleted` false); the same
/// with the default realm is one. Any other difference makes a real config too.
#[test]
fn zero_config_with_a_change_is_a_real_config() {
    for realm in ["realm1", "realm-new", "realm3", "realm4"] {
        let mut c = StunnerConfig::zero("ns1/gw1");
        c.auth.realm = realm.into();
        c.validate().unwrap();
        assert!(!c.is_deleted(), "realm {realm}");
    }
    let mut with_listener = StunnerConfig::zero("ns1/gw1");
    let l: StunnerConfig = serde_json::from_str(ONE).unwrap();
    with_listener.listeners = l.listeners;
    assert!(!with_listener.is_deleted());
    let mut other_password = StunnerConfig::zero("ns1/gw1");
    other_password
        .auth
        .credentials
        .insert("password".into(), "x".into());
    assert!(!other_password.is_deleted());
    let mut loglevel = StunnerConfig::zero("ns1/gw1");
    loglevel.admin.loglevel = "all:DEBUG".into();
    assert!(!loglevel.is_deleted(), "as upstream: the log level counts");
}

#[test]
fn real_configs_are_not_deletion_notices() {
    let c: StunnerConfig = serde_json::from_str(ONE).unwrap();
    assert!(!c.is_deleted());
    assert!(
        !StunnerConfig::deleted("").is_deleted(),
        "a notice needs a name"
    );
}

/// Older versions of this operator sent `{admin:{name}}` alone; still recognised so a mixed
/// rollout does not drop listeners.
#[test]
fn legacy_bare_marker_is_still_recognised() {
    let legacy = r#"{"version":"v1","admin":{"name":"ns/gw"},"auth":{"credentials":null}}"#;
    let parsed = StunnerConfig::parse_with_env(legacy, &|_| None).unwrap();
    assert!(parsed.is_deleted());
}
