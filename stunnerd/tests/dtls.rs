//! TURN-DTLS against coturn's `turnutils_uclient -S` (UDP, DTLS 1.2) with zero loss, through a
//! self-signed certificate made by the `openssl` CLI; garbage datagrams on the DTLS port open no
//! association and leave the listener serving; a broken certificate refuses only its listener; a
//! client reconnects from the same address and port after closing its association; a flood of
//! ClientHellos from many ports is answered statelessly and leaves real clients served; and a
//! certificate rotation (`-w` reload) restarts the DTLS listener while a live allocation on the UDP
//! listener keeps relaying.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::certs::*;
use common::*;

// Generous: a debug stunnerd does its DTLS handshakes slowly while other test binaries load both cores.
const LIMIT: Duration = Duration::from_secs(180);

/// A UDP listener on `ports.turn`, a DTLS listener on `dtls_port` with `cert`/`key`, and optionally
/// a broken DTLS one on `broken`.
fn dtls_config(ports: Ports, dtls_port: u16, cert: &str, key: &str, broken: Option<u16>) -> String {
    let mut yaml = config(ports, STATIC_AUTH, &["127.0.0.1"]);
    let at = yaml.find("clusters:").expect("clusters");
    let listener = |name: &str, port: u16, cert: &str, key: &str| {
        format!(
            "  - name: {name}\n    protocol: TURN-DTLS\n    address: 127.0.0.1\n    port: {port}\n    \
             cert: {cert}\n    key: {key}\n    routes: [peers]\n"
        )
    };
    let mut extra = listener("dtls", dtls_port, cert, key);
    if let Some(port) = broken {
        let junk = base64::engine::general_purpose::STANDARD.encode("not a certificate");
        extra.push_str(&listener("dtls-broken", port, &junk, &junk));
    }
    yaml.insert_str(at, &extra);
    yaml
}

/// stunnerd with a UDP listener and a DTLS one on a self-signed certificate: it, the DTLS port and
/// the certificate (base64 PEM).
fn start_with_dtls() -> (Stunnerd, u16, String) {
    let (ports, dtls_port) = (Ports::new(), free_port());
    let (cert, key) = self_signed();
    let yaml = dtls_config(ports, dtls_port, &cert, &key, None);
    (Stunnerd::start(ports, &yaml, &[]), dtls_port, cert)
}

/// SHA-256 fingerprint of the certificate served over DTLS 1.2 on `port`, from `openssl s_client`
/// bound to `bind` (an address:port) when given; empty when no handshake completed.
fn dtls_fingerprint(port: u16, bind: Option<&str>) -> String {
    let flags = bind.map_or("-dtls1_2".to_owned(), |b| format!("-dtls1_2 -bind {b}"));
    served_fingerprint_with(port, &flags)
}

/// The `stunner_listener_connections` gauge of the listener named `dtls`.
fn open_associations(sd: &Stunnerd) -> f64 {
    sd.metric("stunner_listener_connections", "name=\"dtls\"")
}

#[test]
fn uclient_over_dtls_with_garbage_and_a_broken_listener() {
    within(LIMIT, || {
        let (ports, dtls_port, broken_port) = (Ports::new(), free_port(), free_port());
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let (cert, key) = self_signed();
        let yaml = dtls_config(ports, dtls_port, &cert, &key, Some(broken_port));
        let sd = Stunnerd::start(ports, &yaml, &[]);
        let log = sd.log_text();
        assert!(log.contains("listener dtls-broken: cert"), "{log}");
        // Plaintext STUN on the DTLS port: no association, no answer.
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        probe
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut binding = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        binding.extend_from_slice(&[7; 12]);
        probe
            .send_to(&binding, ("127.0.0.1", dtls_port))
            .expect("send");
        assert!(
            probe.recv_from(&mut [0u8; 512]).is_err(),
            "no plaintext answer"
        );
        for (flags, what) in [
            (&["-c"][..], "dtls channels"),
            (&["-c", "-s"][..], "dtls send"),
            (&[][..], "dtls rtp+rtcp"),
        ] {
            let args = plus(
                uclient_args(peer_port, 100),
                &["-S", "-m", "2", "-l", "120"],
            );
            let args = plus(args, flags);
            let run = uclient(dtls_port, &args, Duration::from_secs(60));
            assert!(
                run.output.contains("DTLSv1.2"),
                "{what}: DTLS\n{}",
                run.output
            );
            assert_clean_tls(&run, what);
        }
        assert!(sd.metric("stunner_listener_packets_total", "dtls") >= 400.0);
        assert!(sd.metric("stunner_listener_connections_total", "dtls") >= 4.0);
        assert!(
            sd.metric(
                "stunner_listener_packets_dropped_total",
                "reason=\"malformed\""
            ) >= 1.0,
            "the plaintext probe is counted"
        );
    });
}

/// The webrtc-util UDP listener stunnerd used before never forgot a client address, so a second
/// association from the same address and port was never served.
#[test]
fn reconnect_from_the_same_address_and_port() {
    within(LIMIT, || {
        let (sd, dtls_port, cert) = start_with_dtls();
        let bind = format!("127.0.0.1:{}", free_port());
        let want = fingerprint_of(&cert);
        for round in 1..=3 {
            assert_eq!(
                dtls_fingerprint(dtls_port, Some(&bind)),
                want,
                "association {round} from {bind}"
            );
        }
        // Every association ended with its client's close_notify: nothing is left open.
        let deadline = Instant::now() + Duration::from_secs(5);
        while open_associations(&sd) > 0.0 {
            assert!(Instant::now() < deadline, "associations left open");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// A client killed without a close_notify (a crash, or a NAT that maps the restarted client to
/// the same port) handshakes again from the same address and port: its new ClientHello goes
/// through the cookie round and replaces the old association.
#[test]
fn a_client_restarting_on_the_same_port_replaces_its_association() {
    within(LIMIT, || {
        let (sd, dtls_port, cert) = start_with_dtls();
        let bind = format!("127.0.0.1:{}", free_port());
        let mut first = std::process::Command::new("openssl")
            .args(["s_client", "-dtls1_2", "-quiet", "-bind", &bind, "-connect"])
            .arg(format!("127.0.0.1:{dtls_port}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let deadline = Instant::now() + Duration::from_secs(10);
        while open_associations(&sd) < 1.0 {
            assert!(
                Instant::now() < deadline,
                "first association not established"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        first.kill().expect("kill -9");
        let _ = first.wait();
        assert_eq!(open_associations(&sd), 1.0, "no close_notify: still open");
        assert_eq!(
            dtls_fingerprint(dtls_port, Some(&bind)),
            fingerprint_of(&cert),
            "second association from {bind}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while open_associations(&sd) > 0.0 {
            assert!(
                Instant::now() < deadline,
                "the old association was not replaced"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(sd.metric("stunner_listener_connections_total", "dtls") >= 2.0);
    });
}

/// A DTLS 1.2 ClientHello record (epoch 0, message_seq 0) offering ECDHE-ECDSA-AES128-GCM with
/// `cookie`, as a client's first (empty cookie) or second flight.
fn client_hello(random: u8, cookie: &[u8]) -> Vec<u8> {
    let mut body = vec![0xfe, 0xfd];
    body.extend_from_slice(&[random; 32]);
    body.push(0);
    body.push(u8::try_from(cookie.len()).expect("cookie"));
    body.extend_from_slice(cookie);
    body.extend_from_slice(&[0, 2, 0xc0, 0x2b, 1, 0]);
    let len = u32::try_from(body.len()).expect("len").to_be_bytes();
    let mut msg = vec![
        1, len[1], len[2], len[3], 0, 0, 0, 0, 0, len[1], len[2], len[3],
    ];
    msg.extend_from_slice(&body);
    let rlen = u16::try_from(msg.len()).expect("len").to_be_bytes();
    let mut rec = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, rlen[0], rlen[1]];
    rec.extend_from_slice(&msg);
    rec
}

/// Stateless cookies (RFC 6347 §4.2.1; issue 13, finding 6): 400 sources send real ClientHellos
/// and garbage; each ClientHello is answered with a HelloVerifyRequest smaller than itself and no
/// association is opened (before: 400 opened, 128 kept half-open until the handshake timeout),
/// and a real client is served at once meanwhile. A ClientHello that returns a cookie from another
/// address (spoofed) opens nothing either.
#[test]
fn client_hello_flood_is_answered_statelessly_and_real_clients_are_served() {
    within(LIMIT, || {
        let (ports, dtls_port) = (Ports::new(), free_port());
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let (cert, key) = self_signed();
        let sd = Stunnerd::start(
            ports,
            &dtls_config(ports, dtls_port, &cert, &key, None),
            &[],
        );
        let rss_before = sd.rss_kib();
        let flooders: Vec<UdpSocket> = (0..400)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                s
            })
            .collect();
        let hello = client_hello(7, &[]);
        for s in &flooders {
            for pkt in [&b"garbage"[..], &[22, 0xfe, 0xfd], &hello] {
                let _ = s.send_to(pkt, ("127.0.0.1", dtls_port));
            }
        }
        let mut cookies = Vec::new();
        for s in &flooders {
            let mut buf = [0u8; 512];
            let (n, _) = s.recv_from(&mut buf).expect("a HelloVerifyRequest");
            let hvr = &buf[..n];
            assert_eq!(hvr[13], 3, "HelloVerifyRequest");
            assert!(n < hello.len(), "answer {n} B, request {} B", hello.len());
            cookies.push(hvr[28..28 + usize::from(hvr[27])].to_vec());
        }
        assert_eq!(
            open_associations(&sd),
            0.0,
            "a ClientHello without a cookie opens nothing"
        );
        assert_eq!(
            sd.metric("stunner_listener_connections_total", "name=\"dtls\""),
            0.0
        );
        let malformed = sd.metric("stunner_listener_packets_dropped_total", "malformed");
        assert!(malformed >= 800.0, "refused datagrams counted: {malformed}");
        // A cookie replayed from another source (a spoofer who saw it) opens nothing.
        flooders[1]
            .send_to(&client_hello(7, &cookies[0]), ("127.0.0.1", dtls_port))
            .expect("send");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(open_associations(&sd), 0.0, "cookie bound to its source");
        let started = Instant::now();
        assert_eq!(dtls_fingerprint(dtls_port, None), fingerprint_of(&cert));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "handshake took {took:?}");
        let grown = sd.rss_kib().saturating_sub(rss_before);
        assert!(grown < 4096, "RSS grew {grown} KiB during the flood");
        let args = plus(
            uclient_args(peer_port, 50),
            &["-S", "-c", "-m", "2", "-l", "120"],
        );
        assert_clean_tls(
            &uclient(dtls_port, &args, Duration::from_secs(60)),
            "dtls after flood",
        );
    });
}

#[test]
fn certificate_rotation_keeps_udp_allocations_relaying() {
    within(LIMIT, || {
        let (ports, dtls_port) = (Ports::new(), free_port());
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let (cert, key) = self_signed();
        let yaml = dtls_config(ports, dtls_port, &cert, &key, None);
        let sd = Stunnerd::start(ports, &yaml, &["-w"]);
        assert_eq!(dtls_fingerprint(dtls_port, None), fingerprint_of(&cert));
        rotate_under_udp_load(
            &sd,
            peer_port,
            |cert, key| dtls_config(ports, dtls_port, cert, key, None),
            || dtls_fingerprint(dtls_port, None),
            "dtls",
        );
    });
}
