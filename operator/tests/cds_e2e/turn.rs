//! A minimal blocking TURN-UDP client over `proto::turn` (Allocate with the 401 challenge,
//! ChannelBind, ChannelData both ways) and a UDP echo peer, for the CDS end-to-end test. Every
//! wait is bounded; requests are retransmitted on loss.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proto::turn::{
    ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr,
    encode_channel_data, long_term_key,
};

/// Attempts per transaction and how long each waits for the answer.
const TRIES: usize = 5;
const TRY_TIMEOUT: Duration = Duration::from_millis(400);
/// The one channel the client binds.
const CHANNEL: u16 = 0x4000;
const ALLOCATE: MessageType = MessageType::new(Class::Request, Method::Allocate);
const CHANNEL_BIND: MessageType = MessageType::new(Class::Request, Method::ChannelBind);

/// A live allocation with a channel bound to one peer.
#[derive(Debug)]
pub(crate) struct Allocation {
    sock: UdpSocket,
    /// The relayed transport address the server gave us.
    pub(crate) relay: SocketAddr,
}

fn tid() -> TransactionId {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let mut id = [0u8; 12];
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

/// Checks `answer` is a success with valid integrity.
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

/// Allocates on the TURN-UDP listener `server` with static credentials and binds a channel to
/// `peer`.
pub(crate) fn allocate(server: SocketAddr, user: &str, pass: &str, peer: SocketAddr) -> Allocation {
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
    let auth = |b: &mut MessageBuilder<'_>| {
        b.username(user).realm(&realm).nonce(&nonce);
    };
    let answer = transact(&sock, |out, id| {
        let mut b = MessageBuilder::new(out, ALLOCATE, id);
        b.requested_transport(attr::TRANSPORT_UDP);
        auth(&mut b);
        b.finish_with_integrity(&key).expect("encode");
    });
    expect_success(&answer, &key, "Allocate");
    let relay = Message::decode(&answer)
        .expect("decode")
        .xor_relayed_address()
        .expect("XOR-RELAYED-ADDRESS");
    let answer = transact(&sock, |out, id| {
        let mut b = MessageBuilder::new(out, CHANNEL_BIND, id);
        b.channel_number(CHANNEL).xor_peer_address(peer);
        auth(&mut b);
        b.finish_with_integrity(&key).expect("encode");
    });
    expect_success(&answer, &key, "ChannelBind");
    Allocation { sock, relay }
}

/// Whether a TURN-UDP listener serves at `server`: an unauthenticated Allocate draws the 401
/// challenge.
pub(crate) fn challenged(server: SocketAddr) -> bool {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind probe");
    sock.connect(server).expect("connect probe");
    let answer = transact(&sock, |out, id| {
        let mut b = MessageBuilder::new(out, ALLOCATE, id);
        b.requested_transport(attr::TRANSPORT_UDP);
        b.finish().expect("encode");
    });
    Message::decode(&answer).is_ok_and(|m| m.error_code().map(|e| e.0) == Some(401))
}

impl Allocation {
    /// Sends `n` ChannelData packets one at a time and counts the echoes that come back, each
    /// awaited for at most 1 s.
    pub(crate) fn ping(&self, n: u32) -> u32 {
        let mut out = Vec::with_capacity(64);
        let mut buf = [0u8; 1500];
        self.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut back = 0;
        for i in 0..n {
            let payload = format!("ping-{i}-{:?}", Instant::now());
            encode_channel_data(&mut out, CHANNEL, payload.as_bytes(), false).expect("encode");
            self.sock.send(&out).expect("send ChannelData");
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                let Ok(len) = self.sock.recv(&mut buf) else {
                    continue;
                };
                if ChannelData::decode(&buf[..len])
                    .is_ok_and(|c| c.channel == CHANNEL && c.data == payload.as_bytes())
                {
                    back += 1;
                    break;
                }
            }
        }
        back
    }
}

/// A UDP echo peer on 127.0.0.1, stopped and joined on drop.
pub(crate) struct EchoPeer {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoPeer {
    /// Starts the peer.
    pub(crate) fn start() -> Self {
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
