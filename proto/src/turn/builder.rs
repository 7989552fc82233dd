//! [`MessageBuilder`]: encodes a STUN message into a caller-owned `Vec<u8>` that is reused across
//! messages, so that once it has grown to the largest message nothing allocates. Attributes are written
//! in call order; MESSAGE-INTEGRITY and FINGERPRINT are appended by `finish_with_integrity`/`finish`.

use std::net::SocketAddr;

use super::attr::{self, padding};
use super::integrity::{self, INTEGRITY_LEN};
use super::{EncodeError, Family, HEADER_LEN, MAGIC_COOKIE, MessageType, TransactionId, address};

/// The largest body (bytes after the header) the 16-bit length field can describe.
const MAX_BODY: usize = u16::MAX as usize & !3;

/// Writes one STUN message into `out`. Methods return `&mut Self` to chain; an attribute that would not
/// fit the 16-bit length is dropped and makes `finish*` return [`EncodeError::TooLarge`].
#[derive(Debug)]
pub struct MessageBuilder<'b> {
    out: &'b mut Vec<u8>,
    tid: TransactionId,
    fingerprint: bool,
    overflow: bool,
}

impl<'b> MessageBuilder<'b> {
    /// Clears `out` and writes the header (length patched by `finish`).
    pub fn new(out: &'b mut Vec<u8>, typ: MessageType, tid: TransactionId) -> Self {
        out.clear();
        out.extend_from_slice(&typ.to_u16().to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(&tid.0);
        Self {
            out,
            tid,
            fingerprint: false,
            overflow: false,
        }
    }

    /// Whether `finish*` appends FINGERPRINT (off by default).
    #[inline]
    pub fn fingerprint(&mut self, on: bool) -> &mut Self {
        self.fingerprint = on;
        self
    }

    /// Writes a TLV header for a `len`-byte value; false (and the overflow mark) when it would not fit.
    #[inline]
    fn begin(&mut self, typ: u16, len: usize) -> bool {
        let body = self.out.len() - HEADER_LEN;
        if self.overflow || body + 4 + len + padding(len) > MAX_BODY {
            self.overflow = true;
            return false;
        }
        self.out.extend_from_slice(&typ.to_be_bytes());
        self.out.extend_from_slice(&(len as u16).to_be_bytes());
        true
    }

    /// Zero-pads the last value to a multiple of 4.
    #[inline]
    fn pad(&mut self) {
        let n = padding(self.out.len());
        self.out.extend_from_slice(&[0u8; 3][..n]);
    }

    /// Any attribute, with its raw value (also for types this codec does not know).
    #[inline]
    pub fn attribute(&mut self, typ: u16, value: &[u8]) -> &mut Self {
        if self.begin(typ, value.len()) {
            self.out.extend_from_slice(value);
            self.pad();
        }
        self
    }

    /// An address attribute, XORed unless it is MAPPED-ADDRESS.
    fn address(&mut self, typ: u16, addr: SocketAddr, xor: bool) -> &mut Self {
        if self.begin(typ, address::value_len(&addr)) {
            let tid = self.tid;
            address::encode(self.out, addr, xor.then_some(&tid));
        }
        self
    }

    /// XOR-MAPPED-ADDRESS.
    #[inline]
    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.address(attr::XOR_MAPPED_ADDRESS, addr, true)
    }

    /// XOR-RELAYED-ADDRESS.
    #[inline]
    pub fn xor_relayed_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.address(attr::XOR_RELAYED_ADDRESS, addr, true)
    }

    /// XOR-PEER-ADDRESS (call again for several peers).
    #[inline]
    pub fn xor_peer_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.address(attr::XOR_PEER_ADDRESS, addr, true)
    }

    /// MAPPED-ADDRESS.
    #[inline]
    pub fn mapped_address(&mut self, addr: SocketAddr) -> &mut Self {
        self.address(attr::MAPPED_ADDRESS, addr, false)
    }

    /// USERNAME (at most 513 bytes to be accepted by a decoder).
    #[inline]
    pub fn username(&mut self, v: &str) -> &mut Self {
        self.attribute(attr::USERNAME, v.as_bytes())
    }

    /// REALM.
    #[inline]
    pub fn realm(&mut self, v: &str) -> &mut Self {
        self.attribute(attr::REALM, v.as_bytes())
    }

    /// NONCE.
    #[inline]
    pub fn nonce(&mut self, v: &str) -> &mut Self {
        self.attribute(attr::NONCE, v.as_bytes())
    }

    /// SOFTWARE.
    #[inline]
    pub fn software(&mut self, v: &str) -> &mut Self {
        self.attribute(attr::SOFTWARE, v.as_bytes())
    }

    /// LIFETIME in seconds.
    #[inline]
    pub fn lifetime(&mut self, secs: u32) -> &mut Self {
        self.attribute(attr::LIFETIME, &secs.to_be_bytes())
    }

    /// REQUESTED-TRANSPORT with a protocol number ([`attr::TRANSPORT_UDP`]).
    #[inline]
    pub fn requested_transport(&mut self, protocol: u8) -> &mut Self {
        self.attribute(attr::REQUESTED_TRANSPORT, &[protocol, 0, 0, 0])
    }

    /// DATA.
    #[inline]
    pub fn data(&mut self, data: &[u8]) -> &mut Self {
        self.attribute(attr::DATA, data)
    }

    /// CHANNEL-NUMBER.
    #[inline]
    pub fn channel_number(&mut self, channel: u16) -> &mut Self {
        let [hi, lo] = channel.to_be_bytes();
        self.attribute(attr::CHANNEL_NUMBER, &[hi, lo, 0, 0])
    }

    /// ERROR-CODE; `code` is 300-699 (class = code / 100, number = code % 100). See [`super::code`].
    pub fn error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        if self.begin(attr::ERROR_CODE, 4 + reason.len()) {
            self.out
                .extend_from_slice(&[0, 0, ((code / 100) & 0x07) as u8, (code % 100) as u8]);
            self.out.extend_from_slice(reason.as_bytes());
            self.pad();
        }
        self
    }

    /// UNKNOWN-ATTRIBUTES listing `types`.
    pub fn unknown_attributes(&mut self, types: &[u16]) -> &mut Self {
        if self.begin(attr::UNKNOWN_ATTRIBUTES, types.len() * 2) {
            types
                .iter()
                .for_each(|t| self.out.extend_from_slice(&t.to_be_bytes()));
            self.pad();
        }
        self
    }

    /// EVEN-PORT with the R (reserve next port) bit.
    #[inline]
    pub fn even_port(&mut self, reserve: bool) -> &mut Self {
        self.attribute(attr::EVEN_PORT, &[if reserve { 0x80 } else { 0 }])
    }

    /// RESERVATION-TOKEN.
    #[inline]
    pub fn reservation_token(&mut self, token: [u8; 8]) -> &mut Self {
        self.attribute(attr::RESERVATION_TOKEN, &token)
    }

    /// REQUESTED-ADDRESS-FAMILY.
    #[inline]
    pub fn requested_address_family(&mut self, family: Family) -> &mut Self {
        self.attribute(attr::REQUESTED_ADDRESS_FAMILY, &[family.to_u8(), 0, 0, 0])
    }

    /// ADDITIONAL-ADDRESS-FAMILY.
    #[inline]
    pub fn additional_address_family(&mut self, family: Family) -> &mut Self {
        self.attribute(attr::ADDITIONAL_ADDRESS_FAMILY, &[family.to_u8(), 0, 0, 0])
    }

    /// DONT-FRAGMENT.
    #[inline]
    pub fn dont_fragment(&mut self) -> &mut Self {
        self.attribute(attr::DONT_FRAGMENT, &[])
    }

    /// Completes the message: optional FINGERPRINT, final length. On error `out` is left empty.
    pub fn finish(self) -> Result<(), EncodeError> {
        self.seal(None)
    }

    /// Completes the message with MESSAGE-INTEGRITY keyed by `key` (then the optional FINGERPRINT).
    pub fn finish_with_integrity(self, key: &[u8]) -> Result<(), EncodeError> {
        self.seal(Some(key))
    }

    /// Appends the trailer attributes and patches the length.
    fn seal(mut self, key: Option<&[u8]>) -> Result<(), EncodeError> {
        let trailer = key.map_or(0, |_| 4 + INTEGRITY_LEN) + if self.fingerprint { 8 } else { 0 };
        if self.overflow || self.out.len() - HEADER_LEN + trailer > MAX_BODY {
            self.out.clear();
            return Err(EncodeError::TooLarge);
        }
        if let Some(key) = key {
            let end = self.out.len();
            let mac = integrity::compute_integrity(key, self.out, end);
            self.put_tlv(attr::MESSAGE_INTEGRITY, &mac);
        }
        if self.fingerprint {
            self.set_length(self.out.len() + 8);
            let crc = integrity::fingerprint(self.out);
            self.put_tlv(attr::FINGERPRINT, &crc.to_be_bytes());
        }
        self.set_length(self.out.len());
        Ok(())
    }

    /// Appends a TLV whose value is a multiple of 4 bytes long (no overflow check: room was reserved).
    #[inline]
    fn put_tlv(&mut self, typ: u16, value: &[u8]) {
        self.out.extend_from_slice(&typ.to_be_bytes());
        self.out
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.out.extend_from_slice(value);
    }

    /// Sets the header length field for a message of `total` bytes.
    #[inline]
    fn set_length(&mut self, total: usize) {
        let len = ((total - HEADER_LEN) as u16).to_be_bytes();
        if let Some(field) = self.out.get_mut(2..4) {
            field.copy_from_slice(&len);
        }
    }
}
