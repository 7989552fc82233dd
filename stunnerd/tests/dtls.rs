//! TURN-DTLS against coturn's `turnutils_uclient -S` (UDP, DTLS 1.2) with zero loss, through a
//! self-signed certificate made by the `openssl` CLI; garbage datagrams on the DTLS port open no
//! association and leave the listener serving; a broken certificate refuses only its listener; a
//! client reconnects from the same address and port after closing its association; a flood of
//! ClientHello-looking datagrams from many ports stays bounded and leaves real clients served; and a
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
/// Most concurrent half-open handshakes per DTLS listener (`driver::dtls::demux::MAX_HALF_OPEN`).
const MAX_HALF_OPEN: f64 = 128.0;

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
        let (ports, dtls_port) = (Ports::new(), free_port());
        let (cert, key) = self_signed();
        let sd = Stunnerd::start(
            ports,
            &dtls_config(ports, dtls_port, &cert, &key, None),
            &[],
        );
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

/// ClientHello-prefixed and garbage datagrams from 400 ports: the half-open table stays bounded,
/// its entries go away with the handshake timeout, and a real client is served at once meanwhile.
#[test]
fn client_hello_flood_stays_bounded_and_real_clients_are_served() {
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
        let mut hello = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 1, 0, 0, 54];
        hello.resize(73, 0xab);
        let flooders: Vec<UdpSocket> = (0..400)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        for s in &flooders {
            for pkt in [&b"garbage"[..], &[22, 0xfe, 0xfd], &hello] {
                let _ = s.send_to(pkt, ("127.0.0.1", dtls_port));
            }
        }
        // Every datagram read: 800 refused, 400 handshakes opened (most evicted at once).
        let deadline = Instant::now() + Duration::from_secs(20);
        while sd.metric("stunner_listener_connections_total", "name=\"dtls\"") < 400.0 {
            assert!(Instant::now() < deadline, "flood not processed");
            std::thread::sleep(Duration::from_millis(50));
        }
        let malformed = sd.metric("stunner_listener_packets_dropped_total", "malformed");
        assert!(malformed >= 800.0, "refused datagrams counted: {malformed}");
        // Evicted handshakes end as soon as their task runs again; the rest stay bounded.
        std::thread::sleep(Duration::from_millis(500));
        let open = open_associations(&sd);
        assert!(
            open > 0.0 && open <= MAX_HALF_OPEN,
            "half-open handshakes: {open}"
        );
        let started = Instant::now();
        assert_eq!(dtls_fingerprint(dtls_port, None), fingerprint_of(&cert));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "handshake took {took:?}");
        // Unanswered handshakes time out (10 s) and free their entries.
        let deadline = Instant::now() + Duration::from_secs(20);
        while open_associations(&sd) > 0.0 {
            let open = open_associations(&sd);
            assert!(
                Instant::now() < deadline,
                "{open} half-open handshakes never expired"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
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
