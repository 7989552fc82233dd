//! coturn's `turnutils_uclient` + `turnutils_peer` against stunnerd: UDP and TCP, with and without
//! channels, static and ephemeral (TURN REST API) credentials, zero loss at modest load; and peer
//! filtering refusing a peer that no route allows.

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn assert_clean(run: &Uclient, what: &str) {
    assert_eq!(run.lost, Some(0), "{what}: lost packets\n{}", run.output);
    assert_eq!(
        run.send_dropped,
        Some(0),
        "{what}: send dropped\n{}",
        run.output
    );
    assert_eq!(run.errors, 0, "{what}: errors\n{}", run.output);
}

#[test]
fn static_auth_udp_tcp_channels_and_send() {
    within(LIMIT, || {
        let ports = Ports::new();
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let sd = Stunnerd::start(ports, &config(ports, STATIC_AUTH, &["127.0.0.1"]), &[]);
        let base = plus(
            uclient_args(peer_port, 200),
            &["-m", "4", "-l", "200", "-z", "5"],
        );
        for (flags, what) in [
            (&[][..], "udp channels"),
            (&["-s"][..], "udp send"),
            (&["-t"][..], "tcp channels"),
            (&["-t", "-s"][..], "tcp send"),
        ] {
            let args = plus(plus(base.clone(), &["-c"]), flags);
            let run = uclient(ports.turn, &args, Duration::from_secs(30));
            assert_clean(&run, what);
        }
        // 4 runs x 4 clients x 200 messages echoed back: at least that many relayed each way.
        assert!(sd.metric("stunner_cluster_packets_total", "direction=\"tx\"") >= 3200.0);
        assert!(sd.metric("stunner_cluster_packets_total", "direction=\"rx\"") >= 3200.0);
        assert!(sd.metric("stunner_allocations_total", "created") >= 16.0);
    });
}

/// Without `-c` every uclient client also opens an RTCP allocation: EVEN-PORT with the R bit for the
/// RTP one, then RESERVATION-TOKEN for the reserved odd port (RFC 8656 §7.2).
#[test]
fn even_port_and_reservation_token_without_c() {
    within(LIMIT, || {
        let ports = Ports::new();
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let sd = Stunnerd::start(ports, &config(ports, STATIC_AUTH, &["127.0.0.1"]), &[]);
        for (flags, what) in [(&[][..], "udp rtp+rtcp"), (&["-t"][..], "tcp rtp+rtcp")] {
            let args = plus(uclient_args(peer_port, 100), &["-m", "2", "-l", "120"]);
            let args = plus(args, flags);
            assert_clean(&uclient(ports.turn, &args, Duration::from_secs(30)), what);
        }
        // Each run makes at least 3 allocations (RTP with EVEN-PORT R, RTCP with the token, and
        // the peer side); uclient aborts at once when an RTCP allocation fails.
        let created = sd.metric("stunner_allocations_total", "created");
        assert!(created >= 6.0, "created {created}\n{}", sd.log_text());
    });
}

#[test]
fn ephemeral_auth_udp_and_tcp() {
    within(LIMIT, || {
        let ports = Ports::new();
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let sd = Stunnerd::start(ports, &config(ports, EPHEMERAL_AUTH, &["127.0.0.1"]), &[]);
        let peer = peer_port.to_string();
        for transport in [&[][..], &["-t"][..]] {
            let mut args = vec![
                "-c",
                "-W",
                "s3cr3t",
                "-u",
                "alice",
                "-e",
                "127.0.0.1",
                "-r",
                &peer,
                "-n",
                "100",
                "-m",
                "2",
                "-l",
                "120",
            ];
            args.extend_from_slice(transport);
            assert_clean(
                &uclient(ports.turn, &args, Duration::from_secs(30)),
                "ephemeral",
            );
        }
        // A wrong secret is refused.
        let args = [
            "-c",
            "-W",
            "wrong",
            "-u",
            "mallory",
            "-e",
            "127.0.0.1",
            "-r",
            &peer,
            "-n",
            "5",
        ];
        let bad = uclient(ports.turn, &args, Duration::from_secs(10));
        assert!(
            bad.output.contains("401") || bad.lost.is_none(),
            "{}",
            bad.output
        );
        assert!(sd.metric("stunner_allocations_total", "rejected_auth") >= 1.0);
    });
}

#[test]
fn unrouted_peer_is_denied() {
    within(LIMIT, || {
        let ports = Ports::new();
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        // Only 10.0.0.0/8 is routed: the loopback peer must be refused.
        let sd = Stunnerd::start(ports, &config(ports, STATIC_AUTH, &["10.0.0.0/8"]), &[]);
        for flags in [&[][..], &["-s"][..]] {
            let args = plus(plus(uclient_args(peer_port, 10), &["-c"]), flags);
            let run = uclient(ports.turn, &args, Duration::from_secs(20));
            assert!(run.output.contains("403"), "expected 403:\n{}", run.output);
        }
        assert!(sd.metric("stunner_permission_denied_total", "udp") >= 2.0);
        assert_eq!(
            sd.metric("stunner_cluster_packets_total", ""),
            0.0,
            "nothing relayed"
        );
    });
}
