//! The zero-copy STUN message decoder: [`Message::decode`] validates a buffer once (header, length, TLV
//! walk, known attribute shapes, FINGERPRINT) and remembers where the first occurrence of every known
//! attribute sits, so the typed getters are O(1) slices into the caller's buffer.
//!
//! ```text
//! buf: [header 20][attr][attr]...[MESSAGE-INTEGRITY][ignored attrs][FINGERPRINT]
//!                 |<------- attributes() -------------------->|
//! ```
//! Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored (RFC 8489 §14.5): they are neither
//! validated nor yielded.

use std::net::SocketAddr;

use super::attr::{self, RawAttribute, SLOTS, padding, slot};
use super::{DecodeError, Family, HEADER_LEN, Header, MessageType, Result, TransactionId};
use super::{address, integrity, validate};

/// A validated STUN message borrowing its bytes from the input buffer.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// Exactly the message: header plus `header.length` bytes.
    buf: &'a [u8],
    header: Header,
    /// Offset of the TLV header of the first occurrence of each known attribute (see [`attr::slot`]),
    /// 0 when absent (no attribute can start inside the header).
    first: [u32; SLOTS],
    /// End of the attributes that count: after MESSAGE-INTEGRITY if present, else before FINGERPRINT.
    attrs_end: u32,
    /// Offset of the MESSAGE-INTEGRITY TLV, 0 when absent.
    integrity: u32,
    fingerprint: bool,
}

/// Reads the TLV at `off`: its type, unpadded value and the offset of the next attribute.
#[inline]
fn tlv(buf: &[u8], off: usize) -> Option<(u16, &[u8], usize)> {
    let head = buf.get(off..)?.first_chunk::<4>()?;
    let typ = u16::from_be_bytes([head[0], head[1]]);
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let value = buf.get(off + 4..off + 4 + len)?;
    Some((typ, value, off + 4 + len + padding(len)))
}

impl<'a> Message<'a> {
    /// Decodes and validates `buf`, which must hold exactly one message (use [`super::stream_frame_len`]
    /// to cut messages out of a stream). Checks the header, that the length matches the buffer, the TLV
    /// structure, the shape of every known attribute before MESSAGE-INTEGRITY, and FINGERPRINT if
    /// present. MESSAGE-INTEGRITY is only checked by [`Self::verify_integrity`], which needs the key.
    pub fn decode(buf: &'a [u8]) -> Result<Self> {
        let header = Header::decode(buf)?;
        let total = HEADER_LEN + usize::from(header.length);
        if buf.len() != total {
            return Err(if buf.len() < total {
                DecodeError::TooShort
            } else {
                DecodeError::BadLength
            });
        }
        let mut msg = Self {
            buf,
            header,
            first: [0; SLOTS],
            attrs_end: total as u32,
            integrity: 0,
            fingerprint: false,
        };
        let mut off = HEADER_LEN;
        while off < total {
            let Some((typ, value, next)) = tlv(buf, off).filter(|t| t.2 <= total) else {
                let typ = buf
                    .get(off..off + 2)
                    .map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
                return Err(DecodeError::TruncatedAttribute(typ));
            };
            msg.visit(off, typ, value, next == total)?;
            off = next;
        }
        Ok(msg)
    }

    /// Accounts for the attribute at `off` during [`Self::decode`].
    fn visit(&mut self, off: usize, typ: u16, value: &[u8], last: bool) -> Result<()> {
        if typ == attr::FINGERPRINT {
            if !last {
                return Err(DecodeError::FingerprintNotLast);
            }
            let prefix = self.buf.get(..off).unwrap_or_default();
            if value != integrity::fingerprint(prefix).to_be_bytes() {
                return Err(DecodeError::BadFingerprint);
            }
            self.fingerprint = true;
            if self.integrity == 0 {
                self.attrs_end = off as u32;
            }
            return Ok(());
        }
        if self.integrity != 0 {
            return Ok(()); // after MESSAGE-INTEGRITY: ignored
        }
        validate::attribute(typ, value, &self.header.tid)?;
        if let Some(first) = slot(typ).and_then(|s| self.first.get_mut(s))
            && *first == 0
        {
            *first = off as u32;
        }
        if typ == attr::MESSAGE_INTEGRITY {
            self.integrity = off as u32;
            self.attrs_end = (off + 4 + value.len()) as u32;
        }
        Ok(())
    }

    /// Class and method.
    #[inline]
    pub fn message_type(&self) -> MessageType {
        self.header.typ
    }

    /// The transaction id.
    #[inline]
    pub fn transaction_id(&self) -> TransactionId {
        self.header.tid
    }

    /// The parsed header.
    #[inline]
    pub fn header(&self) -> Header {
        self.header
    }

    /// The whole message as received.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// All attributes in order up to and including MESSAGE-INTEGRITY (FINGERPRINT, already checked, and
    /// anything after MESSAGE-INTEGRITY are left out).
    #[inline]
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            buf: self.buf,
            off: HEADER_LEN,
            end: self.attrs_end as usize,
        }
    }

    /// The value of the first `typ` attribute, known or not.
    pub fn attribute(&self, typ: u16) -> Option<&'a [u8]> {
        match slot(typ) {
            Some(s) => {
                let off = *self.first.get(s)? as usize;
                if off == 0 {
                    return None;
                }
                tlv(self.buf, off).map(|(_, value, _)| value)
            }
            None => self.attributes().find(|a| a.typ == typ).map(|a| a.value),
        }
    }

    /// A known text attribute (validated UTF-8 by `decode`).
    #[inline]
    fn text(&self, typ: u16) -> Option<&'a str> {
        std::str::from_utf8(self.attribute(typ)?).ok()
    }

    /// A known 4-byte attribute as a big-endian u32.
    #[inline]
    fn word(&self, typ: u16) -> Option<[u8; 4]> {
        self.attribute(typ)?.first_chunk::<4>().copied()
    }

    /// A known address attribute.
    #[inline]
    fn address(&self, typ: u16, xor: bool) -> Option<SocketAddr> {
        let tid = self.header.tid;
        address::decode(self.attribute(typ)?, xor.then_some(&tid)).ok()
    }

    /// USERNAME.
    #[inline]
    pub fn username(&self) -> Option<&'a str> {
        self.text(attr::USERNAME)
    }

    /// REALM.
    #[inline]
    pub fn realm(&self) -> Option<&'a str> {
        self.text(attr::REALM)
    }

    /// NONCE.
    #[inline]
    pub fn nonce(&self) -> Option<&'a str> {
        self.text(attr::NONCE)
    }

    /// SOFTWARE.
    #[inline]
    pub fn software(&self) -> Option<&'a str> {
        self.text(attr::SOFTWARE)
    }

    /// LIFETIME in seconds.
    #[inline]
    pub fn lifetime(&self) -> Option<u32> {
        self.word(attr::LIFETIME).map(u32::from_be_bytes)
    }

    /// The protocol number of REQUESTED-TRANSPORT (17 = UDP).
    #[inline]
    pub fn requested_transport(&self) -> Option<u8> {
        self.word(attr::REQUESTED_TRANSPORT).map(|w| w[0])
    }

    /// CHANNEL-NUMBER, unvalidated (the engine checks the 0x4000-0x4FFF range).
    #[inline]
    pub fn channel_number(&self) -> Option<u16> {
        self.word(attr::CHANNEL_NUMBER)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
    }

    /// DATA.
    #[inline]
    pub fn data(&self) -> Option<&'a [u8]> {
        self.attribute(attr::DATA)
    }

    /// ERROR-CODE as (code, reason), e.g. (401, "Unauthenticated").
    pub fn error_code(&self) -> Option<(u16, &'a str)> {
        let (head, reason) = self.attribute(attr::ERROR_CODE)?.split_first_chunk::<4>()?;
        let code = u16::from(head[2] & 0x07) * 100 + u16::from(head[3]);
        Some((code, std::str::from_utf8(reason).ok()?))
    }

    /// The attribute types listed in UNKNOWN-ATTRIBUTES (empty when absent).
    pub fn unknown_attributes(&self) -> impl Iterator<Item = u16> + 'a {
        let value = self.attribute(attr::UNKNOWN_ATTRIBUTES).unwrap_or_default();
        value
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }

    /// Every XOR-PEER-ADDRESS in order (CreatePermission may carry several). Values were validated by
    /// `decode`, so they are plain addresses.
    pub fn xor_peer_addresses(&self) -> impl Iterator<Item = SocketAddr> + 'a {
        let tid = self.header.tid;
        let start = slot(attr::XOR_PEER_ADDRESS)
            .and_then(|s| self.first.get(s))
            .map_or(0, |&o| o as usize);
        let end = if start == 0 {
            0
        } else {
            self.attrs_end as usize
        };
        Attributes {
            buf: self.buf,
            off: start,
            end,
        }
        .filter(|a| a.typ == attr::XOR_PEER_ADDRESS)
        .filter_map(move |a| address::decode(a.value, Some(&tid)).ok())
    }

    /// The first XOR-PEER-ADDRESS.
    #[inline]
    pub fn xor_peer_address(&self) -> Option<SocketAddr> {
        self.address(attr::XOR_PEER_ADDRESS, true)
    }

    /// XOR-MAPPED-ADDRESS.
    #[inline]
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.address(attr::XOR_MAPPED_ADDRESS, true)
    }

    /// XOR-RELAYED-ADDRESS (the first one; a dual-stack allocation carries two).
    #[inline]
    pub fn xor_relayed_address(&self) -> Option<SocketAddr> {
        self.address(attr::XOR_RELAYED_ADDRESS, true)
    }

    /// MAPPED-ADDRESS (the pre-RFC 5389 plain form).
    #[inline]
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        self.address(attr::MAPPED_ADDRESS, false)
    }

    /// EVEN-PORT: `Some(r)` with the R (reserve next port) bit.
    #[inline]
    pub fn even_port(&self) -> Option<bool> {
        self.attribute(attr::EVEN_PORT)?
            .first()
            .map(|b| b & 0x80 != 0)
    }

    /// RESERVATION-TOKEN.
    #[inline]
    pub fn reservation_token(&self) -> Option<[u8; 8]> {
        self.attribute(attr::RESERVATION_TOKEN)?
            .first_chunk::<8>()
            .copied()
    }

    /// Whether DONT-FRAGMENT is present.
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.attribute(attr::DONT_FRAGMENT).is_some()
    }

    /// REQUESTED-ADDRESS-FAMILY. An unknown family value fails `decode` with
    /// `InvalidAttribute { typ: attr::REQUESTED_ADDRESS_FAMILY, .. }` (answer 440).
    #[inline]
    pub fn requested_address_family(&self) -> Option<Family> {
        Family::from_u8(*self.attribute(attr::REQUESTED_ADDRESS_FAMILY)?.first()?)
    }

    /// ADDITIONAL-ADDRESS-FAMILY.
    #[inline]
    pub fn additional_address_family(&self) -> Option<Family> {
        Family::from_u8(*self.attribute(attr::ADDITIONAL_ADDRESS_FAMILY)?.first()?)
    }

    /// Comprehension-required attribute types (< 0x8000) this codec does not understand, in order, for a
    /// 420 response with UNKNOWN-ATTRIBUTES.
    pub fn unknown_comprehension_required(&self) -> impl Iterator<Item = u16> + 'a {
        self.attributes()
            .map(|a| a.typ)
            .filter(|&t| attr::is_comprehension_required(t) && !attr::is_known(t))
    }

    /// Whether MESSAGE-INTEGRITY is present.
    #[inline]
    pub fn has_integrity(&self) -> bool {
        self.integrity != 0
    }

    /// Whether a (valid) FINGERPRINT is present.
    #[inline]
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint
    }

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1 over the message up to it, length adjusted, RFC 8489 §14.5) in
    /// constant time. `key` is [`super::long_term_key`] or the short-term password.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<()> {
        let off = self.integrity as usize;
        let value = tlv(self.buf, off)
            .filter(|_| off != 0)
            .ok_or(DecodeError::NoIntegrity)?
            .1;
        if integrity::check_integrity(key, self.buf, off, value) {
            Ok(())
        } else {
            Err(DecodeError::BadIntegrity)
        }
    }
}

/// Iterator over the attributes of a [`Message`], in wire order.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    buf: &'a [u8],
    off: usize,
    end: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.off >= self.end {
            return None;
        }
        let (typ, value, next) = tlv(self.buf, self.off)?;
        self.off = next;
        Some(RawAttribute { typ, value })
    }
}
