//! TURN-TLS against real clients: coturn's `turnutils_uclient -t -S` with zero loss through a
//! self-signed certificate made by the `openssl` CLI; a broken certificate rejects only its
//! listener; plaintext and silent (slow-loris) connections on the TLS port are closed and counted;
//! and a certificate rotation (`-w` reload) restarts the TLS listener while a live allocation on the
//! UDP listener keeps relaying.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::certs::*;
use common::*;

const LIMIT: Duration = Duration::from_secs(90);

/// A UDP listener on `ports.turn`, a TLS listener on `tls_port` and optionally a broken TLS one.
fn tls_config(ports: Ports, tls_port: u16, cert: &str, key: &str, broken: Option<u16>) -> String {
    let mut yaml = config(ports, STATIC_AUTH, &["127.0.0.1"]);
    let listeners_end = yaml.find("clusters:").expect("clusters");
    let mut extra = format!(
        "  - name: tls\n    protocol: TURN-TLS\n    address: 127.0.0.1\n    port: {tls_port}\n    \
         cert: {cert}\n    key: {key}\n    routes: [peers]\n"
    );
    if let Some(port) = broken {
        // Valid base64, but not a certificate: only this listener may be refused.
        let junk = base64::engine::general_purpose::STANDARD.encode("not a certificate");
        extra.push_str(&format!(
            "  - name: tls-broken\n    protocol: TURN-TLS\n    address: 127.0.0.1\n    port: {port}\n    \
             cert: {junk}\n    key: {junk}\n    routes: [peers]\n"
        ));
    }
    yaml.insert_str(listeners_end, &extra);
    yaml
}

#[test]
fn uclient_over_tls_and_a_broken_listener_alone_refused() {
    within(LIMIT, || {
        let (ports, tls_port, broken_port) = (Ports::new(), free_port(), free_port());
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let (cert, key) = self_signed();
        let yaml = tls_config(ports, tls_port, &cert, &key, Some(broken_port));
        let sd = Stunnerd::start(ports, &yaml, &[]);
        let log = sd.log_text();
        assert!(
            log.contains("listener tls-broken: cert"),
            "the broken listener is named:\n{log}"
        );
        assert!(TcpStream::connect(("127.0.0.1", broken_port)).is_err());
        for (flags, what) in [
            (&["-c"][..], "tls channels"),
            (&["-c", "-s"][..], "tls send"),
            (&[][..], "tls rtp+rtcp"),
        ] {
            let args = plus(
                uclient_args(peer_port, 100),
                &["-t", "-S", "-m", "2", "-l", "120"],
            );
            let args = plus(args, flags);
            assert_clean_tls(&uclient(tls_port, &args, Duration::from_secs(30)), what);
        }
        assert!(sd.metric("stunner_listener_packets_total", "tls") >= 400.0);
        // The UDP listener of the same config serves too.
        let args = plus(uclient_args(peer_port, 20), &["-c"]);
        assert_clean_tls(&uclient(ports.turn, &args, Duration::from_secs(30)), "udp");
    });
}

#[test]
fn plaintext_and_silent_connections_are_closed_and_counted() {
    within(LIMIT, || {
        let (ports, tls_port) = (Ports::new(), free_port());
        let (cert, key) = self_signed();
        let sd = Stunnerd::start(ports, &tls_config(ports, tls_port, &cert, &key, None), &[]);
        let silent = TcpStream::connect(("127.0.0.1", tls_port)).expect("connect");
        let opened = Instant::now();
        // A plaintext STUN Binding request on the TLS port.
        let mut plain = TcpStream::connect(("127.0.0.1", tls_port)).expect("connect");
        let mut binding = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        binding.extend_from_slice(&[7; 12]);
        plain.write_all(&binding).expect("write");
        assert_closed(plain, Duration::from_secs(3));
        assert_closed(silent, Duration::from_secs(15));
        let waited = opened.elapsed();
        assert!(waited >= Duration::from_secs(8), "closed after {waited:?}");
        // The plaintext one fails its handshake; the silent one hits the first-request timeout.
        let handshake = sd.metric("stunner_listener_packets_dropped_total", "tls_handshake");
        let timeout = sd.metric("stunner_listener_packets_dropped_total", "timeout");
        assert!(handshake >= 1.0, "tls_handshake drops: {handshake}");
        assert!(handshake + timeout >= 2.0, "drops: {handshake} + {timeout}");
        // The listener still serves, over TLS 1.2 and TLS 1.3.
        for version in ["-tls1_2", "-tls1_3"] {
            let got = served_fingerprint_with(tls_port, version);
            assert_eq!(got, fingerprint_of(&cert), "{version}");
        }
    });
}

/// Reads until EOF or a reset within `limit` (whatever the server sent before closing is ignored).
fn assert_closed(mut s: TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
    panic!("connection not closed within {limit:?}");
}

#[test]
fn certificate_rotation_keeps_udp_allocations_relaying() {
    within(LIMIT, || {
        let (ports, tls_port) = (Ports::new(), free_port());
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let (cert, key) = self_signed();
        let sd = Stunnerd::start(
            ports,
            &tls_config(ports, tls_port, &cert, &key, None),
            &["-w"],
        );
        assert_eq!(served_fingerprint(tls_port), fingerprint_of(&cert));
        rotate_under_udp_load(
            &sd,
            peer_port,
            |cert, key| tls_config(ports, tls_port, cert, key, None),
            || served_fingerprint(tls_port),
            "tls",
        );
    });
}
