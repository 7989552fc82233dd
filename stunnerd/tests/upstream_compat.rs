//! stunnerd as a drop-in for upstream's: upstream's command lines start it, the health server
//! answers before the first config, a listener whose `address` is not the host's own (a NAT'd
//! public IP) still serves and hands that address out as the relay address, and a TCP cluster
//! admits no UDP peer. Vectors of upstream's `pkg/config/client/client_test.go` (TestParseURI)
//! and of the peer-admission cases of `stunner_test.go` are transcribed here, as are
//! `stunner_test.go`'s TestStunnerPortRangeWithVNet (cluster port ranges decide which peer
//! ports get relayed packets) and TestStunnerMetrics (the metrics server follows
//! `admin.metrics_endpoint` across reloads: serves, moves, stops). Their config-level halves are
//! in `proto/tests/upstream_vectors.rs`.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use common::probe::{Client, Sink};
use common::*;
use stunnerd::cli::{Flags, default_id, normalize_origin};
use testkit::turn::RawAlloc;

fn flags(args: &[&str]) -> Flags {
    Flags::try_parse_from(std::iter::once("stunnerd").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// upstream stunner `pkg/config/client/client_test.go` `TestParseURI`: what an origin without
/// a scheme means. Deliberate difference: a plain path (`/tmp/a`) is a file here; upstream
/// makes it `http://` with an empty host, which can never connect.
#[test]
fn upstream_parse_uri() {
    let cases = [
        ("file:///tmp/a", "file:///tmp/a"),
        ("/tmp/a", "/tmp/a"),
        ("1.2.3.4:12345", "http://1.2.3.4:12345"),
        ("1.2.3.4:12345/a/b", "http://1.2.3.4:12345/a/b"),
        ("http://1.2.3.4:12345/a/b", "http://1.2.3.4:12345/a/b"),
        ("ws://1.2.3.4:12345/a/b", "ws://1.2.3.4:12345/a/b"),
        // upstream's default origin: the local CDS port
        (":13478", "http://127.0.0.1:13478"),
        ("cds.stunner.svc:13478", "http://cds.stunner.svc:13478"),
        ("[fd00::1]:13478", "http://[fd00::1]:13478"),
        ("./stunnerd.yaml", "./stunnerd.yaml"),
    ];
    for (origin, want) in cases {
        assert_eq!(normalize_origin(origin), want, "{origin}");
    }
}

/// Upstream's default origin (`DefaultConfigDiscoveryAddress` `:13478`) and default id
/// (`default/stunnerd-<hostname>`, or `STUNNER_NAMESPACE/STUNNER_NAME`).
#[test]
fn upstream_defaults() {
    assert_eq!(flags(&[]).origin(), "http://127.0.0.1:13478");
    let none = |_: &str| None;
    assert_eq!(
        default_id(&none, Some("pod-1\n".into())),
        "default/stunnerd-pod-1"
    );
    let env = |k: &str| match k {
        "STUNNER_NAMESPACE" => Some("ns".to_owned()),
        "STUNNER_NAME" => Some("gw".to_owned()),
        _ => None,
    };
    assert_eq!(default_id(&env, Some("pod-1".into())), "ns/gw");
}

/// Every flag of upstream's `cmd/stunnerd/main.go` (and its kubeconfig and CDS discovery flag
/// sets) parses, with upstream's meaning where there is one.
#[test]
fn upstream_command_lines_parse() {
    // What upstream's operator and manifests put in a Dataplane.
    let f = flags(&["-w", "--udp-thread-num=16"]);
    assert!(f.watch);
    assert_eq!(f.udp_thread_num, 16);
    let f = flags(&["-w", "-u", "4", "-i", "ns/gw", "-l", "all:TRACE", "-v"]);
    assert_eq!((f.udp_thread_num, f.id.as_deref()), (4, Some("ns/gw")));
    assert_eq!(
        f.log_spec().as_deref(),
        Some("all:TRACE"),
        "-l wins over -v"
    );
    assert_eq!(flags(&["-v"]).log_spec().as_deref(), Some("all:DEBUG"));
    let f = flags(&[
        "--log-format=json",
        "--force-ready-status",
        "--drain-fail-readiness",
        "-d",
        "--kubeconfig=/root/.kube/config",
        "--context",
        "kind",
        "-n",
        "stunner",
        "--cds-server-address=10.0.0.9",
        "--cds-server-port=1234",
        "-c",
        "k8s",
    ]);
    assert_eq!(f.log_format, stunnerd::cli::LogFormat::Json);
    assert!(
        !f.drain_fail_readiness(),
        "--force-ready-status keeps /ready up"
    );
    assert_eq!(f.origin(), "http://10.0.0.9:1234");
    let ignored = f.ignored();
    assert_eq!(ignored.len(), 4, "{ignored:?}");
    assert!(ignored.iter().any(|w| w.starts_with("-d/--dry-run")));
    let k8s = flags(&["-c", "k8s", "--cds-server-namespace", "gw-ns"]);
    assert_eq!(k8s.origin(), "http://stunner-cds.gw-ns.svc:13478");
    assert!(Flags::try_parse_from(["stunnerd", "--log-format=xml"]).is_err());
    let help = Flags::try_parse_from(["stunnerd", "--help"])
        .unwrap_err()
        .to_string();
    assert!(
        help.contains("Accepted for upstream compatibility (ignored)"),
        "{help}"
    );
    assert!(
        help.contains("--dry-run") && help.contains("--kubeconfig"),
        "{help}"
    );
}

/// Upstream serves `/live` from start-up (it boots from its zero config) and `/ready` only once
/// a real config runs: a pod whose Gateway does not render yet is not killed by its liveness
/// probe. Here with upstream's Dataplane command line and a CDS that does not answer.
#[test]
fn health_answers_before_the_first_config() {
    within(Duration::from_secs(30), || {
        let health = free_port();
        let cds = free_port(); // nothing listens there
        let log = scratch("noconfig.log");
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_stunnerd"))
            .args(["-w", "--udp-thread-num=16", "--log-format=json"])
            .env("STUNNER_CONFIG_ORIGIN", format!("http://127.0.0.1:{cds}"))
            .env("STUNNER_NAMESPACE", "ns")
            .env("STUNNER_NAME", "gw")
            .env("STUNNER_HEALTHCHECK_ADDRESS", format!("127.0.0.1:{health}"))
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn");
        let _guard = Guard(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while http("GET", health, "/live", &[]).0 != 200 {
            assert!(Instant::now() < deadline, "no /live; log:\n{}", read(&log));
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            http("GET", health, "/ready", &[]).0,
            503,
            "no config: not ready"
        );
        let (code, body) = http("GET", health, "/status", &[]);
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
        assert_eq!(v["status"], "NOT-READY");
        let text = read(&log);
        let first = text.lines().next().unwrap_or_default();
        assert!(first.starts_with('{'), "--log-format=json: {first}");
    });
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A config whose listener `address` is `address` and whose clusters are `clusters`
/// (`(name, protocol, endpoint)`), routed from the listener.
fn config_with(ports: Ports, address: &str, clusters: &[(&str, &str, &str)]) -> String {
    let routes: Vec<&str> = clusters.iter().map(|c| c.0).collect();
    let mut text = format!(
        "version: v1\nadmin:\n  name: it\n  healthcheck_endpoint: \"http://127.0.0.1:{h}\"\n  metrics_endpoint: \"http://127.0.0.1:{m}/metrics\"\nauth:\n{STATIC_AUTH}\nlisteners:\n  - name: udp\n    protocol: TURN-UDP\n    address: {address}\n    port: {t}\n    routes: [{r}]\nclusters:\n",
        h = ports.health,
        m = ports.metrics,
        t = ports.turn,
        r = routes.join(", ")
    );
    for (name, protocol, ep) in clusters {
        text.push_str(&format!(
            "  - name: {name}\n    type: STATIC\n    protocol: {protocol}\n    endpoints: [\"{ep}\"]\n"
        ));
    }
    text
}

/// As upstream, listeners bind every interface and `address` is only what XOR-RELAYED-ADDRESS
/// carries: a public IP the host does not own (TEST-NET-3 here) does not fail to bind.
#[test]
fn listener_address_is_only_the_relay_address() {
    within(Duration::from_secs(30), || {
        let ports = Ports::new();
        let yaml = config_with(ports, "203.0.113.7", &[("peers", "UDP", "127.0.0.1")]);
        let _sd = Stunnerd::start(ports, &yaml, &[]);
        let server: SocketAddr = ([127, 0, 0, 1], ports.turn).into();
        let alloc = RawAlloc::new(server, "u", "p");
        assert_eq!(alloc.relay.ip().to_string(), "203.0.113.7");
        assert_ne!(alloc.relay.port(), 0);
    });
}

/// upstream stunner `stunner_test.go` peer admission, by cluster protocol: a peer is admitted
/// only through a cluster of the relay's protocol, so a TCP cluster admits no UDP peer while a
/// UDP cluster with the same endpoint does.
#[test]
fn tcp_cluster_admits_no_udp_peer() {
    within(Duration::from_secs(30), || {
        let ports = Ports::new();
        let yaml = config_with(
            ports,
            "127.0.0.1",
            &[
                ("tcp-only", "TCP", "127.0.0.1"),
                ("udp", "UDP", "127.0.0.2"),
            ],
        );
        let _sd = Stunnerd::start(ports, &yaml, &[]);
        let server: SocketAddr = ([127, 0, 0, 1], ports.turn).into();
        let alloc = RawAlloc::new(server, "u", "p");
        let bind = |channel: u16, peer: &str| {
            let peer: SocketAddr = peer.parse().expect("peer");
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                alloc.channel_bind(channel, peer)
            }))
            .is_ok()
        };
        assert!(
            !bind(0x4000, "127.0.0.1:5000"),
            "TCP cluster: UDP peer refused"
        );
        assert!(
            bind(0x4001, "127.0.0.2:5000"),
            "UDP cluster: UDP peer admitted"
        );
    });
}

/// The TURN REST API password of `username` under `secret` (upstream `auth_test.go`
/// `longTermCredentials`): base64(HMAC-SHA1(secret, username)).
fn rest_password(username: &str, secret: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// upstream stunner `auth_test.go` `TestStunnerAuthServerVNet`, the ephemeral cases: the
/// expiry timestamp may stand alone or before/after a user id, with more fields after it; an
/// expired timestamp is refused.
#[test]
fn upstream_ephemeral_usernames() {
    within(Duration::from_secs(30), || {
        let ports = Ports::new();
        let _sd = Stunnerd::start(ports, &config(ports, EPHEMERAL_AUTH, &["127.0.0.1"]), &[]);
        let server: SocketAddr = ([127, 0, 0, 1], ports.turn).into();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let later = now + 60;
        for user in [
            format!("{later}"),
            format!("{later}:dummy-user-id"),
            format!("dummy-user-id:{later}"),
            format!("dummy-user-id:{later}:random-crap"),
        ] {
            let alloc = RawAlloc::new(server, &user, &rest_password(&user, "s3cr3t"));
            assert_ne!(alloc.relay.port(), 0, "{user}");
        }
        let expired = format!("{}:dummy-user-id", now - 60);
        let refused = std::panic::catch_unwind(|| {
            RawAlloc::new(server, &expired, &rest_password(&expired, "s3cr3t"))
        });
        assert!(refused.is_err(), "expired credentials must be refused");
    });
}

/// Relays `n` Send indications from a fresh allocation to `peer`; what `peer` received.
fn relay_to(sd: &Stunnerd, peer: &Sink, n: usize) -> usize {
    let server: SocketAddr = ([127, 0, 0, 1], sd.ports.turn).into();
    let c = Client::allocate(server, "u", "p").expect("allocate");
    // Permissions are per IP: granted whenever some endpoint names the peer's IP.
    assert_eq!(c.permit(peer.addr), Ok(()), "permission for the peer IP");
    for _ in 0..n {
        c.send_to(peer.addr, b"port-range");
    }
    std::thread::sleep(Duration::from_millis(300));
    peer.count()
}

/// upstream stunner `stunner_test.go` `TestStunnerPortRangeWithVNet` on a live stunnerd: the
/// echo peer (here a loopback sink on port `p`, standing for 1.2.3.5:5678) receives relayed
/// packets only when a routed cluster's port range holds `p`, and the cluster counters stay at
/// zero otherwise. Upstream's "strict_dns with default port range ok" case cannot run on
/// loopback: a STRICT_DNS name never opens a special-purpose range such as 127.0.0.0/8 (see
/// "Security defaults" in the README); its config-level half is in proto's upstream vectors.
#[test]
fn upstream_port_range_with_live_relay() {
    within(Duration::from_secs(90), || {
        let peer = Sink::bind("127.0.0.1:0");
        let p = peer.addr.port();
        let range = |lo: u16, hi: u16| format!("127.0.0.1:<{lo}-{hi}>");
        let cases = [
            (
                "static endpoint with peer address in the admitted port range ok",
                vec![("echo-server-cluster", range(p - 8, p.saturating_add(2)))],
                true,
            ),
            (
                "static endpoint with peer address matching singleton admitted port ok",
                vec![
                    ("dummy-cluster", format!("127.0.0.6:<{p}-{p}>")),
                    ("echo-server-cluster", range(p, p)),
                ],
                true,
            ),
            (
                "static endpoint with peer address in rejected port range fails",
                vec![("echo-server-cluster", range(1, p - 1))],
                false,
            ),
            (
                "static endpoint with peer address in rejected singleton port fails",
                vec![("echo-server-cluster", range(p - 1, p - 1))],
                false,
            ),
        ];
        for (name, clusters, admitted) in cases {
            let ports = Ports::new();
            let clusters: Vec<(&str, &str, &str)> = clusters
                .iter()
                .map(|(n, ep)| (*n, "UDP", ep.as_str()))
                .collect();
            let sd = Stunnerd::start(ports, &config_with(ports, "127.0.0.1", &clusters), &[]);
            let got = relay_to(&sd, &peer, 10);
            let counted = sd.metric(
                "stunner_cluster_packets_total",
                "name=\"echo-server-cluster\"",
            );
            if admitted {
                assert!(got > 0, "{name}: the peer got nothing");
                assert!(counted > 0.0, "{name}: cluster counters stayed at zero");
            } else {
                assert_eq!(got, 0, "{name}: packets reached a peer port out of range");
                assert_eq!(counted, 0.0, "{name}: cluster counters moved");
            }
        }
    });
}

/// Polls `GET 127.0.0.1:port path` until its status is `want` (0 = nothing listens).
fn wait_status(port: u16, path: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = http("GET", port, path, &[]).0;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET :{port}{path}: {got}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// upstream stunner `stunner_test.go` `TestStunnerMetrics`, reconciling one running stunnerd
/// through the endpoints of `testMetrics` ("enable with full metric-server spec", "reconcile
/// with no path", "disable", "enable with no addr", "reconcile with a different port"). Free
/// ports stand in for upstream's 9080/9087; "reconcile with no addr and no port" (port 8080) is
/// only checked at the config level, as 8080 may be taken on a shared host.
#[test]
fn upstream_metrics_server_follows_the_endpoint() {
    within(Duration::from_secs(60), || {
        let ports = Ports::new();
        let yaml = config_with(ports, "127.0.0.1", &[("peers", "UDP", "127.0.0.1")]);
        let current = format!(
            "metrics_endpoint: \"http://127.0.0.1:{}/metrics\"",
            ports.metrics
        );
        assert!(yaml.contains(&current));
        // `-w`: watch the config file, as upstream's Dataplanes run stunnerd.
        let sd = Stunnerd::start(ports, &yaml, &["-w"]);
        let reload = |endpoint: &str| {
            let text = yaml.replace(&current, &format!("metrics_endpoint: \"{endpoint}\""));
            std::fs::write(&sd.config, text).expect("rewrite config");
        };
        // enable with full metric-server spec
        wait_status(ports.metrics, "/metrics", 200);
        // reconcile with no path: served at `/`, the old port is closed
        let (no_path, other) = (free_port(), free_port());
        reload(&format!("http://127.0.0.1:{no_path}"));
        wait_status(no_path, "/", 200);
        wait_status(ports.metrics, "/metrics", 0);
        // disable
        reload("");
        wait_status(no_path, "/", 0);
        // enable with no addr: every interface, so loopback too
        reload(&format!("http://:{no_path}/metrics"));
        wait_status(no_path, "/metrics", 200);
        // reconcile with a different port
        reload(&format!("http://:{other}/metrics"));
        wait_status(other, "/metrics", 200);
        wait_status(no_path, "/metrics", 0);
        assert_eq!(http("GET", ports.health, "/ready", &[]).0, 200);
    });
}
