//! Builder → decoder round trips of every attribute, and the structural rules of the decoder
//! (MESSAGE-INTEGRITY placement, FINGERPRINT last, lengths).

use std::net::SocketAddr;

use super::*;

const TID: TransactionId = TransactionId([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

fn v4() -> SocketAddr {
    "203.0.113.7:49152".parse().unwrap()
}

fn v6() -> SocketAddr {
    "[2001:db8::1]:3478".parse().unwrap()
}

fn build(typ: MessageType, f: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(&mut out, typ, TID);
    f(&mut b);
    b.finish().unwrap();
    out
}

#[test]
fn every_attribute_round_trips() {
    let typ = MessageType::new(Class::Success, Method::Allocate);
    for (relayed, mapped) in [(v4(), v6()), (v6(), v4())] {
        let buf = build(typ, |b| {
            b.xor_mapped_address(mapped)
                .xor_relayed_address(relayed)
                .mapped_address(mapped);
            b.xor_peer_address(v4()).xor_peer_address(v6());
            b.username("alice")
                .realm("stunner.l7mp.io")
                .nonce("n0nce")
                .software("stunner-rs");
            b.lifetime(600)
                .requested_transport(attr::TRANSPORT_UDP)
                .data(b"hello")
                .channel_number(0x4001);
            b.error_code(438, "Stale Nonce")
                .unknown_attributes(&[0x0024, 0x7777, 0x0001]);
            b.even_port(true).reservation_token([9; 8]).dont_fragment();
            b.requested_address_family(Family::V6)
                .additional_address_family(Family::V4);
        });
        let m = Message::decode(&buf).unwrap();
        assert_eq!((m.message_type(), m.transaction_id()), (typ, TID));
        assert_eq!(
            (m.xor_mapped_address(), m.xor_relayed_address()),
            (Some(mapped), Some(relayed))
        );
        assert_eq!(m.mapped_address(), Some(mapped));
        assert_eq!(m.xor_peer_addresses().collect::<Vec<_>>(), [v4(), v6()]);
        assert_eq!(m.xor_peer_address(), Some(v4()));
        assert_eq!(
            (m.username(), m.realm()),
            (Some("alice"), Some("stunner.l7mp.io"))
        );
        assert_eq!(
            (m.nonce(), m.software()),
            (Some("n0nce"), Some("stunner-rs"))
        );
        assert_eq!(
            (m.lifetime(), m.requested_transport()),
            (Some(600), Some(17))
        );
        assert_eq!(
            (m.data(), m.channel_number()),
            (Some(&b"hello"[..]), Some(0x4001))
        );
        assert_eq!(m.error_code(), Some((438, "Stale Nonce")));
        assert_eq!(
            m.unknown_attributes().collect::<Vec<_>>(),
            [0x0024, 0x7777, 0x0001]
        );
        assert_eq!(
            (m.even_port(), m.reservation_token()),
            (Some(true), Some([9; 8]))
        );
        assert!(m.dont_fragment());
        assert_eq!(m.requested_address_family(), Some(Family::V6));
        assert_eq!(m.additional_address_family(), Some(Family::V4));
        assert_eq!(m.unknown_comprehension_required().count(), 0);
        assert!(!m.has_integrity() && !m.has_fingerprint());
    }
}

#[test]
fn absent_attributes_are_none() {
    let buf = build(MessageType::new(Class::Request, Method::Binding), |_| {});
    assert_eq!(buf.len(), HEADER_LEN);
    let m = Message::decode(&buf).unwrap();
    assert!(m.username().is_none() && m.lifetime().is_none() && m.data().is_none());
    assert!(m.error_code().is_none() && m.even_port().is_none() && !m.dont_fragment());
    assert_eq!(
        m.xor_peer_addresses().count() + m.unknown_attributes().count(),
        0
    );
    assert_eq!(m.verify_integrity(b"k"), Err(DecodeError::NoIntegrity));
}

#[test]
fn integrity_and_fingerprint_round_trip() {
    let mut out = Vec::new();
    let key = long_term_key("user", "realm", "pass");
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Indication, Method::Send),
        TID,
    );
    b.xor_peer_address(v4()).data(&[0xAB; 13]).fingerprint(true);
    b.finish_with_integrity(&key).unwrap();
    let m = Message::decode(&out).unwrap();
    assert!(m.has_integrity() && m.has_fingerprint());
    assert_eq!(m.verify_integrity(&key), Ok(()));
    assert_eq!(m.verify_integrity(b"other"), Err(DecodeError::BadIntegrity));
    assert_eq!(m.data(), Some(&[0xAB; 13][..]));
    let types: Vec<u16> = m.attributes().map(|a| a.typ).collect();
    assert_eq!(
        types,
        [attr::XOR_PEER_ADDRESS, attr::DATA, attr::MESSAGE_INTEGRITY]
    );
}

#[test]
fn attributes_after_integrity_are_ignored() {
    let key = b"secret";
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Request, Method::Refresh),
        TID,
    );
    b.lifetime(0);
    b.finish_with_integrity(key).unwrap();
    // Append a (malformed) LIFETIME and a DATA after MESSAGE-INTEGRITY and fix the length.
    out.extend_from_slice(&[0x00, 0x0D, 0x00, 0x00, 0x00, 0x13, 0x00, 0x04, 1, 2, 3, 4]);
    let len = (out.len() - HEADER_LEN) as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    let m = Message::decode(&out).unwrap();
    assert_eq!((m.lifetime(), m.data()), (Some(0), None));
    assert_eq!(m.verify_integrity(key), Ok(()));
}

#[test]
fn structural_errors() {
    let good = build(MessageType::new(Class::Request, Method::Allocate), |b| {
        b.requested_transport(17).software("x");
    });
    assert_eq!(
        Message::decode(&good[..good.len() - 4]).map(|_| ()),
        Err(DecodeError::TooShort)
    );
    let mut long = good.clone();
    long.extend_from_slice(&[0; 4]);
    assert_eq!(
        Message::decode(&long).map(|_| ()),
        Err(DecodeError::BadLength)
    );
    let mut overrun = good.clone();
    overrun[23] = 13; // REQUESTED-TRANSPORT claims 13 bytes, past the end
    assert!(matches!(
        Message::decode(&overrun),
        Err(DecodeError::TruncatedAttribute(0x0019))
    ));
    let mut bad_value = good.clone();
    bad_value[23] = 8;
    bad_value[31] = 0;
    assert!(matches!(
        Message::decode(&bad_value),
        Err(DecodeError::InvalidAttribute { typ: 0x0019, .. })
    ));
    let mut fp_first = build(MessageType::new(Class::Request, Method::Binding), |b| {
        b.fingerprint(true);
    });
    fp_first.extend_from_slice(&[0x80, 0x22, 0x00, 0x00]);
    fp_first[3] += 4;
    assert_eq!(
        Message::decode(&fp_first).map(|_| ()),
        Err(DecodeError::FingerprintNotLast)
    );
}

#[test]
fn unknown_attributes_are_reported_and_kept() {
    let buf = build(MessageType::new(Class::Request, Method::Allocate), |b| {
        b.attribute(0x0030, b"abc")
            .attribute(0x8030, b"")
            .attribute(0x0031, &[1; 4]);
    });
    let m = Message::decode(&buf).unwrap();
    assert_eq!(
        m.unknown_comprehension_required().collect::<Vec<_>>(),
        [0x0030, 0x0031]
    );
    assert_eq!(m.attribute(0x0030), Some(&b"abc"[..]));
    assert_eq!(m.attribute(0x8030), Some(&b""[..]));
}

#[test]
fn oversized_messages_are_refused_and_reuse_does_not_leak() {
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Indication, Method::Data),
        TID,
    );
    b.data(&vec![0; 70_000]).lifetime(1);
    assert_eq!(b.finish(), Err(EncodeError::TooLarge));
    assert!(out.is_empty());
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Indication, Method::Data),
        TID,
    );
    // Body limit 65532: DATA header 4 + value + padding + FINGERPRINT 8.
    b.data(&vec![0; 65_521]).fingerprint(true);
    assert_eq!(b.finish(), Err(EncodeError::TooLarge));
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Indication, Method::Data),
        TID,
    );
    b.data(&vec![7; 65_520]).fingerprint(true);
    assert_eq!(b.finish(), Ok(()));
    assert_eq!(
        Message::decode(&out).unwrap().data().map(<[u8]>::len),
        Some(65_520)
    );
    let cap = out.capacity();
    let buf = build(MessageType::new(Class::Request, Method::Binding), |_| {});
    MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Request, Method::Binding),
        TID,
    )
    .finish()
    .unwrap();
    assert_eq!((out.as_slice(), out.capacity()), (buf.as_slice(), cap));
}

#[test]
fn hot_paths_reuse_the_output_buffer() {
    let mut out = Vec::with_capacity(1500);
    let (ptr, cap) = (out.as_ptr(), out.capacity());
    let payload = [0x5A; 1200];
    for i in 0..100u16 {
        encode_channel_data(
            &mut out,
            0x4000 + i,
            &payload[..usize::from(i) * 12],
            i % 2 == 0,
        )
        .unwrap();
        let cd = ChannelData::decode(&out).unwrap();
        assert_eq!(cd.data.len(), usize::from(i) * 12);
        let typ = MessageType::new(Class::Indication, Method::Data);
        let mut b = MessageBuilder::new(&mut out, typ, TID);
        b.xor_peer_address(v6())
            .data(&payload[..usize::from(i) * 12]);
        b.finish().unwrap();
        let m = Message::decode(&out).unwrap();
        assert_eq!(
            (m.xor_peer_address(), m.data().map(<[u8]>::len)),
            (Some(v6()), Some(usize::from(i) * 12))
        );
    }
    assert_eq!(
        (out.as_ptr(), out.capacity()),
        (ptr, cap),
        "the Vec was never reallocated"
    );
}
