//! Shared by the cargo-fuzz target (`fuzz_targets/decode.rs`) and the property tests
//! (`proto/tests/turn_props.rs`): feeds one input to every `proto::turn` decoder and getter and asserts
//! the invariants that must hold for any input. Any panic here is a bug in the codec.

use std::hint::black_box;

use proto::turn::{
    ChannelData, Framing, Header, Message, MessageBuilder, attr, classify, stream_frame_len,
};

/// Runs every decoder on `buf`; panics only when an invariant is violated.
pub(crate) fn exercise(buf: &[u8]) {
    let framing = classify(buf);
    match stream_frame_len(buf) {
        Ok(Some(n)) => assert!(n >= 4 && n % 4 == 0, "frame length {n}"),
        Ok(None) => assert!(buf.len() < 8, "undecided with {} bytes", buf.len()),
        Err(_) => assert_ne!(framing, Framing::ChannelData),
    }
    if let Ok(cd) = ChannelData::decode(buf) {
        assert_eq!(framing, Framing::ChannelData);
        assert!(cd.data.len() + 4 <= buf.len() && (0x4000..=0x7FFF).contains(&cd.channel));
    }
    let header = Header::decode(buf);
    if let Ok(msg) = Message::decode(buf) {
        assert_eq!(framing, Framing::Stun);
        assert_eq!(header, Ok(msg.header()));
        assert_eq!(stream_frame_len(buf), Ok(Some(buf.len())));
        getters(&msg);
        rebuild(&msg);
    }
}

/// Calls every getter of a decoded message.
fn getters(msg: &Message<'_>) {
    black_box((msg.message_type(), msg.transaction_id(), msg.as_bytes()));
    black_box((msg.username(), msg.realm(), msg.nonce(), msg.software()));
    black_box((
        msg.lifetime(),
        msg.requested_transport(),
        msg.channel_number(),
        msg.data(),
    ));
    black_box((
        msg.error_code(),
        msg.even_port(),
        msg.reservation_token(),
        msg.dont_fragment(),
    ));
    black_box((
        msg.xor_mapped_address(),
        msg.xor_relayed_address(),
        msg.mapped_address(),
    ));
    black_box((
        msg.requested_address_family(),
        msg.additional_address_family(),
    ));
    black_box((
        msg.has_integrity(),
        msg.has_fingerprint(),
        msg.verify_integrity(b"key").is_ok(),
    ));
    assert_eq!(msg.xor_peer_addresses().next(), msg.xor_peer_address());
    black_box(msg.xor_peer_addresses().count() + msg.unknown_attributes().count());
    for typ in msg.unknown_comprehension_required() {
        assert!(attr::is_comprehension_required(typ) && !attr::is_known(typ));
    }
    for a in msg.attributes() {
        assert!(msg.attribute(a.typ).is_some());
    }
}

/// Re-encodes the attributes of a decoded message: the copy must decode to the same attributes.
fn rebuild(msg: &Message<'_>) {
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(&mut out, msg.message_type(), msg.transaction_id());
    let attrs = msg
        .attributes()
        .filter(|a| a.typ != attr::MESSAGE_INTEGRITY);
    attrs.clone().for_each(|a| {
        b.attribute(a.typ, a.value);
    });
    b.fingerprint(msg.has_fingerprint());
    let sealed = if msg.has_integrity() {
        b.finish_with_integrity(b"key")
    } else {
        b.finish()
    };
    sealed.expect("a copy is never larger than the original");
    let copy = Message::decode(&out).expect("a re-encoded message decodes");
    let again = copy
        .attributes()
        .filter(|a| a.typ != attr::MESSAGE_INTEGRITY);
    assert!(again.eq(attrs));
    assert_eq!(copy.has_integrity(), msg.has_integrity());
    if copy.has_integrity() {
        assert_eq!(copy.verify_integrity(b"key"), Ok(()));
    }
}
