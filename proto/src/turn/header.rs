//! The fixed 20-byte STUN header (RFC 8489 §5): message type (class + method), length, magic cookie and
//! transaction id, plus the small value types shared by every other part of the codec.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |0 0|     STUN Message Type     |         Message Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Magic Cookie (0x2112A442)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Transaction ID (96 bits)                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::SocketAddr;

use super::DecodeError;

/// The fixed value in bytes 4..8 of every RFC 5389/8489 STUN message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header in bytes.
pub const HEADER_LEN: usize = 20;

/// The 96-bit transaction id that pairs a response with its request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TransactionId(pub [u8; 12]);

/// The class of a STUN message (the C1/C0 bits of the message type).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Class {
    /// A request: expects a success or error response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    Success,
    /// An error response (carries ERROR-CODE).
    Error,
}

/// The STUN/TURN method (the 12 method bits of the message type).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Method {
    /// Binding (0x001), RFC 8489.
    Binding,
    /// Allocate (0x003), RFC 8656.
    Allocate,
    /// Refresh (0x004), RFC 8656.
    Refresh,
    /// Send (0x006), RFC 8656; indication only.
    Send,
    /// Data (0x007), RFC 8656; indication only.
    Data,
    /// CreatePermission (0x008), RFC 8656.
    CreatePermission,
    /// ChannelBind (0x009), RFC 8656.
    ChannelBind,
    /// Any other method; holds the 12-bit code. `Method::from_code` never produces `Other` for a code that
    /// has its own variant.
    Other(u16),
}

impl Method {
    /// The method for a 12-bit method code (higher bits are ignored).
    #[inline]
    pub const fn from_code(code: u16) -> Self {
        match code & 0x0FFF {
            0x001 => Self::Binding,
            0x003 => Self::Allocate,
            0x004 => Self::Refresh,
            0x006 => Self::Send,
            0x007 => Self::Data,
            0x008 => Self::CreatePermission,
            0x009 => Self::ChannelBind,
            other => Self::Other(other),
        }
    }

    /// The 12-bit method code.
    #[inline]
    pub const fn code(self) -> u16 {
        match self {
            Self::Binding => 0x001,
            Self::Allocate => 0x003,
            Self::Refresh => 0x004,
            Self::Send => 0x006,
            Self::Data => 0x007,
            Self::CreatePermission => 0x008,
            Self::ChannelBind => 0x009,
            Self::Other(code) => code & 0x0FFF,
        }
    }
}

/// A decoded STUN message type: class and method.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageType {
    /// Request, indication, success or error.
    pub class: Class,
    /// The method.
    pub method: Method,
}

impl MessageType {
    /// Builds a message type from its parts.
    #[inline]
    pub const fn new(class: Class, method: Method) -> Self {
        Self { class, method }
    }

    /// The same method with another class, e.g. the success response to a request.
    #[inline]
    pub const fn with_class(self, class: Class) -> Self {
        Self {
            class,
            method: self.method,
        }
    }

    /// Decodes the 16-bit type field; `None` when either of the two top bits is set (not STUN).
    #[inline]
    pub const fn from_u16(typ: u16) -> Option<Self> {
        if typ & 0xC000 != 0 {
            return None;
        }
        let class = match ((typ >> 7) & 0b10) | ((typ >> 4) & 0b01) {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        };
        let method = (typ & 0x000F) | ((typ & 0x00E0) >> 1) | ((typ & 0x3E00) >> 2);
        Some(Self {
            class,
            method: Method::from_code(method),
        })
    }

    /// Encodes into the 16-bit type field.
    #[inline]
    pub const fn to_u16(self) -> u16 {
        let m = self.method.code();
        let c: u16 = match self.class {
            Class::Request => 0x0000,
            Class::Indication => 0x0010,
            Class::Success => 0x0100,
            Class::Error => 0x0110,
        };
        (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | c
    }
}

/// An IP address family as carried by address attributes and REQUESTED-ADDRESS-FAMILY.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Family {
    /// IPv4 (wire value 0x01).
    V4,
    /// IPv6 (wire value 0x02).
    V6,
}

impl Family {
    /// The family of a socket address.
    #[inline]
    pub const fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Self::V4,
            SocketAddr::V6(_) => Self::V6,
        }
    }

    /// The wire value (0x01 or 0x02).
    #[inline]
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::V4 => 0x01,
            Self::V6 => 0x02,
        }
    }

    /// Parses a wire value; `None` for anything but 0x01 and 0x02.
    #[inline]
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0x01 => Some(Self::V4),
            0x02 => Some(Self::V6),
            _ => None,
        }
    }
}

/// The parsed fixed header alone. Lets a server answer 400 to a request whose attributes are malformed
/// (it needs the method and transaction id even when [`super::Message::decode`] fails).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// Class and method.
    pub typ: MessageType,
    /// The Message Length field: bytes after the header (a multiple of 4).
    pub length: u16,
    /// The transaction id.
    pub tid: TransactionId,
}

impl Header {
    /// Parses the first 20 bytes of `buf`: the two zero bits, the magic cookie and a length that is a
    /// multiple of 4. Does not look at the body nor require it to be present.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::TooShort);
        };
        let typ = MessageType::from_u16(u16::from_be_bytes([head[0], head[1]]))
            .ok_or(DecodeError::NotStun)?;
        if u32::from_be_bytes([head[4], head[5], head[6], head[7]]) != MAGIC_COOKIE {
            return Err(DecodeError::BadMagicCookie);
        }
        let length = u16::from_be_bytes([head[2], head[3]]);
        if !length.is_multiple_of(4) {
            return Err(DecodeError::BadLength);
        }
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&head[8..HEADER_LEN]);
        Ok(Self {
            typ,
            length,
            tid: TransactionId(tid),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_codes_match_the_rfc() {
        let cases = [
            (0x0001, Class::Request, Method::Binding),
            (0x0101, Class::Success, Method::Binding),
            (0x0111, Class::Error, Method::Binding),
            (0x0003, Class::Request, Method::Allocate),
            (0x0103, Class::Success, Method::Allocate),
            (0x0113, Class::Error, Method::Allocate),
            (0x0004, Class::Request, Method::Refresh),
            (0x0016, Class::Indication, Method::Send),
            (0x0017, Class::Indication, Method::Data),
            (0x0008, Class::Request, Method::CreatePermission),
            (0x0109, Class::Success, Method::ChannelBind),
        ];
        for (raw, class, method) in cases {
            let t = MessageType::new(class, method);
            assert_eq!(t.to_u16(), raw, "{t:?}");
            assert_eq!(MessageType::from_u16(raw), Some(t));
        }
    }

    #[test]
    fn every_type_value_round_trips() {
        for raw in 0..=0x3FFFu16 {
            let t = MessageType::from_u16(raw).unwrap();
            assert_eq!(t.to_u16(), raw);
        }
        assert_eq!(MessageType::from_u16(0x4001), None);
        assert_eq!(MessageType::from_u16(0x8001), None);
    }

    #[test]
    fn header_rejects_non_stun() {
        let mut buf = [0u8; 20];
        buf[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
        buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert!(Header::decode(&buf).is_ok());
        assert_eq!(Header::decode(&buf[..19]), Err(DecodeError::TooShort));
        buf[3] = 2;
        assert_eq!(Header::decode(&buf), Err(DecodeError::BadLength));
        buf[3] = 0;
        buf[4] = 0;
        assert_eq!(Header::decode(&buf), Err(DecodeError::BadMagicCookie));
        buf[0] = 0x40;
        assert_eq!(Header::decode(&buf), Err(DecodeError::NotStun));
    }
}
