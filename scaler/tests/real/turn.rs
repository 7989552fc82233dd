//! A minimal sans-IO TURN client over `proto::turn` on a tokio UDP socket: just enough to hold
//! real allocations on a stunnerd (Allocate, 401 challenge, authenticated Allocate, and a
//! Refresh with lifetime 0 to release). One socket per allocation (allocations are keyed by the
//! client's 5-tuple); retransmits on loss, every wait bounded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proto::turn::{
    Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr, long_term_key,
};
use tokio::net::UdpSocket;

/// Attempts per transaction and how long each waits for the answer.
const TRIES: usize = 5;
const TRY_TIMEOUT: Duration = Duration::from_millis(400);

/// A live allocation: the socket must stay open for the allocation to stay ours.
#[derive(Debug)]
pub struct Allocation {
    sock: UdpSocket,
    key: [u8; 16],
    creds: Creds,
    /// The relayed transport address the server gave us.
    pub relay: SocketAddr,
}

/// Long-term credentials plus the server's realm and nonce.
#[derive(Debug, Clone)]
struct Creds {
    username: String,
    realm: String,
    nonce: String,
}

/// A fresh transaction id: process id, a counter and the clock, unique within the test run.
fn tid() -> TransactionId {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut id = [0u8; 12];
    id[..4].copy_from_slice(&std::process::id().to_be_bytes());
    id[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    id[8..].copy_from_slice(&t.to_be_bytes());
    TransactionId(id)
}

/// Sends `req` (built by `build` with a fresh transaction id) until an answer with the same id
/// arrives; returns the answer's bytes.
async fn transact(sock: &UdpSocket, build: impl Fn(&mut Vec<u8>, TransactionId)) -> Vec<u8> {
    let id = tid();
    let mut out = Vec::with_capacity(256);
    build(&mut out, id);
    assert!(!out.is_empty(), "request did not encode");
    let mut buf = vec![0u8; 1500];
    for _ in 0..TRIES {
        sock.send(&out).await.expect("send TURN request");
        let deadline = tokio::time::Instant::now() + TRY_TIMEOUT;
        while let Ok(got) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            let n = got.expect("recv TURN answer");
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

const ALLOCATE: MessageType = MessageType::new(Class::Request, Method::Allocate);
const REFRESH: MessageType = MessageType::new(Class::Request, Method::Refresh);

/// Makes one allocation on the TURN-UDP listener at `server` with static credentials.
pub async fn allocate(server: SocketAddr, username: &str, password: &str) -> Allocation {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    sock.connect(server).await.expect("connect client");
    let challenge = transact(&sock, |out, id| {
        let mut b = MessageBuilder::new(out, ALLOCATE, id);
        b.requested_transport(attr::TRANSPORT_UDP);
        b.finish().expect("encode");
    })
    .await;
    let m = Message::decode(&challenge).expect("decode challenge");
    assert_eq!(
        m.message_type().class,
        Class::Error,
        "unauthenticated Allocate"
    );
    assert_eq!(m.error_code().map(|e| e.0), Some(401), "401 challenge");
    let creds = Creds {
        username: username.to_owned(),
        realm: m.realm().expect("REALM").to_owned(),
        nonce: m.nonce().expect("NONCE").to_owned(),
    };
    let key = long_term_key(username, &creds.realm, password);
    let answer = transact(&sock, |out, id| {
        let mut b = MessageBuilder::new(out, ALLOCATE, id);
        b.requested_transport(attr::TRANSPORT_UDP);
        authenticate(&mut b, &creds);
        b.finish_with_integrity(&key).expect("encode");
    })
    .await;
    let m = Message::decode(&answer).expect("decode Allocate answer");
    assert_eq!(
        m.message_type().class,
        Class::Success,
        "Allocate refused: {:?}",
        m.error_code()
    );
    m.verify_integrity(&key).expect("answer integrity");
    let relay = m.xor_relayed_address().expect("XOR-RELAYED-ADDRESS");
    Allocation {
        sock,
        key,
        creds,
        relay,
    }
}

fn authenticate(b: &mut MessageBuilder<'_>, creds: &Creds) {
    b.username(&creds.username)
        .realm(&creds.realm)
        .nonce(&creds.nonce);
}

impl Allocation {
    /// Deletes the allocation (Refresh with LIFETIME 0) and waits for the server to confirm.
    pub async fn release(self) {
        let answer = transact(&self.sock, |out, id| {
            let mut b = MessageBuilder::new(out, REFRESH, id);
            b.lifetime(0);
            authenticate(&mut b, &self.creds);
            b.finish_with_integrity(&self.key).expect("encode");
        })
        .await;
        let m = Message::decode(&answer).expect("decode Refresh answer");
        assert_eq!(
            m.message_type().class,
            Class::Success,
            "Refresh(0) refused: {:?}",
            m.error_code()
        );
    }
}
