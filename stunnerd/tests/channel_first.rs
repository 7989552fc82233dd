//! The first packets right after a ChannelBind success: a ChannelData the client sends at once must
//! reach the peer, and the peer's answer must come back as ChannelData (never lost, never a Data
//! indication). Repeated over many fresh allocations spread over every worker and SO_REUSEPORT
//! socket, with no pause between the allocation, the bind and the first packet.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use testkit::peer::EchoPeer;
use testkit::turn::{RawAlloc, Received};

/// Fresh allocations tried per test.
const ROUNDS: usize = 50;
const CHANNEL: u16 = 0x4000;
/// How long one first packet may take.
const WAIT: Duration = Duration::from_millis(500);

fn start() -> Stunnerd {
    let ports = Ports::new();
    let yaml = config(ports, STATIC_AUTH, &["127.0.0.1"]);
    Stunnerd::start(ports, &yaml, &["--threads", "2", "--udp-thread-num", "4"])
}

fn turn_addr(sd: &Stunnerd) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], sd.ports.turn))
}

#[test]
fn first_channel_data_after_bind_is_echoed_as_channel_data() {
    within(Duration::from_secs(120), || {
        let sd = start();
        let peer = EchoPeer::start();
        let (mut failures, mut held) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let alloc = RawAlloc::new(turn_addr(&sd), "u", "p");
            alloc.channel_bind(CHANNEL, peer.addr);
            let payload = format!("first-{round}").into_bytes();
            alloc.send_channel(CHANNEL, &payload);
            let got = alloc.receive(WAIT);
            if got != Received::Channel(CHANNEL, payload) {
                failures.push((round, got));
            }
            // Held so that no later client socket reuses the port of a live allocation.
            held.push(alloc);
        }
        let send_failed = sd.metric("stunner_listener_packets_dropped_total", "send_failed");
        assert!(
            failures.is_empty(),
            "{} of {ROUNDS} first packets not echoed as ChannelData (send failures counted: \
             {send_failed}): {failures:?}",
            failures.len(),
        );
        assert_eq!(send_failed, 0.0, "no send failure counted");
    });
}

#[test]
fn peer_packet_right_after_bind_arrives_as_channel_data() {
    within(Duration::from_secs(120), || {
        let sd = start();
        let peer = UdpSocket::bind("127.0.0.1:0").expect("bind peer");
        let peer_addr = peer.local_addr().expect("addr");
        let (mut failures, mut held) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let alloc = RawAlloc::new(turn_addr(&sd), "u", "p");
            alloc.channel_bind(CHANNEL, peer_addr);
            let payload = format!("from-peer-{round}").into_bytes();
            peer.send_to(&payload, alloc.relay).expect("peer send");
            let got = alloc.receive(WAIT);
            if got != Received::Channel(CHANNEL, payload) {
                failures.push((round, got));
            }
            // Held so that no later client socket reuses the port of a live allocation.
            held.push(alloc);
        }
        assert!(
            failures.is_empty(),
            "{} of {ROUNDS} peer packets not delivered as ChannelData: {failures:?}",
            failures.len()
        );
    });
}
