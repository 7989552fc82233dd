//! Attribute type codes (RFC 8489 §18.3, RFC 8656 §18), the borrowed TLV view [`RawAttribute`], and the
//! table of attributes this codec understands (which decides what counts as an unknown
//! comprehension-required attribute, answered with 420).

/// MAPPED-ADDRESS (RFC 8489).
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// USERNAME (RFC 8489).
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY: HMAC-SHA1 (RFC 8489).
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE (RFC 8489).
pub const ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES (RFC 8489).
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// CHANNEL-NUMBER (RFC 8656).
pub const CHANNEL_NUMBER: u16 = 0x000C;
/// LIFETIME (RFC 8656).
pub const LIFETIME: u16 = 0x000D;
/// XOR-PEER-ADDRESS (RFC 8656).
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
/// DATA (RFC 8656).
pub const DATA: u16 = 0x0013;
/// REALM (RFC 8489).
pub const REALM: u16 = 0x0014;
/// NONCE (RFC 8489).
pub const NONCE: u16 = 0x0015;
/// XOR-RELAYED-ADDRESS (RFC 8656).
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
/// REQUESTED-ADDRESS-FAMILY (RFC 8656).
pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
/// EVEN-PORT (RFC 8656).
pub const EVEN_PORT: u16 = 0x0018;
/// REQUESTED-TRANSPORT (RFC 8656).
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
/// DONT-FRAGMENT (RFC 8656).
pub const DONT_FRAGMENT: u16 = 0x001A;
/// XOR-MAPPED-ADDRESS (RFC 8489).
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// RESERVATION-TOKEN (RFC 8656).
pub const RESERVATION_TOKEN: u16 = 0x0022;
/// ADDITIONAL-ADDRESS-FAMILY (RFC 8656), comprehension-optional.
pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
/// SOFTWARE (RFC 8489), comprehension-optional.
pub const SOFTWARE: u16 = 0x8022;
/// FINGERPRINT: CRC-32 of the message XOR 0x5354554e (RFC 8489), comprehension-optional.
pub const FINGERPRINT: u16 = 0x8028;

/// REQUESTED-TRANSPORT protocol number for UDP (the only one RFC 8656 allocates).
pub const TRANSPORT_UDP: u8 = 17;
/// REQUESTED-TRANSPORT protocol number for TCP (RFC 6062).
pub const TRANSPORT_TCP: u8 = 6;

/// One attribute as it sits in the message: type and value (without padding), borrowed from the input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawAttribute<'a> {
    /// The attribute type code.
    pub typ: u16,
    /// The value bytes, excluding the padding to 4 bytes.
    pub value: &'a [u8],
}

/// Number of attributes with a first-occurrence slot in a decoded message (see [`slot`]).
pub(crate) const SLOTS: usize = 20;

/// Index of a known attribute in the per-message first-occurrence table, `None` for the rest. Every
/// attribute the codec understands has a slot, so this is also the "known attribute" test.
#[inline]
pub(crate) const fn slot(typ: u16) -> Option<usize> {
    Some(match typ {
        MAPPED_ADDRESS => 0,
        USERNAME => 1,
        MESSAGE_INTEGRITY => 2,
        ERROR_CODE => 3,
        UNKNOWN_ATTRIBUTES => 4,
        CHANNEL_NUMBER => 5,
        LIFETIME => 6,
        XOR_PEER_ADDRESS => 7,
        DATA => 8,
        REALM => 9,
        NONCE => 10,
        XOR_RELAYED_ADDRESS => 11,
        REQUESTED_ADDRESS_FAMILY => 12,
        EVEN_PORT => 13,
        REQUESTED_TRANSPORT => 14,
        DONT_FRAGMENT => 15,
        XOR_MAPPED_ADDRESS => 16,
        RESERVATION_TOKEN => 17,
        ADDITIONAL_ADDRESS_FAMILY => 18,
        SOFTWARE => 19,
        _ => return None,
    })
}

/// Whether this codec understands attribute `typ` (FINGERPRINT included).
#[inline]
pub const fn is_known(typ: u16) -> bool {
    typ == FINGERPRINT || slot(typ).is_some()
}

/// Whether `typ` is in the comprehension-required range (0x0000-0x7FFF).
#[inline]
pub const fn is_comprehension_required(typ: u16) -> bool {
    typ < 0x8000
}

/// Number of padding bytes after a value of `len` bytes (values are padded to a multiple of 4).
#[inline]
pub(crate) const fn padding(len: usize) -> usize {
    (4 - (len & 3)) & 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_and_dense() {
        let mut seen = [false; SLOTS];
        for typ in 0..=u16::MAX {
            if let Some(i) = slot(typ) {
                assert!(!seen[i], "slot {i} used twice");
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn known_and_ranges() {
        assert!(is_known(FINGERPRINT) && is_known(USERNAME) && !is_known(0x0024));
        assert!(is_comprehension_required(0x7FFF) && !is_comprehension_required(SOFTWARE));
        assert_eq!(
            [padding(0), padding(1), padding(2), padding(3), padding(4)],
            [0, 3, 2, 1, 0]
        );
    }
}
