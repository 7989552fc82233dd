//! The credential service against CDS and stunnerd: credentials relay, expire, follow
//! Gateway deletions, and the JSON passes upstream's OpenAPI schema.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proto::auth::{IceConfig, TurnCredential};
use serde_json::Value;
use testkit::peer::EchoPeer;
use testkit::turn::RawAlloc;

use crate::Harness;

/// `turn:127.0.0.1:3478?transport=udp` → 127.0.0.1:3478, the way a browser reads an ICE URL.
fn udp_target(url: &str) -> SocketAddr {
    let rest = url.strip_prefix("turn:").expect("turn: URL");
    let (hostport, query) = rest.split_once('?').expect("transport");
    assert_eq!(query, "transport=udp");
    hostport.parse().expect("host:port")
}

/// Allocates with `user`/`pass`; `Err` carries the refusal (testkit panics on a refused
/// request, with the error code in the message).
fn try_allocate(server: SocketAddr, user: &str, pass: &str) -> Result<RawAlloc, String> {
    let (user, pass) = (user.to_owned(), pass.to_owned());
    std::panic::catch_unwind(move || RawAlloc::new(server, &user, &pass)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

#[test]
fn ice_credentials_relay_through_stunnerd_and_expire() {
    let h = Harness::start(None);
    let ice = h.ice("?service=turn&username=alice&ttl=3600&namespace=default&gateway=gw&iceTransportPolicy=relay");
    assert_eq!(ice.ice_servers.len(), 1, "{ice:?}");
    let server = &ice.ice_servers[0];
    assert_eq!(
        server.urls,
        [format!("turn:127.0.0.1:{}?transport=udp", h.turn)]
    );
    let (expiry, user) = server.username.split_once(':').expect("<expiry>:<user>");
    assert_eq!(user, "alice");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().expect("expiry");
    assert_eq!(
        server.credential,
        proto::auth::rest_password(crate::SECRET.as_bytes(), &server.username)
    );
    assert!(
        expiry.abs_diff(now + 3600) <= 2,
        "expiry {expiry}, now {now}"
    );

    // A browser-style client: the URL and credential from /ice, nothing else.
    let peer = EchoPeer::start();
    let alloc = RawAlloc::new(
        udp_target(&server.urls[0]),
        &server.username,
        &server.credential,
    );
    alloc.channel_bind(0x4000, peer.addr);
    assert_eq!(alloc.ping(0x4000, 5), 5, "relays through stunnerd");

    let forged = try_allocate(
        udp_target(&server.urls[0]),
        &server.username,
        "not-the-password",
    );
    assert!(forged.is_err(), "a wrong password must be refused");

    let short = h.ice("?service=turn&username=bob&ttl=1&namespace=default&gateway=gw");
    let s = &short.ice_servers[0];
    std::thread::sleep(Duration::from_millis(2100));
    let refused = try_allocate(udp_target(&s.urls[0]), &s.username, &s.credential)
        .expect_err("an expired credential must be refused");
    assert!(refused.contains("401"), "refused with 401: {refused}");
    drop(h);
}

#[test]
fn deleted_gateway_leaves_ice_at_once() {
    let mut h = Harness::start(None);
    let names = |ice: &IceConfig| -> Vec<String> {
        ice.ice_servers
            .iter()
            .flat_map(|s| s.urls.clone())
            .collect()
    };
    let before = h.ice("");
    assert_eq!(before.ice_servers.len(), 2, "{before:?}");
    let start = Instant::now();
    h.delete_gateway("other");
    loop {
        let now = h.ice("");
        if now.ice_servers.len() == 1 {
            assert_eq!(
                names(&now),
                [format!("turn:127.0.0.1:{}?transport=udp", h.turn)]
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "deleted Gateway still offered: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "deleted Gateway gone from /ice after {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let (code, body) = h.http("/ice?namespace=default&gateway=other", &[]);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("gateway=other"), "{body}");
}

fn schema_for(definition: &str) -> jsonschema::Validator {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stunner-auth-schema.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    doc["$ref"] = Value::String(format!("#/definitions/{definition}"));
    jsonschema::validator_for(&doc).expect("valid schema")
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value) {
    let errors: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{doc} fails upstream's schema: {errors:?}"
    );
}

#[test]
fn answers_pass_upstreams_schema_and_errors_name_the_parameter() {
    let h = Harness::start(Some("s3cret-token"));
    let (code, body) = h.http("/ice", &[]);
    assert_eq!(code, 401, "{body}");
    let auth = [("Authorization", "Bearer s3cret-token")];
    let (code, body) = h.http("/ice?iceTransportPolicy=relay", &auth);
    assert_eq!(code, 200, "{body}");
    let ice: Value = serde_json::from_str(&body).expect("json");
    let ice_schema = schema_for("iceConfig");
    assert_valid(&ice_schema, &ice);
    let (code, body) = h.http("/?service=turn&key=s3cret-token&username=u", &[]);
    assert_eq!(code, 200, "{body}");
    let turn: Value = serde_json::from_str(&body).expect("json");
    assert_valid(&schema_for("turnAuthenticationToken"), &turn);
    let cred: TurnCredential = serde_json::from_value(turn).expect("TurnCredential");
    assert_eq!(cred.ttl, 86_400, "upstream's default ttl");

    // The validator can fail: a wrong policy and a missing field are caught.
    let mut bad = ice.clone();
    bad["iceTransportPolicy"] = Value::String("none".into());
    assert!(!ice_schema.is_valid(&bad));
    let mut bad = ice;
    bad["iceServers"][0]
        .as_object_mut()
        .expect("server")
        .remove("credential");
    assert!(!ice_schema.is_valid(&bad));

    for (query, param) in [
        ("/?username=x", "service"),
        ("/ice?ttl=soon", "ttl"),
        ("/ice?gateway=gw", "gateway"),
        ("/ice?iceTransportPolicy=never", "iceTransportPolicy"),
    ] {
        let (code, body) = h.http(query, &auth);
        assert_eq!(code, 400, "{query}: {body}");
        assert!(body.contains(param), "{query}: {body}");
    }
    let (code, metrics) = h.http("/metrics", &[]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("stunner_auth_requests_total{endpoint=\"ice\",code=\"400\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("stunner_auth_gateways 2"), "{metrics}");
}
