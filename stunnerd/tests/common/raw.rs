//! A minimal blocking TURN-UDP client over `proto::turn` (Allocate with the 401 challenge,
//! ChannelBind, ChannelData) and a threaded UDP echo peer, for tests that need exact control over
//! packet timing. Every wait is bounded; requests are retransmitted on loss.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proto::turn::{
    ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr,
    long_term_key,
};

const TRIES: usize = 5;
const TRY_TIMEOUT: Duration = Duration::from_millis(400);
const ALLOCATE: MessageType = MessageType::new(Class::Request, Method::Allocate);
const CHANNEL_BIND: MessageType = MessageType::new(Class::Request, Method::ChannelBind);

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

/// An authenticated allocation on a TURN-UDP listener.
#[derive(Debug)]
pub struct RawAlloc {
    /// The client socket (connected to the server).
    pub sock: UdpSocket,
    /// XOR-RELAYED-ADDRESS.
    pub relay: SocketAddr,
    user: String,
    realm: String,
    nonce: String,
    key: [u8; 16],
}

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
    panic!("no TURN answer after {TRIES} tries");
}

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

impl RawAlloc {
    /// Allocates on `server` with the static credentials `user`/`pass`.
    pub fn new(server: SocketAddr, user: &str, pass: &str) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind client");
        sock.connect(server).expect("connect client");
        let challenge = transact(&sock, |out, id| {
            let mut b = MessageBuilder::new(out, ALLOCATE, id);
            b.requested_transport(attr::TRANSPORT_UDP);
            b.finish().expect("encode");
        });
        let m = Message::decode(&challenge).expect("decode challenge");
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

    /// Sends `data` as ChannelData on `channel`.
    pub fn send_channel(&self, channel: u16, data: &[u8]) {
        let mut out = Vec::with_capacity(data.len() + 8);
        proto::turn::encode_channel_data(&mut out, channel, data, false).expect("encode");
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
}

/// A UDP echo peer on 127.0.0.1 running on its own thread, stopped and joined on drop.
pub struct EchoPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoPeer {
    /// Starts the peer.
    pub fn start() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind peer");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
