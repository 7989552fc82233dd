//! A minimal blocking TURN-UDP client over `proto::turn`, for tests that need exact control over
//! packet timing: Allocate with the 401 challenge and long-term credentials, ChannelBind,
//! ChannelData both ways, Refresh with LIFETIME 0 to release, and a probe that a listener
//! answers at all. One socket per allocation (allocations are keyed by the client's 5-tuple).
//! Every wait is bounded; requests are retransmitted on loss; a refused request panics with the
//! server's error code, as a test wants.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proto::turn::{
    ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr,
    encode_channel_data, long_term_key,
};

/// Attempts per transaction and how long each waits for the answer.
const TRIES: usize = 5;
const TRY_TIMEOUT: Duration = Duration::from_millis(400);
const ALLOCATE: MessageType = MessageType::new(Class::Request, Method::Allocate);
const CHANNEL_BIND: MessageType = MessageType::new(Class::Request, Method::ChannelBind);
const REFRESH: MessageType = MessageType::new(Class::Request, Method::Refresh);
/// How long [`RawAlloc::ping`] waits for each echo.
const PING_WAIT: Duration = Duration::from_secs(1);

/// What arrived from the server after a ChannelBind.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// ChannelData on `channel` carrying the payload.
    Channel(u16, Vec<u8>),
    /// A Data indication carrying the payload.
    Indication(Vec<u8>),
    /// Nothing within the wait.
    Nothing,
}

/// An authenticated allocation on a TURN-UDP listener; the socket must stay open (the value
/// held) for the allocation to stay ours.
#[derive(Debug)]
pub struct RawAlloc {
    /// The client socket (connected to the server).
    pub sock: UdpSocket,
    /// XOR-RELAYED-ADDRESS: the relayed transport address the server gave us.
    pub relay: SocketAddr,
    user: String,
    realm: String,
    nonce: String,
    key: [u8; 16],
}

/// A transaction id unique within the test process: process id and a counter.
fn tid() -> TransactionId {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let mut id = [7u8; 12];
    id[..4].copy_from_slice(&std::process::id().to_be_bytes());
    id[4..8].copy_from_slice(&SEQ.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    TransactionId(id)
}

/// Sends the request `build` writes until an answer with its transaction id arrives.
fn transact(sock: &UdpSocket, build: impl Fn(&mut Vec<u8>, TransactionId)) -> Vec<u8> {
    let id = tid();
    let mut out = Vec::with_capacity(256);
    build(&mut out, id);
    let mut buf = vec![0u8; 1500];
    sock.set_read_timeout(Some(TRY_TIMEOUT)).expect("timeout");
    for _ in 0..TRIES {
        sock.send(&out).expect("send TURN request");
        let deadline = Instant::now() + TRY_TIMEOUT;
        while Instant::now() < deadline {
            let Ok(n) = sock.recv(&mut buf) else { break };
            if Message::decode(&buf[..n]).is_ok_and(|m| m.transaction_id() == id) {
                return buf[..n].to_vec();
            }
        }
    }
    panic!(
        "no TURN answer from {:?} after {TRIES} tries",
        sock.peer_addr()
    );
}

/// An unauthenticated Allocate on `sock`: the server's answer (a 401 challenge if it is sane).
fn bare_allocate(sock: &UdpSocket) -> Vec<u8> {
    transact(sock, |out, id| {
        let mut b = MessageBuilder::new(out, ALLOCATE, id);
        b.requested_transport(attr::TRANSPORT_UDP);
        b.finish().expect("encode");
    })
}

/// Checks `answer` is a success with valid integrity under `key`.
fn expect_success(answer: &[u8], key: &[u8], what: &str) {
    let m = Message::decode(answer).expect("decode answer");
    assert_eq!(
        m.message_type().class,
        Class::Success,
        "{what} refused: {:?}",
        m.error_code()
    );
    m.verify_integrity(key).expect("answer integrity");
}

/// A client socket on 127.0.0.1 connected to `server`.
fn connect(server: SocketAddr) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind client");
    sock.connect(server).expect("connect client");
    sock
}

/// Whether a TURN-UDP listener serves at `server`: an unauthenticated Allocate draws the 401
/// challenge. Panics when nothing answers within the retransmissions.
pub fn challenged(server: SocketAddr) -> bool {
    let answer = bare_allocate(&connect(server));
    Message::decode(&answer).is_ok_and(|m| m.error_code().map(|e| e.0) == Some(401))
}

impl RawAlloc {
    /// Allocates on `server` with the static credentials `user`/`pass`.
    pub fn new(server: SocketAddr, user: &str, pass: &str) -> Self {
        let sock = connect(server);
        let challenge = bare_allocate(&sock);
        let m = Message::decode(&challenge).expect("decode challenge");
        assert_eq!(
            m.message_type().class,
            Class::Error,
            "unauthenticated Allocate"
        );
        assert_eq!(m.error_code().map(|e| e.0), Some(401), "401 challenge");
        let realm = m.realm().expect("REALM").to_owned();
        let nonce = m.nonce().expect("NONCE").to_owned();
        let key = long_term_key(user, &realm, pass);
        let mut a = Self {
            sock,
            relay: SocketAddr::from(([0, 0, 0, 0], 0)),
            user: user.to_owned(),
            realm,
            nonce,
            key,
        };
        let answer = a.request(ALLOCATE, |b| {
            b.requested_transport(attr::TRANSPORT_UDP);
        });
        expect_success(&answer, &a.key, "Allocate");
        a.relay = Message::decode(&answer)
            .expect("decode")
            .xor_relayed_address()
            .expect("XOR-RELAYED-ADDRESS");
        a
    }

    /// An authenticated request with the attributes `attrs` adds; returns the answer.
    fn request(&self, typ: MessageType, attrs: impl Fn(&mut MessageBuilder<'_>)) -> Vec<u8> {
        transact(&self.sock, |out, id| {
            let mut b = MessageBuilder::new(out, typ, id);
            attrs(&mut b);
            b.username(&self.user).realm(&self.realm).nonce(&self.nonce);
            b.finish_with_integrity(&self.key).expect("encode");
        })
    }

    /// Binds `channel` to `peer` and checks the success response.
    pub fn channel_bind(&self, channel: u16, peer: SocketAddr) {
        let answer = self.request(CHANNEL_BIND, |b| {
            b.channel_number(channel).xor_peer_address(peer);
        });
        expect_success(&answer, &self.key, "ChannelBind");
    }

    /// Deletes the allocation (Refresh with LIFETIME 0) and checks the server confirms it.
    pub fn release(self) {
        let answer = self.request(REFRESH, |b| {
            b.lifetime(0);
        });
        let m = Message::decode(&answer).expect("decode Refresh answer");
        assert_eq!(
            m.message_type().class,
            Class::Success,
            "Refresh(0) refused: {:?}",
            m.error_code()
        );
    }

    /// Sends `data` as ChannelData on `channel`.
    pub fn send_channel(&self, channel: u16, data: &[u8]) {
        let mut out = Vec::with_capacity(data.len() + 8);
        encode_channel_data(&mut out, channel, data, false).expect("encode");
        self.sock.send(&out).expect("send ChannelData");
    }

    /// The first relayed packet (ChannelData or Data indication) within `wait`.
    pub fn receive(&self, wait: Duration) -> Received {
        let mut buf = [0u8; 1500];
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("timeout");
            let Ok(n) = self.sock.recv(&mut buf) else {
                break;
            };
            if let Ok(cd) = ChannelData::decode(&buf[..n]) {
                return Received::Channel(cd.channel, cd.data.to_vec());
            }
            if let Ok(m) = Message::decode(&buf[..n])
                && m.message_type() == MessageType::new(Class::Indication, Method::Data)
            {
                return Received::Indication(m.data().unwrap_or_default().to_vec());
            }
        }
        Received::Nothing
    }

    /// Sends `n` distinct ChannelData packets on the bound `channel`, one at a time, and counts
    /// the echoes that come back on it, each awaited for at most 1 s (an echo peer is bound).
    pub fn ping(&self, channel: u16, n: u32) -> u32 {
        let mut out = Vec::with_capacity(64);
        let mut buf = [0u8; 1500];
        self.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut back = 0;
        for i in 0..n {
            let payload = format!("ping-{i}-{:?}", Instant::now());
            encode_channel_data(&mut out, channel, payload.as_bytes(), false).expect("encode");
            self.sock.send(&out).expect("send ChannelData");
            let deadline = Instant::now() + PING_WAIT;
            while Instant::now() < deadline {
                let Ok(len) = self.sock.recv(&mut buf) else {
                    continue;
                };
                if ChannelData::decode(&buf[..len])
                    .is_ok_and(|c| c.channel == channel && c.data == payload.as_bytes())
                {
                    back += 1;
                    break;
                }
            }
        }
        back
    }
}

#[cfg(test)]
mod tests;
