//! Address attribute values: MAPPED-ADDRESS (plain) and the XOR-*-ADDRESS family (RFC 8489 §14.1-14.2),
//! where the port is XORed with the top half of the magic cookie and the address with the cookie
//! (IPv4) or the cookie followed by the transaction id (IPv6).
//!
//! ```text
//! | 0x00 | family | port (16) | address (32 or 128 bits) |
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Family, MAGIC_COOKIE, TransactionId};

/// The XOR mask for an IPv6 address: cookie followed by the transaction id.
#[inline]
fn v6_mask(tid: &TransactionId) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(&tid.0);
    mask
}

/// Decodes an address value; `xor` is the transaction id for XOR-*-ADDRESS, `None` for MAPPED-ADDRESS.
pub(crate) fn decode(
    value: &[u8],
    xor: Option<&TransactionId>,
) -> Result<SocketAddr, &'static str> {
    let Some((head, addr)) = value.split_first_chunk::<4>() else {
        return Err("shorter than 4 bytes");
    };
    let mut port = u16::from_be_bytes([head[2], head[3]]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match (Family::from_u8(head[1]), addr.len()) {
        (Some(Family::V4), 4) => {
            let mut raw = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
            if xor.is_some() {
                raw ^= MAGIC_COOKIE;
            }
            IpAddr::V4(Ipv4Addr::from(raw))
        }
        (Some(Family::V6), 16) => {
            let mut raw = [0u8; 16];
            raw.copy_from_slice(addr);
            if let Some(tid) = xor {
                let mask = v6_mask(tid);
                raw.iter_mut().zip(mask).for_each(|(b, m)| *b ^= m);
            }
            IpAddr::V6(Ipv6Addr::from(raw))
        }
        (None, _) => return Err("unknown address family"),
        _ => return Err("address length does not match family"),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Appends the value (8 bytes for IPv4, 20 for IPv6) of an address attribute.
pub(crate) fn encode(out: &mut Vec<u8>, addr: SocketAddr, xor: Option<&TransactionId>) {
    let port_mask = if xor.is_some() {
        (MAGIC_COOKIE >> 16) as u16
    } else {
        0
    };
    out.extend_from_slice(&[0, Family::of(&addr).to_u8()]);
    out.extend_from_slice(&(addr.port() ^ port_mask).to_be_bytes());
    match addr {
        SocketAddr::V4(a) => {
            let mask = if xor.is_some() { MAGIC_COOKIE } else { 0 };
            out.extend_from_slice(&(u32::from(*a.ip()) ^ mask).to_be_bytes());
        }
        SocketAddr::V6(a) => {
            let mut raw = a.ip().octets();
            if let Some(tid) = xor {
                raw.iter_mut().zip(v6_mask(tid)).for_each(|(b, m)| *b ^= m);
            }
            out.extend_from_slice(&raw);
        }
    }
}

/// Encoded value length of an address attribute.
#[inline]
pub(crate) const fn value_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_plain_and_xor() {
        let tid = TransactionId([7; 12]);
        for addr in [
            "192.0.2.1:32853",
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            "0.0.0.0:0",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            for xor in [None, Some(&tid)] {
                let mut out = Vec::new();
                encode(&mut out, addr, xor);
                assert_eq!(out.len(), value_len(&addr));
                assert_eq!(decode(&out, xor), Ok(addr));
            }
        }
    }

    #[test]
    fn rejects_bad_values() {
        assert!(decode(&[0, 1, 0], None).is_err());
        assert!(decode(&[0, 3, 0, 0, 1, 2, 3, 4], None).is_err());
        assert!(decode(&[0, 2, 0, 0, 1, 2, 3, 4], None).is_err());
        assert!(decode(&[0, 1, 0, 0, 1, 2, 3], None).is_err());
    }
}
