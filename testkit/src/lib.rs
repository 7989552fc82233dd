//! Blocking, std-only helpers shared by the integration tests of stunnerd, the operator and the
//! scaler (a `[dev-dependencies]` entry only; never part of a shipped binary). Everything talks
//! to 127.0.0.1 and every wait is bounded.
//!
//! ```text
//!   turn   a raw TURN-UDP client over `proto::turn`: Allocate with the 401 challenge and
//!          long-term credentials, ChannelBind, ChannelData, Refresh(0); a challenge probe
//!   peer   a threaded UDP echo peer, stopped and joined on drop
//!   http   a one-shot HTTP/1.1 client: (status, body), (0, "") when nothing answers
//! ```
#![forbid(unsafe_code)]

pub mod http;
pub mod peer;
pub mod turn;

use std::net::{TcpListener, UdpSocket};

/// A loopback port free for both UDP and TCP right now (bind, then release): a server started
/// on it next can take both transports on the same number.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_on_both_transports() {
        let port = free_port();
        assert_ne!(port, 0);
        let _udp = UdpSocket::bind(("127.0.0.1", port)).expect("udp");
        let _tcp = TcpListener::bind(("127.0.0.1", port)).expect("tcp");
    }
}
