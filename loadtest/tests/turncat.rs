//! turncat as a process: relaying a UDP exchange through coturn and stunnerd (over UDP, TLS and
//! DTLS), and its errors (auth, unreachable, forbidden peer, untrusted certificate).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use loadtest::bench::server::{ServerKind, ServerProcess};
use loadtest::peer::{self, EchoPeer, PeerCounters};

const TURNCAT: &str = env!("CARGO_BIN_EXE_turncat");

/// Kills the child on drop so a failing assertion never leaks a process.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<PeerCounters>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn echo_peer() -> Peer {
    let mut p = EchoPeer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = p.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(PeerCounters::default());
    let (s, c) = (stop.clone(), counters.clone());
    std::thread::spawn(move || peer::run_blocking(&mut p, &s, &c));
    Peer {
        addr,
        stop,
        counters,
    }
}

fn relay_udp_exchange(kind: ServerKind, test: &str) {
    let server = common::start(kind, test);
    relay_through(&server, &format!("turn://u:p@{}", server.addr), &[]);
}

/// Starts turncat with a UDP listener towards `uri` and checks 5 datagrams echo through the relay.
fn relay_through(server: &ServerProcess, uri: &str, flags: &[&str]) {
    let kind = server.kind;
    let peer = echo_peer();
    let port = loadtest::sys::sockets::free_port([127, 0, 0, 1].into()).unwrap();
    let listen = format!("udp://127.0.0.1:{port}");
    let _tc = Proc(
        Command::new(TURNCAT)
            .args(flags)
            .args([&listen, uri, &format!("udp://{}", peer.addr)])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    for i in 0u32.. {
        assert!(
            Instant::now() < deadline,
            "{kind:?} {uri}: turncat relayed {got} of {i} datagrams"
        );
        let msg = format!("hello {i}");
        client.send_to(msg.as_bytes(), ("127.0.0.1", port)).unwrap();
        if let Ok((n, from)) = client.recv_from(&mut buf) {
            assert_eq!(from.port(), port, "answers come from turncat's listener");
            assert!(buf[..n].starts_with(b"hello "), "{:?}", &buf[..n]);
            got += 1;
            if got == 5 {
                break;
            }
        }
    }
    assert!(
        peer.counters.received.load(Ordering::Relaxed) >= 5,
        "the peer saw the traffic through the relay"
    );
}

#[test]
fn turncat_relays_udp_through_coturn() {
    relay_udp_exchange(ServerKind::Coturn, "turncat-coturn");
}

#[test]
fn turncat_relays_udp_through_stunnerd() {
    if common::stunnerd_missing() {
        return;
    }
    relay_udp_exchange(ServerKind::Stunnerd, "turncat-stunnerd");
}

/// Runs turncat in stdin/stdout mode and returns (exit code, stderr).
fn run_stdio(uri: &str, peer: SocketAddr) -> (i32, String) {
    run_stdio_with(&[], uri, peer)
}

/// [`run_stdio`] with extra flags.
fn run_stdio_with(flags: &[&str], uri: &str, peer: SocketAddr) -> (i32, String) {
    let mut child = Command::new(TURNCAT)
        .args(flags)
        .args(["-", uri, &format!("udp://{peer}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take(); // kept open: turncat must fail on its own
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "turncat did not give up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn turncat_errors_are_clear() {
    let server = common::start(ServerKind::Coturn, "turncat-errors");
    let peer = echo_peer();
    let (code, err) = run_stdio(&format!("turn://u:wrong@{}", server.addr), peer.addr);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("authentication failed") && err.contains("401"),
        "{err}"
    );

    let port = loadtest::sys::sockets::free_port([127, 0, 0, 1].into()).unwrap();
    let (code, err) = run_stdio(&format!("turn://u:p@127.0.0.1:{port}"), peer.addr);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unreachable"), "{err}");

    let (code, err) = run_stdio("turn://u:p@127.0.0.1:3478?transport=sctp", peer.addr);
    assert_eq!(code, 64, "bad configuration exits 64: {err}");
}

#[test]
fn turncat_reports_forbidden_peer() {
    if common::stunnerd_missing() {
        return;
    }
    // stunnerd's cluster only routes 127.0.0.0/8: any other peer must be refused with 403.
    let server = common::start(ServerKind::Stunnerd, "turncat-403");
    let (code, err) = run_stdio(
        &format!("turn://u:p@{}", server.addr),
        "10.1.2.3:9".parse().unwrap(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("permission denied") && err.contains("403"),
        "{err}"
    );
}

/// Over TLS (`turns://`, RFC 7065) and DTLS (upstream's `?transport=dtls`), self-signed: `-i`.
fn relay_secure(kind: ServerKind, test: &str) {
    let server = common::start_secure(kind, test);
    let tls = server.tls_addr.expect("TLS listener");
    relay_through(&server, &format!("turns://u:p@{tls}"), &["-i"]);
    relay_through(
        &server,
        &format!("turn://u:p@{tls}?transport=dtls"),
        &["--insecure"],
    );
    // Verified: the certificate as the trusted CA, by IP (the URI host) and by name (--sni).
    let ca = common::workdir(test).join("turn-cert.pem");
    let ca = ca.to_str().unwrap();
    relay_through(&server, &format!("turns://u:p@{tls}"), &["--ca", ca]);
    relay_through(
        &server,
        &format!("turns://u:p@{tls}?transport=udp"),
        &["--ca", ca, "--sni", "localhost"],
    );
}

#[test]
fn turncat_relays_over_tls_and_dtls_through_stunnerd() {
    if common::stunnerd_missing() {
        return;
    }
    relay_secure(ServerKind::Stunnerd, "turncat-secure-stunnerd");
}

#[test]
fn turncat_relays_over_tls_and_dtls_through_coturn() {
    relay_secure(ServerKind::Coturn, "turncat-secure-coturn");
}

#[test]
fn turncat_refuses_an_untrusted_certificate() {
    let server = common::start_secure(ServerKind::Coturn, "turncat-untrusted");
    let tls = server.tls_addr.expect("TLS listener");
    let peer = echo_peer();
    for (uri, what) in [
        (format!("turns://u:p@{tls}"), "TLS"),
        (format!("turns://u:p@{tls}?transport=udp"), "DTLS"),
    ] {
        let (code, err) = run_stdio(&uri, peer.addr);
        assert_eq!(code, 1, "{uri}: {err}");
        let expected = format!("{what} handshake with {tls} failed: invalid peer certificate");
        assert!(err.contains(&expected), "{uri}: {err}");
        assert!(err.contains("UnknownIssuer"), "{uri}: {err}");
    }
    // A trusted certificate, but for another name.
    let ca = common::workdir("turncat-untrusted").join("turn-cert.pem");
    let flags = ["--ca", ca.to_str().unwrap(), "--sni", "turn.example.com"];
    let (code, err) = run_stdio_with(&flags, &format!("turns://u:p@{tls}"), peer.addr);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not valid for name \"turn.example.com\""),
        "{err}"
    );
}
