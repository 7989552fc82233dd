//! The server against other DTLS implementations over loopback: the webrtc-rs `dtls` client (what
//! loadtest and the `turn` crate use) and OpenSSL's `s_client` (what coturn's clients use). Each
//! client completes a handshake through the stateless cookie exchange and gets its data echoed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use dtls12::{Accept, Association, ServerConfig, accept};
use tokio::net::UdpSocket;

fn der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM base64")
}

fn config() -> ServerConfig {
    let cert = der(include_str!("data/cert.pem"));
    let key = der(include_str!("data/key.pem"));
    ServerConfig::new(vec![cert], &key, Instant::now()).expect("config")
}

/// What the echo server saw.
#[derive(Debug, Default)]
struct Seen {
    verify_requests: usize,
    opened: usize,
    echoed: usize,
    refused: usize,
    lost: usize,
    retransmissions: usize,
    flight6: usize,
}

/// Echoes every application data record back, until `stop` fires or `deadline` passes. Outgoing
/// datagrams whose index (from 0) is in `lose` are not sent, nor the first flight 6 (the datagram
/// that starts with a ChangeCipherSpec record) when `lose_flight6`.
async fn echo_server(
    sock: Arc<UdpSocket>,
    cfg: ServerConfig,
    deadline: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    lose: &'static [usize],
    lose_flight6: bool,
) -> Seen {
    let mut seen = Seen::default();
    let mut sent = 0;
    let mut send = async |d: &[u8], peer: SocketAddr, seen: &mut Seen| {
        let flight6 = d.first() == Some(&20);
        if lose.contains(&sent) || (flight6 && lose_flight6 && seen.flight6 == 0) {
            seen.lost += 1;
        } else {
            sock.send_to(d, peer).await.expect("send");
        }
        seen.flight6 += usize::from(flight6);
        sent += 1;
    };
    let mut assocs: HashMap<SocketAddr, Association> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let wake = assocs
            .values()
            .filter_map(Association::poll_timeout)
            .min()
            .map_or(end, |t| tokio::time::Instant::from_std(t).min(end));
        let got = tokio::select! {
            got = sock.recv_from(&mut buf) => got,
            _ = &mut stop => return seen,
            () = tokio::time::sleep_until(wake) => {
                if tokio::time::Instant::now() >= end {
                    return seen;
                }
                let mut out = Vec::new();
                for (peer, a) in &mut assocs {
                    a.handle_timeout(Instant::now(), &mut out);
                    for d in out.drain(..) {
                        seen.retransmissions += 1;
                        send(&d, *peer, &mut seen).await;
                    }
                }
                continue;
            }
        };
        let (n, peer) = got.expect("recv");
        let pkt = &mut buf[..n];
        let mut out = Vec::new();
        if let Some(a) = assocs.get_mut(&peer) {
            let mut data = Vec::new();
            let handled = a.handle(Instant::now(), pkt, &mut out, &mut |d| {
                data.push(d.to_vec())
            });
            if handled.is_err() || a.is_closed() {
                assocs.remove(&peer);
            } else {
                for d in data {
                    let mut rec = Vec::new();
                    a.seal(&d, &mut rec).expect("seal");
                    out.push(rec);
                    seen.echoed += 1;
                }
            }
        } else {
            match accept(&cfg, Instant::now(), peer, pkt) {
                Accept::Verify(d) => {
                    seen.verify_requests += 1;
                    out.push(d);
                }
                Accept::Open(a, flight) => {
                    seen.opened += 1;
                    out.extend(flight);
                    assocs.insert(peer, *a);
                }
                Accept::Refuse(alert, _) => {
                    seen.refused += 1;
                    out.push(alert);
                }
                Accept::Ignore(_) => {}
            }
        }
        for d in out {
            send(&d, peer, &mut seen).await;
        }
    }
}

/// A running echo server on loopback: its address, its stop switch and what it saw at the end.
struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    seen: tokio::task::JoinHandle<Seen>,
}

impl Running {
    async fn start(cfg: ServerConfig, lose: &'static [usize], lose_flight6: bool) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let addr = sock.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let limit = Duration::from_secs(20);
        let seen = tokio::spawn(echo_server(sock, cfg, limit, stopped, lose, lose_flight6));
        Self { addr, stop, seen }
    }

    async fn seen(self) -> Seen {
        let _ = self.stop.send(());
        self.seen.await.expect("server")
    }
}

#[tokio::test]
async fn webrtc_rs_client_handshakes_and_exchanges_data() {
    let srv = Running::start(config(), &[], false).await;
    let server = srv.addr;
    for ems in [
        dtls::config::ExtendedMasterSecretType::Require,
        dtls::config::ExtendedMasterSecretType::Disable,
    ] {
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        client.connect(server).await.expect("connect");
        let cfg = dtls::config::Config {
            insecure_skip_verify: true,
            extended_master_secret: ems,
            ..Default::default()
        };
        let conn = tokio::time::timeout(
            Duration::from_secs(3),
            dtls::conn::DTLSConn::new(Arc::new(client), cfg, true, None),
        )
        .await
        .expect("handshake in time")
        .expect("handshake");
        for i in 0..3u8 {
            let msg = [b'p', b'i', b'n', b'g', i];
            conn.write(&msg, None).await.expect("write");
            let mut got = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut got, None))
                .await
                .expect("echo in time")
                .expect("read");
            assert_eq!(&got[..n], &msg);
        }
        conn.close().await.expect("close");
    }
    let seen = srv.seen().await;
    assert_eq!(seen.opened, 2, "{seen:?}");
    assert_eq!(
        seen.verify_requests, 2,
        "one stateless cookie round per client: {seen:?}"
    );
    assert_eq!(seen.echoed, 6, "{seen:?}");
}

#[tokio::test]
async fn openssl_s_client_handshakes_and_exchanges_data() {
    let srv = Running::start(config(), &[], false).await;
    let server = srv.addr;
    let mut child = tokio::process::Command::new("openssl")
        .args(["s_client", "-dtls1_2", "-quiet", "-connect"])
        .arg(server.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl (Debian's openssl package) on PATH");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    stdin.write_all(b"hello over dtls\n").await.expect("write");
    let mut got = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(4), stdout.read(&mut got))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(&got[..n], b"hello over dtls\n");
    drop(stdin);
    let _ = child.kill().await;
    let seen = srv.seen().await;
    assert_eq!((seen.verify_requests, seen.opened), (1, 1), "{seen:?}");
}

/// Flight 4 (datagrams 1.., after the HelloVerifyRequest) lost twice in part, and the first flight 6
/// lost: the server resends flight 4 on its timer or the client's repeated ClientHello, and flight
/// 6 on the client's repeated flight 5. A small MTU fragments the certificate chain.
#[tokio::test]
async fn lost_flights_are_resent_and_a_long_chain_is_fragmented() {
    let cert = der(include_str!("data/cert.pem"));
    let key = der(include_str!("data/key.pem"));
    let cfg = ServerConfig::new(vec![cert.clone(), cert.clone(), cert], &key, Instant::now())
        .expect("config")
        .with_mtu(300);
    // Datagram 0 is the HelloVerifyRequest; flight 4 at MTU 300 is 8 datagrams or so.
    let srv = Running::start(cfg, &[1, 3, 4], true).await;
    let server = srv.addr;
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    client.connect(server).await.expect("connect");
    let cfg = dtls::config::Config {
        insecure_skip_verify: true,
        mtu: 300,
        ..Default::default()
    };
    let conn = tokio::time::timeout(
        Duration::from_secs(15),
        dtls::conn::DTLSConn::new(Arc::new(client), cfg, true, None),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    conn.write(b"after loss", None).await.expect("write");
    let mut got = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut got, None))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(&got[..n], b"after loss");
    let seen = srv.seen().await;
    assert_eq!((seen.opened, seen.lost), (1, 4), "{seen:?}");
    assert!(
        seen.flight6 >= 2,
        "flight 6 resent on the repeated flight 5: {seen:?}"
    );
    assert!(
        seen.retransmissions > 0,
        "flight 4 resent on the timer: {seen:?}"
    );
}

/// A client offering only CBC suites passes the cookie round, then gets a fatal alert at once
/// (instead of retransmitting into silence) and no association.
#[tokio::test]
async fn a_cbc_only_client_is_refused_with_an_alert() {
    let srv = Running::start(config(), &[], false).await;
    let server = srv.addr;
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    client.connect(server).await.expect("connect");
    let cfg = dtls::config::Config {
        insecure_skip_verify: true,
        cipher_suites: vec![
            dtls::cipher_suite::CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha,
        ],
        ..Default::default()
    };
    let started = Instant::now();
    let handshake = tokio::time::timeout(
        Duration::from_secs(5),
        dtls::conn::DTLSConn::new(Arc::new(client), cfg, true, None),
    )
    .await
    .expect("the client gives up at once");
    assert!(handshake.is_err(), "no association");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let seen = srv.seen().await;
    assert_eq!(
        (seen.verify_requests, seen.refused, seen.opened),
        (1, 1, 0),
        "{seen:?}"
    );
}
