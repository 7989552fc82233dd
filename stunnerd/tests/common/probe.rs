//! A TURN-UDP client for hostile-client and open-relay tests: every request's answer is returned
//! (error code or success) instead of asserted, and the peer-bound operations (CreatePermission,
//! ChannelBind, Send indication, ChannelData) are all exposed. Loopback only, bounded waits.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proto::turn::{
    ChannelData, Class, Family, Message, MessageBuilder, MessageType, Method, TransactionId, attr,
    encode_channel_data, long_term_key,
};

const TRIES: usize = 4;
const TRY_TIMEOUT: Duration = Duration::from_millis(400);

fn tid() -> TransactionId {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let mut id = [9u8; 12];
    id[..4].copy_from_slice(&std::process::id().to_be_bytes());
    id[4..8].copy_from_slice(&SEQ.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    TransactionId(id)
}

/// The answer to a request: `Ok(message bytes)` on success, `Err(code)` on an error response
/// (0 = no answer at all).
pub type Answer = Result<Vec<u8>, u16>;

/// Sends the request `build` writes on `sock` until an answer with its transaction id arrives.
pub fn transact(sock: &UdpSocket, build: impl Fn(&mut Vec<u8>, TransactionId)) -> Answer {
    let id = tid();
    let mut out = Vec::with_capacity(256);
    build(&mut out, id);
    let mut buf = vec![0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    for _ in 0..TRIES {
        sock.send(&out).expect("send");
        let deadline = Instant::now() + TRY_TIMEOUT;
        while Instant::now() < deadline {
            let Ok(n) = sock.recv(&mut buf) else { continue };
            let Ok(m) = Message::decode(&buf[..n]) else {
                continue;
            };
            if m.transaction_id() != id {
                continue;
            }
            return match m.message_type().class {
                Class::Success => Ok(buf[..n].to_vec()),
                _ => Err(m.error_code().map_or(1, |e| e.0)),
            };
        }
    }
    Err(0)
}

/// An allocation made with static credentials, or the error code that refused it.
pub struct Client {
    pub sock: UdpSocket,
    pub relay: SocketAddr,
    user: String,
    realm: String,
    nonce: String,
    key: [u8; 16],
}

impl Client {
    /// Allocates on `server` (IPv4 relay) from a fresh 127.0.0.1 socket.
    pub fn allocate(server: SocketAddr, user: &str, pass: &str) -> Result<Self, u16> {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.connect(server).expect("connect");
        Self::allocate_on(sock, user, pass)
    }

    /// Allocates from `sock` (connected to the server).
    pub fn allocate_on(sock: UdpSocket, user: &str, pass: &str) -> Result<Self, u16> {
        let alloc = MessageType::new(Class::Request, Method::Allocate);
        let (realm, nonce) = realm_and_nonce(&sock);
        let key = long_term_key(user, &realm, pass);
        let mut c = Self {
            sock,
            relay: SocketAddr::from(([0, 0, 0, 0], 0)),
            user: user.into(),
            realm,
            nonce,
            key,
        };
        let answer = c.request(alloc, |b| {
            b.requested_transport(attr::TRANSPORT_UDP);
        })?;
        c.relay = Message::decode(&answer)
            .expect("decode")
            .xor_relayed_address()
            .expect("XOR-RELAYED-ADDRESS");
        Ok(c)
    }

    /// An authenticated request; the answer or its error code.
    pub fn request(&self, typ: MessageType, attrs: impl Fn(&mut MessageBuilder<'_>)) -> Answer {
        transact(&self.sock, |out, id| {
            let mut b = MessageBuilder::new(out, typ, id);
            attrs(&mut b);
            b.username(&self.user).realm(&self.realm).nonce(&self.nonce);
            b.finish_with_integrity(&self.key).expect("encode");
        })
    }

    /// CreatePermission for `peer`: `Ok` or the error code.
    pub fn permit(&self, peer: SocketAddr) -> Result<(), u16> {
        let typ = MessageType::new(Class::Request, Method::CreatePermission);
        self.request(typ, |b| {
            b.xor_peer_address(peer);
        })
        .map(drop)
    }

    /// ChannelBind `channel` to `peer`: `Ok` or the error code.
    pub fn bind(&self, channel: u16, peer: SocketAddr) -> Result<(), u16> {
        let typ = MessageType::new(Class::Request, Method::ChannelBind);
        self.request(typ, |b| {
            b.channel_number(channel).xor_peer_address(peer);
        })
        .map(drop)
    }

    /// A Send indication of `data` to `peer`.
    pub fn send_to(&self, peer: SocketAddr, data: &[u8]) {
        let mut out = Vec::new();
        let typ = MessageType::new(Class::Indication, Method::Send);
        let mut b = MessageBuilder::new(&mut out, typ, tid());
        b.xor_peer_address(peer).data(data);
        b.finish().expect("encode");
        self.sock.send(&out).expect("send");
    }

    /// ChannelData of `data` on `channel`.
    pub fn send_channel(&self, channel: u16, data: &[u8]) {
        let mut out = Vec::new();
        encode_channel_data(&mut out, channel, data, false).expect("encode");
        self.sock.send(&out).expect("send");
    }

    /// Payloads relayed to this client (ChannelData or Data indications) within `wait`.
    pub fn received(&self, wait: Duration) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + wait;
        self.sock
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        while Instant::now() < deadline {
            let Ok(n) = self.sock.recv(&mut buf) else {
                continue;
            };
            if let Ok(cd) = ChannelData::decode(&buf[..n]) {
                got.push(cd.data.to_vec());
            } else if let Ok(m) = Message::decode(&buf[..n])
                && m.message_type() == MessageType::new(Class::Indication, Method::Data)
            {
                got.push(m.data().unwrap_or_default().to_vec());
            }
        }
        got
    }

    /// Relays `n` ChannelData packets to the echo peer bound to `channel`; the echoes counted.
    pub fn echo(&self, channel: u16, n: usize) -> usize {
        let mut back = 0;
        for i in 0..n {
            let payload = format!("legit-{i}");
            self.send_channel(channel, payload.as_bytes());
            if self
                .received(Duration::from_millis(300))
                .iter()
                .any(|p| p == payload.as_bytes())
            {
                back += 1;
            }
        }
        back
    }
}

/// REALM and NONCE of a fresh 401 challenge on `sock`.
fn realm_and_nonce(sock: &UdpSocket) -> (String, String) {
    let id = tid();
    let mut out = Vec::new();
    let alloc = MessageType::new(Class::Request, Method::Allocate);
    let mut b = MessageBuilder::new(&mut out, alloc, id);
    b.requested_transport(attr::TRANSPORT_UDP);
    b.finish().expect("encode");
    let mut buf = [0u8; 1500];
    for _ in 0..TRIES * 4 {
        sock.send(&out).expect("send");
        let deadline = Instant::now() + TRY_TIMEOUT;
        while Instant::now() < deadline {
            let Ok(n) = sock.recv(&mut buf) else { continue };
            if let Ok(m) = Message::decode(&buf[..n])
                && m.transaction_id() == id
            {
                return (
                    m.realm().expect("REALM").to_owned(),
                    m.nonce().expect("NONCE").to_owned(),
                );
            }
        }
    }
    panic!("no challenge");
}

/// The address family of `a` (for table rows).
pub fn family(a: &SocketAddr) -> Family {
    Family::of(a)
}

/// A UDP socket listening on `addr` that counts what it receives (non-blocking reads).
pub struct Sink {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl Sink {
    pub fn bind(addr: &str) -> Self {
        let sock = UdpSocket::bind(addr).expect("bind sink");
        sock.set_nonblocking(true).expect("nonblocking");
        let addr = sock.local_addr().expect("addr");
        Self { sock, addr }
    }

    /// Datagrams received so far (drains the socket).
    pub fn count(&self) -> usize {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while self.sock.recv_from(&mut buf).is_ok() {
            n += 1;
        }
        n
    }
}
