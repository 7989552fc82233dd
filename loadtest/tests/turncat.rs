//! turncat as a process: relaying a UDP exchange through coturn and stunnerd, and its errors.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use loadtest::bench::server::ServerKind;
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
    let peer = echo_peer();
    let port = loadtest::sys::sockets::free_port([127, 0, 0, 1].into()).unwrap();
    let listen = format!("udp://127.0.0.1:{port}");
    let uri = format!("turn://u:p@{}", server.addr);
    let _tc = Proc(
        Command::new(TURNCAT)
            .args([&listen, &uri, &format!("udp://{}", peer.addr)])
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
            "{kind:?}: turncat relayed {got} of {i} datagrams"
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
    let mut child = Command::new(TURNCAT)
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
