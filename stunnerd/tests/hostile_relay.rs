//! Open-relay probe: a table of peer addresses (loopback in its IPv4, IPv6 and IPv4-mapped forms,
//! `0.0.0.0`, the RFC 6890 special-purpose ranges, the server's own listener and relay addresses)
//! × (CreatePermission, ChannelBind, Send indication, ChannelData) × (restricted routes, broad
//! routes `0.0.0.0/0` + `::/0`, explicit loopback routes). Every denied peer that can be listened
//! on is a listening socket on loopback that must receive 0 packets; peers outside loopback are
//! only ever asked for (CreatePermission / ChannelBind, which send nothing) and must be refused. A
//! control peer routed explicitly receives its packets, so the probe can see a delivery.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::probe::{Client, Sink};
use common::*;

const LIMIT: Duration = Duration::from_secs(60);
const PAYLOAD: &[u8] = b"open-relay-probe";

/// A config with one TURN-UDP listener (and a TURN-TCP one on the same port) routed to `endpoints`.
fn start(endpoints: &[&str]) -> Stunnerd {
    let ports = Ports::new();
    Stunnerd::start(ports, &config(ports, STATIC_AUTH, endpoints), &[])
}

fn server(sd: &Stunnerd) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], sd.ports.turn))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// Tries every peer-bound operation towards `peer`; returns how many were accepted (permission,
/// channel bind). Data is sent only when `may_send` (a loopback address we listen on).
fn probe(c: &Client, peer: SocketAddr, channel: u16, may_send: bool) -> usize {
    let accepted = usize::from(c.permit(peer).is_ok()) + usize::from(c.bind(channel, peer).is_ok());
    if may_send {
        for _ in 0..5 {
            c.send_to(peer, PAYLOAD);
            c.send_channel(channel, PAYLOAD);
        }
    }
    accepted
}

#[test]
fn no_packet_reaches_a_denied_peer_under_any_route() {
    within(LIMIT, || {
        // Listening sinks on loopback for every denied class we can listen on.
        let v4 = Sink::bind("127.0.0.1:0");
        let v4_other = Sink::bind("127.0.0.2:0");
        let any = Sink::bind("0.0.0.0:0");
        let v6 = std::net::UdpSocket::bind("[::1]:0")
            .ok()
            .map(|_| Sink::bind("[::1]:0"));
        let control = Sink::bind("127.0.0.1:0");
        let control_route = format!("127.0.0.1:<{p}-{p}>", p = control.addr.port());
        let zero = addr(&format!("0.0.0.0:{}", any.addr.port()));
        let mapped = addr(&format!("[::ffff:127.0.0.1]:{}", v4.addr.port()));
        let outside = [
            "169.254.169.254:80",
            "224.0.0.1:5000",
            "239.255.255.250:1900",
            "255.255.255.255:9",
            "240.0.0.1:9",
            "0.1.2.3:9",
        ];
        for routes in [
            vec!["10.0.0.0/8", control_route.as_str()],
            vec!["0.0.0.0/0", "::/0", control_route.as_str()],
        ] {
            let sd = start(&routes);
            let c = Client::allocate(server(&sd), "u", "p").expect("allocate");
            let mut channel = 0x4000;
            let mut next = || {
                channel += 1;
                channel
            };
            let mut accepted = 0;
            for peer in [v4.addr, v4_other.addr, zero, mapped] {
                accepted += probe(&c, peer, next(), true);
            }
            if let Some(v6) = &v6 {
                accepted += probe(&c, v6.addr, next(), true);
            }
            for peer in outside {
                accepted += probe(&c, addr(peer), next(), false);
            }
            // The server's own addresses: its listener and its relay.
            accepted += probe(&c, server(&sd), next(), true);
            accepted += probe(&c, c.relay, next(), true);
            assert_eq!(accepted, 0, "routes {routes:?}: a denied peer was accepted");
            // The control peer is reachable: the probe would see a delivery.
            assert_eq!(probe(&c, control.addr, next(), true), 2, "control accepted");
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                control.count() >= 10,
                "control peer got the probe's packets"
            );
            for (sink, what) in [
                (&v4, "127.0.0.1"),
                (&v4_other, "127.0.0.2"),
                (&any, "0.0.0.0"),
            ] {
                assert_eq!(sink.count(), 0, "routes {routes:?}: packets reached {what}");
            }
            if let Some(v6) = &v6 {
                assert_eq!(v6.count(), 0, "routes {routes:?}: packets reached ::1");
            }
            assert!(sd.metric("stunner_permission_denied_total", "") > 0.0);
        }
    });
}

#[test]
fn explicit_loopback_routes_still_never_reach_the_servers_own_addresses() {
    within(LIMIT, || {
        let sd = start(&["127.0.0.0/8"]);
        let a = Client::allocate(server(&sd), "u", "p").expect("allocate a");
        let b = Client::allocate(server(&sd), "u", "p").expect("allocate b");
        // B lets A's relay in; A tries to reach B's relay (a relay loop) and the listener.
        b.permit(a.relay).expect("b permits a's relay IP");
        assert!(
            a.permit(b.relay).is_ok(),
            "same IP as a legit loopback peer: permitted per IP"
        );
        assert_eq!(a.bind(0x4001, b.relay), Err(403), "channel to own relay");
        assert_eq!(
            a.bind(0x4002, server(&sd)),
            Err(403),
            "channel to own listener"
        );
        for _ in 0..20 {
            a.send_to(b.relay, PAYLOAD);
            a.send_to(server(&sd), PAYLOAD);
        }
        assert!(
            b.received(Duration::from_millis(500)).is_empty(),
            "relay loop"
        );
        // Loopback peers that are not the server's own are allowed by the explicit route.
        let echo = testkit::peer::EchoPeer::start();
        a.bind(0x4003, echo.addr).expect("explicit loopback peer");
        assert_eq!(a.echo(0x4003, 10), 10, "legit loopback peer served");
        assert!(sd.metric("stunner_listener_packets_dropped_total", "filtered") >= 40.0);
    });
}
