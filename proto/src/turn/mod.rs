//! STUN/TURN wire codec (RFC 8489, RFC 8656), sans-IO and zero-copy.
//!
//! ```text
//!             bytes from a socket
//!                     |
//!        classify() / stream_frame_len()          (which frame, how long on a stream)
//!            /                       \
//!   Message::decode(buf)        ChannelData::decode(buf)
//!   validated view, O(1) getters  channel + borrowed payload
//!            |                           |
//!   MessageBuilder::new(&mut vec, ..)  encode_channel_data(&mut vec, ..)
//!   attributes, finish[_with_integrity]   (the Vec is reused: no allocation in steady state)
//! ```
//!
//! Decoding never panics and never allocates; getters return slices of the input. Every known attribute
//! is shape-checked once by [`Message::decode`], so getters answer "absent" or a well-formed value.

mod address;
pub mod attr;
mod builder;
mod channeldata;
mod error;
mod header;
mod integrity;
mod message;
mod validate;

#[cfg(test)]
mod rfc5769;
#[cfg(test)]
mod roundtrip_tests;

pub use attr::RawAttribute;
pub use builder::MessageBuilder;
pub use channeldata::{
    CHANNEL_HEADER_LEN, CHANNEL_MAX, CHANNEL_MIN, ChannelData, encode_channel_data,
};
pub use error::{DecodeError, EncodeError, Result, code};
pub use header::{
    Class, Family, HEADER_LEN, Header, MAGIC_COOKIE, MessageType, Method, TransactionId,
};
pub use integrity::{FINGERPRINT_XOR, long_term_key};
pub use message::{Attributes, Message};

/// What kind of frame a buffer starts with, from its first bytes (RFC 7983 style demultiplexing).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Framing {
    /// Top bits `00`, at least a header and the magic cookie: a STUN message.
    Stun,
    /// Top bits `01` and at least the 4-byte header: ChannelData.
    ChannelData,
    /// Anything else (too short, other top bits, wrong cookie).
    Unknown,
}

/// Reads the magic cookie at bytes 4..8, if present.
#[inline]
fn has_cookie(buf: &[u8]) -> bool {
    buf.get(4..8)
        .is_some_and(|c| c == MAGIC_COOKIE.to_be_bytes())
}

/// Classifies a datagram by its first bytes, without validating it.
#[inline]
pub fn classify(buf: &[u8]) -> Framing {
    match buf.first().map(|b| b >> 6) {
        Some(0b00) if buf.len() >= HEADER_LEN && has_cookie(buf) => Framing::Stun,
        Some(0b01) if buf.len() >= CHANNEL_HEADER_LEN => Framing::ChannelData,
        _ => Framing::Unknown,
    }
}

/// For stream transports: total length of the next frame at the head of `buf` (a STUN message, or
/// ChannelData including its padding to 4 bytes); `Ok(None)` when more bytes are needed to tell;
/// [`DecodeError::BadFraming`] when the head is neither (the connection should be closed).
#[inline]
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let len = match buf.get(2..4) {
        Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
        None if first >> 6 <= 0b01 => return Ok(None),
        None => return Err(DecodeError::BadFraming),
    };
    match first >> 6 {
        0b00 if !len.is_multiple_of(4) => Err(DecodeError::BadFraming),
        0b00 if buf.len() < 8 => Ok(None),
        0b00 if !has_cookie(buf) => Err(DecodeError::BadFraming),
        0b00 => Ok(Some(HEADER_LEN + len)),
        0b01 => Ok(Some(ChannelData::frame_len(len, true))),
        _ => Err(DecodeError::BadFraming),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_first_bits() {
        let mut stun = [0u8; 20];
        stun[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert_eq!(classify(&stun), Framing::Stun);
        assert_eq!(classify(&stun[..19]), Framing::Unknown);
        stun[4] = 0;
        assert_eq!(classify(&stun), Framing::Unknown);
        assert_eq!(classify(&[0x40, 0, 0, 0]), Framing::ChannelData);
        assert_eq!(classify(&[0x40, 0, 0]), Framing::Unknown);
        assert_eq!(classify(&[0x80, 0, 0, 0, 0]), Framing::Unknown);
        assert_eq!(classify(&[]), Framing::Unknown);
    }

    #[test]
    fn stream_frames() {
        assert_eq!(stream_frame_len(&[]), Ok(None));
        assert_eq!(stream_frame_len(&[0x40, 0x01, 0x00]), Ok(None));
        assert_eq!(stream_frame_len(&[0x40, 0x01, 0x00, 0x05]), Ok(Some(12)));
        assert_eq!(stream_frame_len(&[0x40, 0x01, 0x00, 0x08]), Ok(Some(12)));
        assert_eq!(stream_frame_len(&[0x00, 0x01, 0x00, 0x08]), Ok(None));
        assert_eq!(
            stream_frame_len(&[0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42]),
            Ok(Some(28))
        );
        assert_eq!(
            stream_frame_len(&[0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x43]),
            Err(DecodeError::BadFraming)
        );
        assert_eq!(
            stream_frame_len(&[0x00, 0x01, 0x00, 0x07]),
            Err(DecodeError::BadFraming)
        );
        assert_eq!(stream_frame_len(&[0xC0]), Err(DecodeError::BadFraming));
        assert_eq!(
            stream_frame_len(&[0x80, 0, 0, 0]),
            Err(DecodeError::BadFraming)
        );
    }
}
