//! Hostile input: garbage, truncated and oversized datagrams, a bad FINGERPRINT, an unknown
//! comprehension-required attribute (420), broken TCP framing, TCP clients vanishing with an
//! allocation. The server must answer what the RFC says, count the rest, leak nothing and keep
//! serving real clients afterwards.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::*;
use proto::turn::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};

fn binding(tid: u8, fill: impl FnOnce(&mut MessageBuilder<'_>), fingerprint: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Class::Request, Method::Binding),
        TransactionId([tid; 12]),
    );
    fill(&mut b);
    b.fingerprint(fingerprint);
    b.finish().expect("encode");
    buf
}

#[test]
fn hostile_traffic_leaves_the_server_serving() {
    within(Duration::from_secs(60), || {
        let ports = Ports::new();
        let peer_port = free_port();
        let _peer = turn_peer(peer_port);
        let sd = Stunnerd::start(ports, &config(ports, STATIC_AUTH, &["127.0.0.1"]), &[]);
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        udp.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        udp.connect(("127.0.0.1", ports.turn)).expect("connect");

        // Garbage of every size, including an oversized datagram, and truncated STUN.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let valid = binding(1, |_| {}, true);
        for i in 0..3000usize {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed as usize) % 1500;
            let pkt: Vec<u8> = match i % 3 {
                0 => (0..len).map(|j| (seed >> (j % 56)) as u8).collect(),
                1 => valid[..len % valid.len()].to_vec(),
                _ => [&[0x40, 0x01, 0xff, 0xff][..], &valid].concat(),
            };
            let _ = udp.send(&pkt);
        }
        let _ = udp.send(&vec![0u8; 65_000]);
        // A TLS and a DTLS ClientHello record on the UDP port: not STUN, dropped and counted.
        let hello = |head: &[u8]| [head, &[0x01; 60][..]].concat();
        let _ = udp.send(&hello(&[0x16, 0x03, 0x01, 0x00, 0x3c]));
        let _ = udp.send(&hello(&[
            0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x3c,
        ]));

        // Bad FINGERPRINT: silently dropped. Unknown comprehension-required attribute: 420.
        let mut bad_fp = binding(2, |_| {}, true);
        let last = bad_fp.len() - 1;
        bad_fp[last] ^= 0xff;
        udp.send(&bad_fp).expect("send");
        let unknown = binding(
            3,
            |b| {
                b.attribute(0x0033, &[1, 2, 3, 4]);
            },
            false,
        );
        udp.send(&unknown).expect("send");
        let mut buf = [0u8; 1500];
        let resp = loop {
            let n = udp.recv(&mut buf).expect("a 420 answer");
            let msg = Message::decode(&buf[..n]).expect("decodes");
            if msg.transaction_id() == TransactionId([3; 12]) {
                break msg
                    .error_code()
                    .map(|(c, _)| c)
                    .zip(Some(msg.unknown_attributes().collect::<Vec<_>>()));
            }
            assert_ne!(
                msg.transaction_id(),
                TransactionId([2; 12]),
                "bad fingerprint answered"
            );
        };
        assert_eq!(resp, Some((420, vec![0x0033])));

        // Broken TCP framing: the connection is closed, the server stays up.
        let mut tcp = TcpStream::connect(("127.0.0.1", ports.turn)).expect("tcp");
        tcp.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        tcp.write_all(&[0xff; 64]).expect("write");
        assert_eq!(
            tcp.read(&mut buf).unwrap_or(0),
            0,
            "connection closed on bad framing"
        );
        // A TLS ClientHello on the plain TURN-TCP port: closed like any bad framing.
        let mut tcp = TcpStream::connect(("127.0.0.1", ports.turn)).expect("tcp");
        tcp.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        tcp.write_all(&hello(&[0x16, 0x03, 0x01, 0x00, 0x3c]))
            .expect("write");
        let closed = match tcp.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(
            closed,
            "a TLS ClientHello on the TCP port closes the connection"
        );
        // A half frame then a hang-up.
        let mut tcp = TcpStream::connect(("127.0.0.1", ports.turn)).expect("tcp");
        tcp.write_all(&valid[..10]).expect("write");
        drop(tcp);

        // Real clients still work, over UDP and TCP.
        for t in [&[][..], &["-t"][..]] {
            let args = plus(uclient_args(peer_port, 100), &["-c", "-m", "2"]);
            let args = plus(args, t);
            let run = uclient(ports.turn, &args, Duration::from_secs(20));
            assert_eq!(run.lost, Some(0), "{}", run.output);
        }
        assert!(
            sd.metric(
                "stunner_listener_packets_dropped_total",
                "reason=\"malformed\""
            ) >= 2000.0
        );
        // TCP clients are gone: their allocations were released with their connections.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(sd.metric("stunner_listener_connections", "tcp"), 0.0);
        let active = sd.metric("stunner_allocations_active", "");
        let created_tcp = sd.metric("stunner_listener_connections_total", "tcp");
        assert!(created_tcp >= 4.0);
        assert!(
            active <= 4.0,
            "only the UDP allocations remain, got {active}"
        );
    });
}
