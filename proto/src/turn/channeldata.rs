//! ChannelData framing (RFC 8656 §12.4): the 4-byte header that replaces a Send/Data indication once a
//! channel is bound. Over stream transports the frame is zero-padded to a multiple of 4 bytes; over UDP
//! padding is optional and ignored.
//!
//! ```text
//! | channel number (16) | length (16) | application data (length bytes) | padding (streams) |
//! ```

use super::attr::padding;
use super::{DecodeError, EncodeError, Result};

/// Lowest channel number a client may bind (RFC 8656 §12).
pub const CHANNEL_MIN: u16 = 0x4000;
/// Highest channel number a client may bind; 0x5000-0x7FFF still frame as ChannelData but are reserved.
pub const CHANNEL_MAX: u16 = 0x4FFF;
/// Size of the ChannelData header.
pub const CHANNEL_HEADER_LEN: usize = 4;

/// A decoded ChannelData frame borrowing its payload from the input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChannelData<'a> {
    /// The channel number, 0x4000-0x7FFF (the engine checks the bindable range).
    pub channel: u16,
    /// The application data, without padding.
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Decodes a frame at the head of `buf`. Bytes after the announced length (padding, or whatever a UDP
    /// sender appended) are ignored; a buffer shorter than the length is [`DecodeError::TooShort`].
    #[inline]
    pub fn decode(buf: &'a [u8]) -> Result<Self> {
        let Some((head, rest)) = buf.split_first_chunk::<CHANNEL_HEADER_LEN>() else {
            return Err(DecodeError::TooShort);
        };
        let channel = u16::from_be_bytes([head[0], head[1]]);
        if channel >> 14 != 0b01 {
            return Err(DecodeError::NotStun);
        }
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let data = rest.get(..len).ok_or(DecodeError::TooShort)?;
        Ok(Self { channel, data })
    }

    /// The 4-byte header for `len` bytes of data on `channel`, for callers that write the payload
    /// themselves (scatter/gather I/O or a reserved headroom in front of a receive buffer).
    #[inline]
    pub const fn header(channel: u16, len: u16) -> [u8; CHANNEL_HEADER_LEN] {
        let [c0, c1] = channel.to_be_bytes();
        let [l0, l1] = len.to_be_bytes();
        [c0, c1, l0, l1]
    }

    /// Size of the whole frame carrying `len` data bytes, with the stream padding when `pad`.
    #[inline]
    pub const fn frame_len(len: usize, pad: bool) -> usize {
        CHANNEL_HEADER_LEN + len + if pad { padding(len) } else { 0 }
    }
}

/// Clears `out` and writes one ChannelData frame; `pad` adds the zero padding required on stream
/// transports. Fails only when `data` exceeds 65535 bytes (then `out` is left empty).
#[inline]
pub fn encode_channel_data(
    out: &mut Vec<u8>,
    channel: u16,
    data: &[u8],
    pad: bool,
) -> Result<(), EncodeError> {
    out.clear();
    let len = u16::try_from(data.len()).map_err(|_| EncodeError::TooLarge)?;
    out.reserve(ChannelData::frame_len(data.len(), pad));
    out.extend_from_slice(&ChannelData::header(channel, len));
    out.extend_from_slice(data);
    if pad {
        out.extend_from_slice(&[0u8; 3][..padding(data.len())]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_with_and_without_padding() {
        let mut out = Vec::new();
        for len in 0..9 {
            let data: Vec<u8> = (0..len as u8).collect();
            for pad in [false, true] {
                encode_channel_data(&mut out, 0x4001, &data, pad).unwrap();
                assert_eq!(out.len(), ChannelData::frame_len(len, pad));
                assert_eq!(out.len() % 4 == 0, pad || len % 4 == 0);
                let cd = ChannelData::decode(&out).unwrap();
                assert_eq!((cd.channel, cd.data), (0x4001, &data[..]));
            }
        }
    }

    #[test]
    fn decode_rejects_bad_frames() {
        assert_eq!(
            ChannelData::decode(&[0x40, 0x00, 0x00]),
            Err(DecodeError::TooShort)
        );
        assert_eq!(
            ChannelData::decode(&[0x40, 0x00, 0x00, 0x02, 1]),
            Err(DecodeError::TooShort)
        );
        assert_eq!(
            ChannelData::decode(&[0x80, 0x00, 0x00, 0x00]),
            Err(DecodeError::NotStun)
        );
        assert_eq!(
            ChannelData::decode(&[0x00, 0x01, 0x00, 0x00]),
            Err(DecodeError::NotStun)
        );
        let cd = ChannelData::decode(&[0x7f, 0xff, 0x00, 0x01, 9, 0, 0, 0]).unwrap();
        assert_eq!((cd.channel, cd.data), (0x7fff, &[9u8][..]));
    }

    #[test]
    fn oversized_payload_is_refused() {
        let mut out = vec![1, 2, 3];
        let big = vec![0u8; 65536];
        assert_eq!(
            encode_channel_data(&mut out, 0x4000, &big, true),
            Err(EncodeError::TooLarge)
        );
        assert!(out.is_empty());
    }
}
