//! Codec errors, and the standard STUN/TURN error codes with their reason phrases.

/// Why a buffer could not be decoded. Decoders return this instead of panicking, whatever the input.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed header (20 for STUN, 4 for ChannelData) or than the header claims.
    #[error("buffer too short")]
    TooShort,
    /// The two top bits are not `00` (STUN) or `01` (ChannelData).
    #[error("not a STUN message")]
    NotStun,
    /// Bytes 4..8 are not the magic cookie 0x2112A442.
    #[error("bad magic cookie")]
    BadMagicCookie,
    /// The message length is not a multiple of 4, or disagrees with the buffer size.
    #[error("bad message length")]
    BadLength,
    /// An attribute's length runs past the end of the message.
    #[error("attribute {0:#06x} truncated")]
    TruncatedAttribute(u16),
    /// A known attribute has a malformed value (wrong length, family, UTF-8 ...).
    #[error("attribute {typ:#06x} malformed: {reason}")]
    InvalidAttribute {
        /// The attribute type code.
        typ: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// FINGERPRINT is not the last attribute.
    #[error("FINGERPRINT is not the last attribute")]
    FingerprintNotLast,
    /// The FINGERPRINT value does not match the message.
    #[error("FINGERPRINT mismatch")]
    BadFingerprint,
    /// [`super::Message::verify_integrity`] on a message without MESSAGE-INTEGRITY.
    #[error("no MESSAGE-INTEGRITY")]
    NoIntegrity,
    /// The MESSAGE-INTEGRITY HMAC does not match the key.
    #[error("MESSAGE-INTEGRITY mismatch")]
    BadIntegrity,
    /// On a stream: the bytes at the head are neither STUN nor ChannelData; the connection cannot resync.
    #[error("stream framing lost")]
    BadFraming,
}

/// Why a message could not be encoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EncodeError {
    /// The message or ChannelData payload would exceed the 16-bit length field.
    #[error("message too large")]
    TooLarge,
}

/// Shorthand for codec results.
pub type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// Standard ERROR-CODE values (RFC 8489 §14.8, RFC 8656 §15).
pub mod code {
    /// 300 Try Alternate.
    pub const TRY_ALTERNATE: u16 = 300;
    /// 400 Bad Request.
    pub const BAD_REQUEST: u16 = 400;
    /// 401 Unauthenticated.
    pub const UNAUTHENTICATED: u16 = 401;
    /// 403 Forbidden.
    pub const FORBIDDEN: u16 = 403;
    /// 420 Unknown Attribute.
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    /// 437 Allocation Mismatch.
    pub const ALLOCATION_MISMATCH: u16 = 437;
    /// 438 Stale Nonce.
    pub const STALE_NONCE: u16 = 438;
    /// 440 Address Family not Supported.
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
    /// 441 Wrong Credentials.
    pub const WRONG_CREDENTIALS: u16 = 441;
    /// 442 Unsupported Transport Protocol.
    pub const UNSUPPORTED_TRANSPORT: u16 = 442;
    /// 443 Peer Address Family Mismatch.
    pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
    /// 486 Allocation Quota Reached.
    pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
    /// 500 Server Error.
    pub const SERVER_ERROR: u16 = 500;
    /// 508 Insufficient Capacity.
    pub const INSUFFICIENT_CAPACITY: u16 = 508;

    /// The RFC's reason phrase for a code; "Error" for codes it does not name.
    pub const fn reason(code: u16) -> &'static str {
        match code {
            TRY_ALTERNATE => "Try Alternate",
            BAD_REQUEST => "Bad Request",
            UNAUTHENTICATED => "Unauthenticated",
            FORBIDDEN => "Forbidden",
            UNKNOWN_ATTRIBUTE => "Unknown Attribute",
            ALLOCATION_MISMATCH => "Allocation Mismatch",
            STALE_NONCE => "Stale Nonce",
            ADDRESS_FAMILY_NOT_SUPPORTED => "Address Family not Supported",
            WRONG_CREDENTIALS => "Wrong Credentials",
            UNSUPPORTED_TRANSPORT => "Unsupported Transport Protocol",
            PEER_ADDRESS_FAMILY_MISMATCH => "Peer Address Family Mismatch",
            ALLOCATION_QUOTA_REACHED => "Allocation Quota Reached",
            SERVER_ERROR => "Server Error",
            INSUFFICIENT_CAPACITY => "Insufficient Capacity",
            _ => "Error",
        }
    }
}
