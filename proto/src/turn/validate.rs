//! Shape checks for every attribute this codec understands, run once by [`super::Message::decode`] so
//! that the typed getters only ever answer "absent" or a well-formed value.

use super::attr::*;
use super::{DecodeError, Family, TransactionId, address};

/// Longest USERNAME value (RFC 8489 §14.3).
const MAX_USERNAME: usize = 513;
/// Longest REALM, NONCE, SOFTWARE value and ERROR-CODE reason (RFC 8489 §14.8-14.10, §14.14).
const MAX_TEXT: usize = 763;

/// Checks that `value` is a valid `typ` attribute value. Unknown types are accepted as they are.
pub(crate) fn attribute(typ: u16, value: &[u8], tid: &TransactionId) -> Result<(), DecodeError> {
    let invalid = |reason| DecodeError::InvalidAttribute { typ, reason };
    let exact = |n: usize| {
        if value.len() == n {
            Ok(())
        } else {
            Err(invalid("wrong length"))
        }
    };
    match typ {
        MAPPED_ADDRESS => address::decode(value, None).map(drop).map_err(invalid),
        XOR_MAPPED_ADDRESS | XOR_PEER_ADDRESS | XOR_RELAYED_ADDRESS => {
            address::decode(value, Some(tid)).map(drop).map_err(invalid)
        }
        USERNAME => text(value, MAX_USERNAME).map_err(invalid),
        REALM | NONCE | SOFTWARE => text(value, MAX_TEXT).map_err(invalid),
        MESSAGE_INTEGRITY => exact(super::integrity::INTEGRITY_LEN),
        ERROR_CODE => error_code(value).map_err(invalid),
        UNKNOWN_ATTRIBUTES if value.len().is_multiple_of(2) => Ok(()),
        UNKNOWN_ATTRIBUTES => Err(invalid("odd length")),
        CHANNEL_NUMBER | LIFETIME | REQUESTED_TRANSPORT => exact(4),
        REQUESTED_ADDRESS_FAMILY | ADDITIONAL_ADDRESS_FAMILY => {
            exact(4)?;
            let family = value.first().copied().and_then(Family::from_u8);
            family.map(drop).ok_or(invalid("unknown address family"))
        }
        EVEN_PORT => exact(1),
        DONT_FRAGMENT => exact(0),
        RESERVATION_TOKEN => exact(8),
        _ => Ok(()),
    }
}

/// A UTF-8 string of at most `max` bytes.
#[inline]
fn text(value: &[u8], max: usize) -> Result<(), &'static str> {
    if value.len() > max {
        return Err("too long");
    }
    std::str::from_utf8(value)
        .map(drop)
        .map_err(|_| "not UTF-8")
}

/// ERROR-CODE: 21 reserved bits, class (3 bits), number (0-99), then a UTF-8 reason phrase.
fn error_code(value: &[u8]) -> Result<(), &'static str> {
    let Some((head, reason)) = value.split_first_chunk::<4>() else {
        return Err("shorter than 4 bytes");
    };
    if head[3] > 99 {
        return Err("number above 99");
    }
    text(reason, MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(typ: u16, value: &[u8]) -> bool {
        attribute(typ, value, &TransactionId::default()).is_ok()
    }

    #[test]
    fn fixed_lengths_are_enforced() {
        assert!(check(LIFETIME, &[0; 4]) && !check(LIFETIME, &[0; 3]));
        assert!(check(DONT_FRAGMENT, &[]) && !check(DONT_FRAGMENT, &[0]));
        assert!(check(EVEN_PORT, &[0x80]) && !check(EVEN_PORT, &[]));
        assert!(check(RESERVATION_TOKEN, &[1; 8]) && !check(RESERVATION_TOKEN, &[1; 4]));
        assert!(check(MESSAGE_INTEGRITY, &[1; 20]) && !check(MESSAGE_INTEGRITY, &[1; 32]));
        assert!(check(UNKNOWN_ATTRIBUTES, &[0, 1, 0, 2]) && !check(UNKNOWN_ATTRIBUTES, &[0, 1, 0]));
    }

    #[test]
    fn families_text_and_error_codes() {
        assert!(check(REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0]));
        assert_eq!(
            attribute(
                REQUESTED_ADDRESS_FAMILY,
                &[3, 0, 0, 0],
                &TransactionId::default()
            ),
            Err(DecodeError::InvalidAttribute {
                typ: REQUESTED_ADDRESS_FAMILY,
                reason: "unknown address family"
            })
        );
        assert!(check(USERNAME, "ユーザ".as_bytes()) && !check(USERNAME, &[0xff, 0xfe]));
        assert!(!check(USERNAME, &[b'a'; 514]) && check(REALM, &[b'a'; 514]));
        assert!(
            check(ERROR_CODE, b"\0\0\x04\x01Unauthorized") && !check(ERROR_CODE, b"\0\0\x04\x64")
        );
        assert!(!check(ERROR_CODE, b"\0\0\x04"));
        assert!(check(0x7777, &[1, 2, 3]));
    }
}
