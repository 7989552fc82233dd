//! A small swarm against real TURN servers (coturn always, stunnerd when built) on loopback, over
//! UDP, TCP, TLS and DTLS.

mod common;

use std::time::Duration;

use loadtest::bench::server::{PASS, ServerKind, ServerProcess, USER};
use loadtest::client::{AuthSpec, Credentials, DataMode};
use loadtest::swarm::{self, ProgressMode, SwarmConfig, SwarmReport, Transport};

fn config(server: std::net::SocketAddr, transport: Transport, mode: DataMode) -> SwarmConfig {
    let auth = AuthSpec::Static(Credentials {
        username: USER.into(),
        password: PASS.into(),
    });
    let mut cfg = SwarmConfig::new(server, auth);
    cfg.transport = transport;
    cfg.mode = mode;
    cfg.allocations = 6;
    cfg.arrival_rate = 200.0;
    cfg.packet_rate = 100.0;
    cfg.duration = Duration::from_millis(800);
    cfg
}

fn assert_healthy(r: &SwarmReport, what: &str) {
    let t = &r.traffic;
    assert_eq!(r.allocations.ready, 6, "{what}: {}", r.to_text());
    assert!(r.failures.is_empty(), "{what}: {:?}", r.failures);
    assert_eq!(
        r.allocations.closed, 6,
        "{what}: every allocation is deallocated"
    );
    assert!(t.sent >= 400, "{what}: sent {}", t.sent);
    assert!(
        t.received as f64 >= 0.98 * t.sent as f64,
        "{what}: {}",
        r.to_text()
    );
    let at_peer = t.peer_received.expect("in-process peer counts");
    assert!(
        at_peer >= t.received && at_peer <= t.sent,
        "{what}: peer saw {at_peer}"
    );
    assert_eq!(r.rtt.count, t.received);
    assert!(
        r.rtt.p50_us > 0.0 && r.rtt.p50_us < 100_000.0,
        "{what}: rtt {:?}",
        r.rtt
    );
    assert!(r.allocations.latency.count == 6 && r.generator.cpu_s > 0.0);
}

fn run_all(kind: ServerKind, test: &str) {
    let server = common::start(kind, test);
    for (transport, mode) in [
        (Transport::Udp, DataMode::Channel),
        (Transport::Udp, DataMode::Send),
        (Transport::Tcp, DataMode::Channel),
    ] {
        let what = format!("{kind:?} {transport:?} {mode:?}");
        let r = swarm::run(config(server.addr, transport, mode), ProgressMode::Quiet).unwrap();
        assert_healthy(&r, &what);
    }
}

#[test]
fn swarm_against_coturn() {
    run_all(ServerKind::Coturn, "swarm-coturn");
}

#[test]
fn swarm_against_stunnerd() {
    if common::stunnerd_missing() {
        return;
    }
    run_all(ServerKind::Stunnerd, "swarm-stunnerd");
}

#[test]
fn wrong_password_is_reported_as_401() {
    let server = common::start(ServerKind::Coturn, "swarm-401");
    let mut cfg = config(server.addr, Transport::Udp, DataMode::Channel);
    cfg.auth = AuthSpec::Static(Credentials {
        username: USER.into(),
        password: "wrong".into(),
    });
    cfg.allocations = 3;
    let r = swarm::run(cfg, ProgressMode::Quiet).unwrap();
    assert_eq!(r.allocations.ready, 0);
    assert_eq!(r.failures.get("401"), Some(&3), "{:?}", r.failures);
}

#[test]
fn no_server_is_reported_not_hung() {
    let port = loadtest::sys::sockets::free_port([127, 0, 0, 1].into()).unwrap();
    let mut cfg = config(
        ([127, 0, 0, 1], port).into(),
        Transport::Udp,
        DataMode::Channel,
    );
    cfg.allocations = 2;
    let start = std::time::Instant::now();
    let r = swarm::run(cfg, ProgressMode::Quiet).unwrap();
    assert_eq!(r.allocations.failed, 2);
    assert!(
        r.failures.contains_key("io") || r.failures.contains_key("timeout"),
        "{:?}",
        r.failures
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// Every allocation over TLS and then DTLS (self-signed certificate: insecure mode).
fn run_secure(server: &ServerProcess) {
    for transport in [Transport::Tls, Transport::Dtls] {
        let what = format!("{:?} {transport:?}", server.kind);
        let mut cfg = config(server.addr_for(transport), transport, DataMode::Channel);
        cfg.tls.insecure = true;
        let r = swarm::run(cfg, ProgressMode::Quiet).unwrap();
        assert_eq!(r.transport, transport);
        assert_healthy(&r, &what);
    }
}

#[test]
fn swarm_over_tls_and_dtls_against_stunnerd() {
    if common::stunnerd_missing() {
        return;
    }
    run_secure(&common::start_secure(
        ServerKind::Stunnerd,
        "swarm-secure-stunnerd",
    ));
}

#[test]
fn swarm_over_tls_and_dtls_against_coturn() {
    run_secure(&common::start_secure(
        ServerKind::Coturn,
        "swarm-secure-coturn",
    ));
}

#[test]
fn untrusted_certificate_is_reported_as_tls() {
    let server = common::start_secure(ServerKind::Coturn, "swarm-untrusted");
    for transport in [Transport::Tls, Transport::Dtls] {
        let mut cfg = config(server.addr_for(transport), transport, DataMode::Channel);
        cfg.allocations = 2;
        let r = swarm::run(cfg, ProgressMode::Quiet).unwrap();
        assert_eq!(r.allocations.ready, 0, "{transport:?}");
        assert_eq!(
            r.failures.get("tls"),
            Some(&2),
            "{transport:?}: {:?}",
            r.failures
        );
    }
}
