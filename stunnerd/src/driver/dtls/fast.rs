//! The receive fast path of an established DTLS association. `dtls` hands every datagram through
//! two tasks of its own and two channels (our queue ▶ its reader task ▶ its decrypted queue ▶ the
//! association task) with several allocations and async locks per record; once the handshake is
//! done, datagrams made only of epoch-1 ApplicationData records are instead decrypted (with our own
//! instance of the negotiated cipher suite and our own replay window) and fed to the engine right
//! in the listener task. Everything else (alerts, retransmitted handshake flights, a datagram
//! mixing record types) still goes through `dtls`, which also keeps writing all records we send.
//!
//! ```text
//!   listener task ─▶ Demux::route ─▶ FastPath::deliver ─▶ decrypt ─▶ Ingress::input ─▶ engine
//!                                        │  (not only app data)          └─ reply ─▶ association task ─▶ dtls write
//!                                        └─▶ client queue ─▶ dtls reader ─▶ association task (as before)
//! ```
//! Records the association received through `dtls` before the fast path was installed are not in
//! our replay window: a replay of one of those (sent during the handshake) is accepted once, which
//! TURN tolerates as it tolerates any duplicated datagram.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use dtls::cipher_suite::{CipherSuite, CipherSuiteId, cipher_suite_for_id};
use dtls::conn::DTLSConn;
use tokio::sync::mpsc;
use webrtc_util::replay_detector::{ReplayDetector, SlidingWindowDetector};

use super::super::ingress::Ingress;
use super::super::sink::{ClientSink, FrameSink};
use crate::engine::DropReason;

/// DTLS record header: type, version, epoch, 48-bit sequence number, length.
const HEADER: usize = 13;
/// Record content type of application data.
const APPLICATION_DATA: u8 = 23;
/// Replay window of our receive path, as `dtls`'s default.
const REPLAY_WINDOW: usize = 64;
/// Largest DTLS 1.2 sequence number.
const MAX_SEQUENCE: u64 = 0x0000_FFFF_FFFF_FFFF;
/// Smallest body of an encrypted (epoch ≥ 1) record: AES-GCM explicit nonce (8) and tag (16).
const MIN_ENCRYPTED: usize = 8 + 16;
/// Replies queued for the association task before new ones are dropped.
pub(super) const REPLIES: usize = 32;

/// The decrypting receive side of one established association, shared by the demultiplexer (which
/// feeds it) and the association task (which writes its replies and watches its activity).
pub(crate) struct FastPath {
    cipher: Box<dyn CipherSuite + Send + Sync>,
    replay: RefCell<SlidingWindowDetector>,
    ingress: Ingress,
    client: SocketAddr,
    sink: Rc<FrameSink>,
    local_ip: Option<IpAddr>,
    /// Responses to write back (written by the association task: a `dtls` write awaits).
    replies: mpsc::Sender<Vec<u8>>,
    out: RefCell<Vec<u8>>,
    /// When the last record was handled here (the idle timeout of the association).
    pub(super) last_active: Cell<Instant>,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// What the association task needs to build a [`FastPath`].
pub(super) struct Parts {
    pub(super) ingress: Ingress,
    pub(super) client: SocketAddr,
    pub(super) sink: Rc<FrameSink>,
    pub(super) local_ip: Option<IpAddr>,
    pub(super) replies: mpsc::Sender<Vec<u8>>,
}

impl FastPath {
    /// The fast path of the established `dtls` whose ServerHello chose cipher suite `suite`, or
    /// `None` when its keys cannot be had (the association then keeps the `dtls` path only).
    pub(super) async fn new(dtls: &DTLSConn, suite: u16, parts: Parts) -> Option<Self> {
        let keys = dtls.connection_state().await.key_log_data().ok()?;
        let mut cipher = cipher_suite_for_id(CipherSuiteId::from(suite)).ok()?;
        // A server: the client random is the remote one.
        cipher
            .init(
                &keys.master_secret,
                &keys.remote_random,
                &keys.local_random,
                false,
            )
            .ok()?;
        Some(Self {
            cipher,
            replay: RefCell::new(SlidingWindowDetector::new(REPLAY_WINDOW, MAX_SEQUENCE)),
            ingress: parts.ingress,
            client: parts.client,
            sink: parts.sink,
            local_ip: parts.local_ip,
            replies: parts.replies,
            out: RefCell::new(Vec::new()),
            last_active: Cell::new(Instant::now()),
        })
    }

    /// Handles datagram `pkt` when it is made only of epoch-1 ApplicationData records (true);
    /// false leaves it to `dtls`. Records that fail to decrypt or are replays are dropped.
    pub(crate) fn deliver(&self, pkt: &[u8]) -> bool {
        if !only_app_data(pkt) {
            return false;
        }
        let mut rest = pkt;
        while let Some((record, tail)) = split_record(rest) {
            rest = tail;
            self.record(record);
        }
        true
    }

    fn record(&self, record: &[u8]) {
        if record.len() < HEADER + MIN_ENCRYPTED {
            self.ingress.stats.drop_packet(DropReason::Malformed);
            return;
        }
        let seq = sequence_number(record);
        if !self.replay.borrow_mut().check(seq) {
            self.ingress.stats.drop_packet(DropReason::Malformed);
            return;
        }
        // A cipher suite implementation that panics on a hostile record must not take the
        // listener task down with it.
        let decrypted =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.cipher.decrypt(record)));
        let Ok(Ok(plain)) = decrypted else {
            self.ingress.stats.drop_packet(DropReason::Malformed);
            return;
        };
        self.replay.borrow_mut().accept();
        self.last_active.set(Instant::now());
        let frame = plain.get(HEADER..).unwrap_or_default();
        let mut out = self.out.borrow_mut();
        let sink = || ClientSink::Framed(self.sink.clone());
        let now = Instant::now();
        if self
            .ingress
            .input(now, self.client, self.local_ip, frame, sink, &mut out)
            && self.replies.try_send(out.clone()).is_err()
        {
            self.ingress.stats.drop_packet(DropReason::SendFailed);
        }
    }
}

/// The first record of `pkt` and what follows it, or `None` when no whole record is left.
fn split_record(pkt: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u16::from_be_bytes([*pkt.get(11)?, *pkt.get(12)?]) as usize;
    (pkt.len() >= HEADER + len).then(|| pkt.split_at(HEADER + len))
}

/// Whether `pkt` is one or more whole DTLS records whose encrypted ones (epoch ≥ 1) are long
/// enough to hold an AES-GCM nonce and tag: what may be handed to `dtls`, whose record decryption
/// assumes as much.
pub(super) fn well_formed(pkt: &[u8]) -> bool {
    let mut rest = pkt;
    while !rest.is_empty() {
        match split_record(rest) {
            Some((record, tail)) => {
                let epoch = u16::from_be_bytes([record[3], record[4]]);
                if epoch != 0 && record.len() < HEADER + MIN_ENCRYPTED {
                    return false;
                }
                rest = tail;
            }
            None => return false,
        }
    }
    !pkt.is_empty()
}

/// Whether `pkt` is one or more whole DTLS records, all ApplicationData of epoch 1.
pub(super) fn only_app_data(pkt: &[u8]) -> bool {
    let mut rest = pkt;
    while !rest.is_empty() {
        match split_record(rest) {
            Some(([APPLICATION_DATA, 0xfe, _, 0, 1, ..], tail)) => rest = tail,
            _ => return false,
        }
    }
    !pkt.is_empty()
}

/// The 48-bit sequence number of a whole record (its header is known to be there).
fn sequence_number(record: &[u8]) -> u64 {
    record.get(5..11).map_or(u64::MAX, |b| {
        b.iter().fold(0, |n, &x| n << 8 | u64::from(x))
    })
}

/// The cipher suite a ServerHello chose, when `pkt` (a datagram we send) starts with one: an epoch-0
/// handshake record whose first message is a ServerHello (type 2).
pub(super) fn server_hello_suite(pkt: &[u8]) -> Option<u16> {
    // Record header (13), handshake header (12), version (2), random (32), session id (1 + n).
    let [22, 0xfe, _, 0, 0, _, _, _, _, _, _, _, _, 2, ..] = pkt else {
        return None;
    };
    let sid = usize::from(*pkt.get(HEADER + 12 + 34)?);
    let at = HEADER + 12 + 35 + sid;
    Some(u16::from_be_bytes([*pkt.get(at)?, *pkt.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(typ: u8, epoch: u8, seq: u8, body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(body.len()).expect("len").to_be_bytes();
        let mut r = vec![
            typ, 0xfe, 0xfd, 0, epoch, 0, 0, 0, 0, 0, seq, len[0], len[1],
        ];
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn only_whole_epoch_one_app_data_datagrams_take_the_fast_path() {
        let app = record(APPLICATION_DATA, 1, 7, &[1; 40]);
        assert!(only_app_data(&app));
        assert_eq!(sequence_number(&app), 7);
        let two = [app.clone(), record(APPLICATION_DATA, 1, 8, &[2; 3])].concat();
        assert!(only_app_data(&two));
        let mixed = [app.clone(), record(21, 1, 9, &[2; 3])].concat();
        assert!(!only_app_data(&mixed));
        assert!(!only_app_data(&record(APPLICATION_DATA, 0, 1, &[1; 4])));
        assert!(!only_app_data(&app[..app.len() - 1]));
        assert!(!only_app_data(&[]));
    }

    #[test]
    fn short_encrypted_records_and_partial_records_are_not_well_formed() {
        assert!(well_formed(&record(APPLICATION_DATA, 1, 7, &[1; 24])));
        assert!(!well_formed(&record(APPLICATION_DATA, 1, 7, &[1; 23])));
        assert!(!well_formed(&record(21, 1, 7, &[1; 2])));
        assert!(well_formed(&record(22, 0, 7, &[1; 2])));
        let two = [
            record(22, 0, 1, &[1; 2]),
            record(APPLICATION_DATA, 1, 8, &[2; 3]),
        ]
        .concat();
        assert!(!well_formed(&two));
        let app = record(APPLICATION_DATA, 1, 7, &[1; 40]);
        assert!(!well_formed(&app[..app.len() - 1]));
        assert!(!well_formed(&[]));
    }

    #[test]
    fn server_hello_suite_is_read_after_the_session_id() {
        let mut body = vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xfd];
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[3, 1, 2, 3, 0xc0, 0x2b, 0]);
        let hello = record(22, 0, 1, &body);
        assert_eq!(server_hello_suite(&hello), Some(0xc02b));
        assert_eq!(server_hello_suite(&hello[..hello.len() - 3]), None);
        assert_eq!(server_hello_suite(&record(22, 1, 1, &body)), None);
    }
}
