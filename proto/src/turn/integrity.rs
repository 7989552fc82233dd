//! MESSAGE-INTEGRITY (HMAC-SHA1) and FINGERPRINT (CRC-32) per RFC 8489 §14.5-14.7, and the long-term
//! credential key.
//!
//! Both are computed over the message up to (excluding) the attribute itself, with the header's length
//! field set as if the message ended right after that attribute:
//!
//! ```text
//! [header, length = up to end of MI] [attrs before MI] -> HMAC-SHA1(key)  = MI value (20 bytes)
//! [header, length = up to end of FP] [attrs ... MI]    -> CRC-32 ^ 0x5354554e = FP value (4 bytes)
//! ```
//! Nothing here allocates: the HMAC is fed a patched copy of the 20-byte header and then the borrowed body.

use hmac::{Hmac, Mac, digest::KeyInit};
use md5::{Digest, Md5};
use sha1::Sha1;

use super::HEADER_LEN;

/// The constant XORed into the CRC-32 of FINGERPRINT.
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// Length of the MESSAGE-INTEGRITY value.
pub(crate) const INTEGRITY_LEN: usize = 20;

/// SHA-1's block size: HMAC zero-pads shorter keys to it and hashes longer ones.
const SHA1_BLOCK: usize = 64;

/// An HMAC-SHA1 instance for any key length, without the fallible constructor: keys longer than a block
/// are hashed first and then zero-padded to a block, exactly as HMAC (RFC 2104) defines it.
fn hmac_sha1(key: &[u8]) -> Hmac<Sha1> {
    let mut block = [0u8; SHA1_BLOCK];
    if key.len() > SHA1_BLOCK {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <Hmac<Sha1> as KeyInit>::new(&block.into())
}

/// HMAC-SHA1 state fed with `msg[..end]`, the header length patched to `end - 20 + 24` (the message as if it
/// ended right after a MESSAGE-INTEGRITY attribute placed at `end`). `msg` must hold at least the header
/// and `end` bytes; callers guarantee it.
fn integrity_mac(key: &[u8], msg: &[u8], end: usize) -> Hmac<Sha1> {
    let mut mac = hmac_sha1(key);
    if let (Some(h), Some(body)) = (msg.first_chunk::<HEADER_LEN>(), msg.get(HEADER_LEN..end)) {
        let mut head = *h;
        let len = (end - HEADER_LEN + 4 + INTEGRITY_LEN) as u16;
        head[2..4].copy_from_slice(&len.to_be_bytes());
        mac.update(&head);
        mac.update(body);
    }
    mac
}

/// The MESSAGE-INTEGRITY value for an attribute placed at offset `end` of `msg`.
pub(crate) fn compute_integrity(key: &[u8], msg: &[u8], end: usize) -> [u8; INTEGRITY_LEN] {
    integrity_mac(key, msg, end).finalize().into_bytes().into()
}

/// Constant-time check of a MESSAGE-INTEGRITY value placed at offset `end` of `msg`.
pub(crate) fn check_integrity(key: &[u8], msg: &[u8], end: usize, value: &[u8]) -> bool {
    integrity_mac(key, msg, end).verify_slice(value).is_ok()
}

/// The FINGERPRINT value over `prefix`, whose header length must already include the FINGERPRINT.
#[inline]
pub(crate) fn fingerprint(prefix: &[u8]) -> u32 {
    crc32fast::hash(prefix) ^ FINGERPRINT_XOR
}

/// The long-term credential key MD5(username ":" realm ":" password) of RFC 8489 §9.2.2 (the password is
/// used as given; SASLprep is the caller's business and a no-op for ASCII).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    for (i, part) in [username, realm, password].into_iter().enumerate() {
        if i > 0 {
            md5.update(b":");
        }
        md5.update(part.as_bytes());
    }
    md5.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_term_key_matches_rfc5769() {
        // RFC 5769 §2.4: username "<U+30DE><U+30C8><U+30EA><U+30C3><U+30AF><U+30B9>", realm "example.org",
        // password "TheMatrIX" (the SASLprep output of "The<U+00AD>M<U+00AA>tr<U+2168>").
        let key = long_term_key(
            "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
            "example.org",
            "TheMatrIX",
        );
        assert_eq!(key[..], hex("e8ca7ad59d5eb0518e312911d2dab2a9"));
    }

    #[test]
    fn hmac_matches_rfc2202_for_short_and_long_keys() {
        // RFC 2202 test case 2 (short key) and test case 6 (80-byte key, hashed first).
        let mut mac = hmac_sha1(b"Jefe");
        mac.update(b"what do ya want for nothing?");
        let out: [u8; 20] = mac.finalize().into_bytes().into();
        assert_eq!(out[..], hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"));
        let mut mac = hmac_sha1(&[0xaa; 80]);
        mac.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        let out: [u8; 20] = mac.finalize().into_bytes().into();
        assert_eq!(out[..], hex("aa4ae5e15272d00e95705637ce8a3b55ed402112"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }
}
