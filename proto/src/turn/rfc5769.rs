//! RFC 5769 test vectors, typed in from the RFC text (§2.1-2.4), run against the decoder, the integrity
//! and fingerprint checks, and the builder.

use std::net::SocketAddr;

use super::*;

/// Hex as the RFC prints it (spaces, line breaks) to bytes.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    let nibble = |c: u8| (c as char).to_digit(16).unwrap() as u8;
    digits
        .chunks(2)
        .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
        .collect()
}

/// §2.1 Sample Request: Binding with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY and
/// FINGERPRINT (the SOFTWARE and USERNAME padding is 0x20 in the RFC).
const SAMPLE_REQUEST: &str = "
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf";

/// §2.2 Sample IPv4 Response: XOR-MAPPED-ADDRESS 192.0.2.1:32853.
const SAMPLE_IPV4_RESPONSE: &str = "
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96";

/// §2.3 Sample IPv6 Response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const SAMPLE_IPV6_RESPONSE: &str = "
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c";

/// §2.4 Sample Request with Long-Term Authentication: USERNAME, NONCE, REALM, MESSAGE-INTEGRITY.
const SAMPLE_LONG_TERM: &str = "
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";

/// The short-term password of §2.1-2.3.
const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
/// The transaction id of §2.1-2.3.
const TID: TransactionId = TransactionId([
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
]);
/// §2.4 username (U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9).
const LT_USER: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";

#[test]
fn sample_request() {
    let buf = hex(SAMPLE_REQUEST);
    let msg = Message::decode(&buf).unwrap();
    assert_eq!(
        msg.message_type(),
        MessageType::new(Class::Request, Method::Binding)
    );
    assert_eq!(msg.transaction_id(), TID);
    assert_eq!(msg.software(), Some("STUN test client"));
    assert_eq!(msg.username(), Some("evtj:h6vY"));
    assert_eq!(msg.attribute(0x0024), Some(&[0x6e, 0x00, 0x01, 0xff][..]));
    assert!(msg.has_integrity() && msg.has_fingerprint());
    assert_eq!(msg.verify_integrity(PASSWORD), Ok(()));
    assert_eq!(
        msg.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBu"),
        Err(DecodeError::BadIntegrity)
    );
    // PRIORITY (0x0024) is an ICE attribute a TURN server does not understand.
    assert_eq!(
        msg.unknown_comprehension_required().collect::<Vec<_>>(),
        [0x0024]
    );
    let types: Vec<u16> = msg.attributes().map(|a| a.typ).collect();
    assert_eq!(
        types,
        [
            attr::SOFTWARE,
            0x0024,
            0x8029,
            attr::USERNAME,
            attr::MESSAGE_INTEGRITY
        ]
    );
}

#[test]
fn sample_ipv4_response() {
    let buf = hex(SAMPLE_IPV4_RESPONSE);
    let msg = Message::decode(&buf).unwrap();
    assert_eq!(
        msg.message_type(),
        MessageType::new(Class::Success, Method::Binding)
    );
    let addr: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    assert_eq!(msg.xor_mapped_address(), Some(addr));
    assert_eq!(msg.software(), Some("test vector"));
    assert_eq!(msg.verify_integrity(PASSWORD), Ok(()));
    assert!(msg.has_fingerprint());
    assert_eq!(encoded_xor_mapped(addr), &buf[36..48]);
}

#[test]
fn sample_ipv6_response() {
    let buf = hex(SAMPLE_IPV6_RESPONSE);
    let msg = Message::decode(&buf).unwrap();
    let addr: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    assert_eq!(msg.xor_mapped_address(), Some(addr));
    assert_eq!(msg.verify_integrity(PASSWORD), Ok(()));
    assert!(msg.has_fingerprint());
    assert_eq!(encoded_xor_mapped(addr), &buf[36..60]);
}

/// The XOR-MAPPED-ADDRESS TLV our builder writes for `addr` with the §2.2/2.3 transaction id.
fn encoded_xor_mapped(addr: SocketAddr) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Success, Method::Binding),
        TID,
    );
    b.xor_mapped_address(addr);
    b.finish().unwrap();
    out.split_off(HEADER_LEN)
}

#[test]
fn sample_long_term_request() {
    let buf = hex(SAMPLE_LONG_TERM);
    let msg = Message::decode(&buf).unwrap();
    assert_eq!(msg.username(), Some(LT_USER));
    assert_eq!(msg.nonce(), Some("f//499k954d6OL34oL9FSTvy64sA"));
    assert_eq!(msg.realm(), Some("example.org"));
    assert!(!msg.has_fingerprint());
    let key = long_term_key(LT_USER, "example.org", "TheMatrIX");
    assert_eq!(msg.verify_integrity(&key), Ok(()));
    let wrong = long_term_key(LT_USER, "example.org", "thematrix");
    assert_eq!(msg.verify_integrity(&wrong), Err(DecodeError::BadIntegrity));
}

#[test]
fn builder_reproduces_the_long_term_vector_byte_for_byte() {
    let buf = hex(SAMPLE_LONG_TERM);
    let tid = Message::decode(&buf).unwrap().transaction_id();
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(Class::Request, Method::Binding),
        tid,
    );
    b.username(LT_USER)
        .nonce("f//499k954d6OL34oL9FSTvy64sA")
        .realm("example.org");
    b.finish_with_integrity(&long_term_key(LT_USER, "example.org", "TheMatrIX"))
        .unwrap();
    assert_eq!(out, buf);
}

#[test]
fn corrupted_vectors_fail_fingerprint_or_integrity() {
    let mut buf = hex(SAMPLE_REQUEST);
    buf[30] ^= 0x01; // inside SOFTWARE
    assert_eq!(
        Message::decode(&buf).map(|_| ()),
        Err(DecodeError::BadFingerprint)
    );
    let mut buf = hex(SAMPLE_LONG_TERM);
    buf[50] ^= 0x01; // inside NONCE, no FINGERPRINT to catch it
    let msg = Message::decode(&buf).unwrap();
    let key = long_term_key(LT_USER, "example.org", "TheMatrIX");
    assert_eq!(msg.verify_integrity(&key), Err(DecodeError::BadIntegrity));
}
