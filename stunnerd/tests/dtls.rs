//! TURN-DTLS against coturn's `turnutils_uclient -S` (UDP, DTLS 1.2) with zero loss, through a
//! self-signed certificate made by the `openssl` CLI; garbage datagrams on the DTLS port open no
//! association and leave the listener serving; a broken certificate refuses only its listener.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use base64::Engine as _;
use common::certs::*;
use common::*;

const LIMIT: Duration = Duration::from_secs(90);

/// A UDP listener on `ports.turn`, a DTLS listener on `dtls_port` and a broken DTLS one.
fn dtls_config(ports: Ports, dtls_port: u16, broken_port: u16) -> String {
    let (cert, key) = self_signed();
    let junk = base64::engine::general_purpose::STANDARD.encode("not a certificate");
    let mut yaml = config(ports, STATIC_AUTH, &["127.0.0.1"]);
    let at = yaml.find("clusters:").expect("clusters");
    let listener = |name: &str, port: u16, cert: &str, key: &str| {
        format!(
            "  - name: {name}\n    protocol: TURN-DTLS\n    address: 127.0.0.1\n    port: {port}\n    \
             cert: {cert}\n    key: {key}\n    routes: [peers]\n"
        )
    };
    let extra = listener("dtls", dtls_port, &cert, &key)
        + &listener("dtls-broken", broken_port, &junk, &junk);
    yaml.insert_str(at, &extra);
    yaml
}

#[test]
fn uclient_over_dtls_with_garbage_and_a_broken_listener() {
    within(LIMIT, || {
        let (ports, dtls_port, broken_port) = (Ports::new(), free_port(), free_port());
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let sd = Stunnerd::start(ports, &dtls_config(ports, dtls_port, broken_port), &[]);
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
        let peer = peer_port.to_string();
        for (flags, what) in [
            (&["-c"][..], "dtls channels"),
            (&["-c", "-s"][..], "dtls send"),
            (&[][..], "dtls rtp+rtcp"),
        ] {
            let mut args = vec!["-S", "-u", "u", "-w", "p", "-e", "127.0.0.1"];
            args.extend_from_slice(&["-r", &peer, "-n", "100", "-m", "2", "-l", "120"]);
            args.extend_from_slice(flags);
            let run = uclient(dtls_port, &args, Duration::from_secs(30));
            assert!(
                run.output.contains("DTLSv1.2"),
                "{what}: DTLS\n{}",
                run.output
            );
            assert_clean_tls(&run, what);
        }
        assert!(sd.metric("stunner_listener_packets_total", "dtls") >= 400.0);
        assert!(sd.metric("stunner_listener_connections_total", "dtls") >= 4.0);
    });
}
