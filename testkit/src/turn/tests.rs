//! The client against a tiny in-process fake TURN server: it challenges, checks integrity with
//! the one password it knows, confirms ChannelBind and Refresh, and reflects ChannelData back
//! (standing in for a relay plus an echo peer).

use super::*;
use crate::peer::UdpResponder;

const REALM: &str = "testkit";
const PASS: &str = "pass";
const RELAY: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 49152);

/// The fake server on a loopback port; stopped and joined when the value drops.
fn fake_turn() -> UdpResponder {
    UdpResponder::start(|datagram| {
        if ChannelData::decode(datagram).is_ok() {
            return Some(datagram.to_vec());
        }
        let m = Message::decode(datagram).ok()?;
        let mut out = Vec::new();
        answer(&m, &mut out);
        Some(out)
    })
}

/// A 401 challenge unless `m` carries integrity under `PASS`; then a success (with the relay
/// address for an Allocate).
fn answer(m: &Message<'_>, out: &mut Vec<u8>) {
    let method = m.message_type().method;
    let key = m.username().map(|u| long_term_key(u, REALM, PASS));
    let Some(key) = key.filter(|k| m.verify_integrity(k).is_ok()) else {
        let typ = MessageType::new(Class::Error, method);
        let mut b = MessageBuilder::new(out, typ, m.transaction_id());
        b.error_code(401, "Unauthorized").realm(REALM).nonce("n0");
        b.finish().expect("encode");
        return;
    };
    let typ = MessageType::new(Class::Success, method);
    let mut b = MessageBuilder::new(out, typ, m.transaction_id());
    if method == Method::Allocate {
        b.xor_relayed_address(RELAY);
    }
    b.finish_with_integrity(&key).expect("encode");
}

#[test]
fn allocates_binds_pings_and_releases() {
    let server = fake_turn();
    assert!(challenged(server.addr));
    let alloc = RawAlloc::new(server.addr, "user", PASS);
    assert_eq!(alloc.relay, RELAY);
    alloc.channel_bind(0x4000, RELAY);
    assert_eq!(alloc.ping(0x4000, 3), 3);
    alloc.send_channel(0x4001, b"hello");
    assert_eq!(
        alloc.receive(Duration::from_secs(1)),
        Received::Channel(0x4001, b"hello".to_vec())
    );
    assert_eq!(alloc.receive(Duration::from_millis(50)), Received::Nothing);
    alloc.release();
}

#[test]
#[should_panic(expected = "Allocate refused")]
fn wrong_password_is_refused() {
    let server = fake_turn();
    let _ = RawAlloc::new(server.addr, "user", "wrong");
}
