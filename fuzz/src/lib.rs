//! The fuzz targets, one function per decoder of untrusted bytes, shared by the libFuzzer binaries
//! (`fuzz_targets/`, nightly + cargo-fuzz) and the stable-toolchain mutation loop
//! (`src/bin/stable.rs`). Each must return normally for every input; a panic is a finding.

use proto::config::StunnerConfig;
use proto::turn::{ChannelData, Message, classify, stream_frame_len};

/// STUN/TURN message decoding and every attribute accessor the engine uses.
pub fn stun(data: &[u8]) {
    let _ = classify(data);
    let _ = stream_frame_len(data);
    let Ok(m) = Message::decode(data) else {
        return;
    };
    let _ = (m.message_type(), m.transaction_id(), m.has_integrity());
    let _ = (m.username(), m.realm(), m.nonce(), m.error_code());
    let _ = (m.xor_peer_address(), m.xor_relayed_address(), m.data());
    let _ = (m.channel_number(), m.lifetime(), m.requested_transport());
    let _ = (
        m.even_port(),
        m.reservation_token(),
        m.requested_address_family(),
    );
    let _ = m.additional_address_family();
    let _ = m.xor_peer_addresses().count();
    let _ = m.unknown_comprehension_required().count();
    let _ = m.verify_integrity(&[7; 16]);
}

/// ChannelData framing (datagram and stream forms).
pub fn channel_data(data: &[u8]) {
    let _ = ChannelData::decode(data);
    let _ = stream_frame_len(data);
}

/// A sequence of client/peer datagrams (each prefixed by a 1-byte length) through one engine shard.
pub fn engine(data: &[u8]) {
    let mut rig = stunnerd::fuzzing::EngineRig::default();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        rig.feed(&tail[..n]);
        rest = &tail[n..];
    }
}

/// The stunnerd config parser (YAML/JSON, environment expansion off) and validation.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut c) = StunnerConfig::parse_remote(text) {
        let _ = c.validate();
        let _ = c.to_json();
    }
}

/// CDS answers and WebSocket frames.
pub fn cds(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        stunnerd::fuzzing::cds_message(text);
    }
}

/// DTLS record parsing and the stateless ClientHello path (cookie check, HelloVerifyRequest).
pub fn dtls_demux(data: &[u8]) {
    stunnerd::fuzzing::dtls_datagram(data);
}

/// The admin API's drain query parsing.
pub fn admin_query(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        stunnerd::fuzzing::admin_query(text);
    }
}

/// Every target by name, for the stable driver.
pub const TARGETS: [(&str, fn(&[u8])); 7] = [
    ("stun", stun),
    ("channel_data", channel_data),
    ("engine", engine),
    ("config", config),
    ("cds", cds),
    ("dtls_demux", dtls_demux),
    ("admin_query", admin_query),
];
