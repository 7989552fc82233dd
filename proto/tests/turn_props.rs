//! Property tests of `proto::turn` (run in CI; the cargo-fuzz target in `proto/fuzz` runs the same
//! checks from `proto/fuzz/exercise.rs`): no decoder panics on arbitrary bytes, on STUN-looking soup or on
//! mutated valid messages, and builder → decoder round trips preserve every attribute.

#[path = "../fuzz/exercise.rs"]
mod exercise;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use proptest::sample::Index;
use proto::turn::*;

const CASES: u32 = 10_000;

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((Ipv4Addr::from(ip), port))),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port))),
    ]
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::V4), Just(Family::V6)]
}

fn message_type() -> impl Strategy<Value = MessageType> {
    let class = prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::Success),
        Just(Class::Error)
    ];
    (class, 0u16..0x1000).prop_map(|(class, m)| MessageType::new(class, Method::from_code(m)))
}

/// Every attribute the builder knows, each optional, plus unknown ones and trailer choices.
#[derive(Debug, Clone)]
struct Spec {
    typ: MessageType,
    tid: [u8; 12],
    mapped: Option<SocketAddr>,
    xor_mapped: Option<SocketAddr>,
    relayed: Option<SocketAddr>,
    peers: Vec<SocketAddr>,
    texts: [Option<String>; 4], // username, realm, nonce, software
    lifetime: Option<u32>,
    transport: Option<u8>,
    data: Option<Vec<u8>>,
    channel: Option<u16>,
    error: Option<(u16, String)>,
    unknown_list: Option<Vec<u16>>,
    even_port: Option<bool>,
    token: Option<[u8; 8]>,
    dont_fragment: bool,
    families: (Option<Family>, Option<Family>),
    extra: Vec<(u16, Vec<u8>)>,
    key: Option<Vec<u8>>,
    fingerprint: bool,
}

/// Short strings mixing ASCII and multi-byte characters (cheaper to generate than a regex).
fn string() -> impl Strategy<Value = String> {
    let ch = prop_oneof![4 => (0x20u8..0x7F).prop_map(char::from), 1 => any::<char>()];
    proptest::collection::vec(ch, 0..24).prop_map(String::from_iter)
}

fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(string())
}

/// Types the codec does not know (so their values are free-form).
fn unknown_type() -> impl Strategy<Value = u16> {
    any::<u16>().prop_filter("unknown", |t| !attr::is_known(*t))
}

fn spec() -> impl Strategy<Value = Spec> {
    let addrs = (
        proptest::option::of(socket_addr()),
        proptest::option::of(socket_addr()),
        proptest::option::of(socket_addr()),
        proptest::collection::vec(socket_addr(), 0..4),
    );
    let scalars = (
        [text(), text(), text(), text()],
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..100)),
        proptest::option::of(any::<u16>()),
        proptest::option::of((300u16..700, string())),
        proptest::option::of(proptest::collection::vec(any::<u16>(), 0..5)),
    );
    let misc = (
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<[u8; 8]>()),
        any::<bool>(),
        (
            proptest::option::of(family()),
            proptest::option::of(family()),
        ),
        proptest::collection::vec(
            (
                unknown_type(),
                proptest::collection::vec(any::<u8>(), 0..12),
            ),
            0..3,
        ),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        any::<bool>(),
    );
    (message_type(), any::<[u8; 12]>(), addrs, scalars, misc).prop_map(|(typ, tid, a, s, m)| Spec {
        typ,
        tid,
        mapped: a.0,
        xor_mapped: a.1,
        relayed: a.2,
        peers: a.3,
        texts: s.0,
        lifetime: s.1,
        transport: s.2,
        data: s.3,
        channel: s.4,
        error: s.5,
        unknown_list: s.6,
        even_port: m.0,
        token: m.1,
        dont_fragment: m.2,
        families: m.3,
        extra: m.4,
        key: m.5,
        fingerprint: m.6,
    })
}

/// Encodes a spec with the builder.
fn encode(spec: &Spec) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(&mut out, spec.typ, TransactionId(spec.tid));
    spec.mapped.map(|a| b.mapped_address(a));
    spec.xor_mapped.map(|a| b.xor_mapped_address(a));
    spec.relayed.map(|a| b.xor_relayed_address(a));
    for a in &spec.peers {
        b.xor_peer_address(*a);
    }
    let [user, realm, nonce, software] = &spec.texts;
    user.as_deref().map(|v| b.username(v));
    realm.as_deref().map(|v| b.realm(v));
    nonce.as_deref().map(|v| b.nonce(v));
    software.as_deref().map(|v| b.software(v));
    spec.lifetime.map(|v| b.lifetime(v));
    spec.transport.map(|v| b.requested_transport(v));
    spec.data.as_deref().map(|v| b.data(v));
    spec.channel.map(|v| b.channel_number(v));
    spec.error.as_ref().map(|(c, r)| b.error_code(*c, r));
    spec.unknown_list
        .as_deref()
        .map(|v| b.unknown_attributes(v));
    spec.even_port.map(|v| b.even_port(v));
    spec.token.map(|v| b.reservation_token(v));
    if spec.dont_fragment {
        b.dont_fragment();
    }
    spec.families.0.map(|f| b.requested_address_family(f));
    spec.families.1.map(|f| b.additional_address_family(f));
    for (t, v) in &spec.extra {
        b.attribute(*t, v);
    }
    b.fingerprint(spec.fingerprint);
    match &spec.key {
        Some(key) => b.finish_with_integrity(key),
        None => b.finish(),
    }
    .expect("small messages fit");
    out
}

/// Asserts that `msg` carries exactly what `spec` put in.
fn check(spec: &Spec, msg: &Message<'_>) {
    assert_eq!(
        (msg.message_type(), msg.transaction_id()),
        (spec.typ, TransactionId(spec.tid))
    );
    assert_eq!(msg.mapped_address(), spec.mapped);
    assert_eq!(msg.xor_mapped_address(), spec.xor_mapped);
    assert_eq!(msg.xor_relayed_address(), spec.relayed);
    assert_eq!(msg.xor_peer_addresses().collect::<Vec<_>>(), spec.peers);
    let texts = [msg.username(), msg.realm(), msg.nonce(), msg.software()];
    assert_eq!(texts, spec.texts.each_ref().map(|t| t.as_deref()));
    assert_eq!(
        (msg.lifetime(), msg.requested_transport()),
        (spec.lifetime, spec.transport)
    );
    assert_eq!(
        (msg.data(), msg.channel_number()),
        (spec.data.as_deref(), spec.channel)
    );
    assert_eq!(
        msg.error_code(),
        spec.error.as_ref().map(|(c, r)| (*c, r.as_str()))
    );
    let unknown: Vec<u16> = msg.unknown_attributes().collect();
    assert_eq!(unknown, spec.unknown_list.clone().unwrap_or_default());
    assert_eq!(
        (msg.even_port(), msg.reservation_token()),
        (spec.even_port, spec.token)
    );
    assert_eq!(msg.dont_fragment(), spec.dont_fragment);
    assert_eq!(
        (
            msg.requested_address_family(),
            msg.additional_address_family()
        ),
        spec.families
    );
    let required: Vec<u16> = spec
        .extra
        .iter()
        .map(|e| e.0)
        .filter(|t| *t < 0x8000)
        .collect();
    assert_eq!(
        msg.unknown_comprehension_required().collect::<Vec<_>>(),
        required
    );
    assert_eq!(
        (msg.has_integrity(), msg.has_fingerprint()),
        (spec.key.is_some(), spec.fingerprint)
    );
    if let Some(key) = &spec.key {
        assert_eq!(msg.verify_integrity(key), Ok(()));
    }
}

/// Byte edits applied to a valid message.
#[derive(Debug, Clone)]
enum Edit {
    Xor(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    /// Set the header length to the buffer's (so the TLV walk runs on the edited body).
    FixLength,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..).prop_map(|(i, x)| Edit::Xor(i, x)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..9)).prop_map(|(i, v)| Edit::Insert(i, v)),
        2 => Just(Edit::FixLength),
    ]
}

fn apply(buf: &mut Vec<u8>, edit: &Edit) {
    match edit {
        Edit::Xor(i, x) if !buf.is_empty() => {
            let i = i.index(buf.len());
            buf[i] ^= x;
        }
        Edit::Truncate(i) => buf.truncate(i.index(buf.len() + 1)),
        Edit::Insert(i, v) => {
            let at = i.index(buf.len() + 1);
            buf.splice(at..at, v.iter().copied());
        }
        Edit::FixLength if buf.len() >= 20 => {
            let len = u16::try_from(buf.len() - 20).unwrap_or(u16::MAX);
            buf[2..4].copy_from_slice(&len.to_be_bytes());
        }
        _ => {}
    }
}

/// A STUN-looking header (valid cookie, length = body) followed by random bytes, which reaches the TLV walk.
fn stun_soup() -> impl Strategy<Value = Vec<u8>> {
    (
        0u16..0x4000,
        any::<[u8; 12]>(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(t, tid, words)| {
            let mut buf = t.to_be_bytes().to_vec();
            let body: Vec<u8> = words
                .iter()
                .flat_map(|w| [0x00, w & 0x3F, 0x00, w >> 6])
                .collect();
            buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
            buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
            buf.extend_from_slice(&tid);
            buf.extend_from_slice(&body);
            buf
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..160)) {
        exercise::exercise(&buf);
    }

    #[test]
    fn stun_soup_never_panics(buf in stun_soup()) {
        exercise::exercise(&buf);
    }

    #[test]
    fn builder_round_trips(spec in spec()) {
        let buf = encode(&spec);
        let msg = Message::decode(&buf).expect("a built message decodes");
        check(&spec, &msg);
        exercise::exercise(&buf);
    }

    #[test]
    fn mutated_messages_never_panic(spec in spec(), edits in proptest::collection::vec(edit(), 1..5)) {
        let mut buf = encode(&spec);
        for e in &edits {
            apply(&mut buf, e);
        }
        exercise::exercise(&buf);
    }

    #[test]
    fn channel_data_round_trips(channel in 0x4000u16..=0x7FFF, data in proptest::collection::vec(any::<u8>(), 0..200), pad: bool) {
        let mut out = Vec::new();
        encode_channel_data(&mut out, channel, &data, pad).unwrap();
        prop_assert_eq!(ChannelData::decode(&out), Ok(ChannelData { channel, data: &data }));
        prop_assert_eq!(classify(&out), Framing::ChannelData);
        if pad {
            prop_assert_eq!(stream_frame_len(&out), Ok(Some(out.len())));
        }
        exercise::exercise(&out);
    }

}

proptest! {
    // Each case builds up to three messages: fewer cases for the same time budget.
    #![proptest_config(ProptestConfig::with_cases(CASES / 4))]

    #[test]
    fn stream_framing_splits_concatenated_frames(specs in proptest::collection::vec((spec(), any::<bool>()), 1..4), cut: Index) {
        let mut stream = Vec::new();
        let mut lens = Vec::new();
        for (spec, as_channel) in &specs {
            let frame = if *as_channel {
                let mut out = Vec::new();
                encode_channel_data(&mut out, 0x4000 | spec.tid[0] as u16, spec.data.as_deref().unwrap_or_default(), true).unwrap();
                out
            } else {
                encode(spec)
            };
            lens.push(frame.len());
            stream.extend_from_slice(&frame);
        }
        let mut rest = &stream[..];
        for len in lens {
            let partial = &rest[..cut.index(len)];
            prop_assert!(matches!(stream_frame_len(partial), Ok(None) | Ok(Some(_))));
            if let Ok(Some(n)) = stream_frame_len(partial) { prop_assert_eq!(n, len); }
            prop_assert_eq!(stream_frame_len(rest), Ok(Some(len)));
            rest = &rest[len..];
        }
        prop_assert_eq!(stream_frame_len(rest), Ok(None));
    }
}
