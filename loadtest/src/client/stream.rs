//! Cutting TURN frames (STUN messages and padded ChannelData) out of a TCP byte stream.

use std::io::{self, Read};

use proto::turn::{self, DecodeError};

/// Bytes read per `read_from` call at most.
const READ_CHUNK: usize = 16 * 1024;

/// A reusable receive buffer that yields whole frames.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    start: usize,
}

impl Deframer {
    /// An empty deframer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads once from `r` into the buffer. `Ok(0)` means end of stream.
    pub fn read_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let res = r.read(&mut self.buf[len..]);
        self.buf.truncate(len + *res.as_ref().unwrap_or(&0));
        res
    }

    /// Appends bytes obtained elsewhere (e.g. from an async read).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, an error when the stream
    /// is not TURN framing (the connection cannot recover).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        let head = &self.buf[self.start..];
        let Some(len) = turn::stream_frame_len(head)? else {
            return Ok(None);
        };
        if head.len() < len {
            return Ok(None);
        }
        let frame = &self.buf[self.start..self.start + len];
        self.start += len;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads() {
        let mut wire = Vec::new();
        let mut frame = Vec::new();
        turn::encode_channel_data(&mut frame, 0x4000, b"hello", true).unwrap();
        wire.extend_from_slice(&frame);
        turn::encode_channel_data(&mut frame, 0x4001, b"abcd", true).unwrap();
        wire.extend_from_slice(&frame);
        let mut d = Deframer::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            d.read_from(&mut &chunk[..]).unwrap();
            while let Some(f) = d.next_frame().unwrap() {
                got.push(turn::ChannelData::decode(f).unwrap().data.to_vec());
            }
        }
        assert_eq!(got, vec![b"hello".to_vec(), b"abcd".to_vec()]);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = Deframer::new();
        d.extend(&[0xC0, 0, 0, 0]);
        assert!(d.next_frame().is_err());
    }
}
