//! A sans-IO TURN client for one allocation (RFC 8656): it never touches a socket or reads the clock.
//! The driver (the swarm's event loop, or turncat's tokio task) feeds it received bytes and the
//! current time, sends what [`TurnClient::poll_transmit`] yields, and wakes it at
//! [`TurnClient::poll_timeout`].
//!
//! ```text
//!  Allocate ──401──▶ Allocate+auth ──200──▶ ChannelBind | CreatePermission ──200──▶ Ready
//!      │ (438: new nonce, retry)   │                                                   │
//!      └──── error / timeout ──────┴──────────────────▶ Failed        Refresh, re-bind ┘
//!  close(): Refresh(lifetime 0) ──▶ Closed
//! ```
//!
//! Data packets bypass the state machine's allocations: [`TurnClient::encode_data`] writes a
//! ChannelData frame (or a Send indication) into the caller's reused buffer, and
//! [`TurnClient::handle_input`] returns the payload of a ChannelData frame or Data indication as a
//! slice of the input.

pub mod creds;
pub mod stream;
#[cfg(test)]
mod tests;
mod types;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proto::turn::{
    self, Class, Framing, Message, MessageBuilder, MessageType, Method, TransactionId, code,
};

pub use creds::{AuthSpec, Credentials};
pub use types::{ClientConfig, DataMode, Event, Failure, FailureKind, Input, Phase, Stage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Allocate,
    Bind,
    Refresh(u32),
}

impl Request {
    fn stage(self) -> Stage {
        match self {
            Self::Allocate => Stage::Allocate,
            Self::Bind => Stage::Permission,
            Self::Refresh(_) => Stage::Refresh,
        }
    }
}

/// An outstanding request kept for retransmission.
#[derive(Debug)]
struct Transaction {
    tid: TransactionId,
    request: Request,
    bytes: Vec<u8>,
    first_sent: Instant,
    deadline: Instant,
    attempts: u32,
    rto: Duration,
}

/// The state of one TURN allocation.
#[derive(Debug)]
pub struct TurnClient {
    cfg: ClientConfig,
    phase: Phase,
    started: Instant,
    realm: String,
    nonce: String,
    key: Option<[u8; 16]>,
    stale_nonces: u32,
    pending: Vec<Transaction>,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    relayed: Option<SocketAddr>,
    refresh_at: Option<Instant>,
    rebind_at: Option<Instant>,
    tid_seed: [u8; 4],
    tid_counter: u64,
}

impl TurnClient {
    /// Creates the client and queues the first (unauthenticated) Allocate request.
    pub fn new(cfg: ClientConfig, now: Instant) -> Self {
        let mut c = Self {
            cfg,
            phase: Phase::Allocating,
            started: now,
            realm: String::new(),
            nonce: String::new(),
            key: None,
            stale_nonces: 0,
            pending: Vec::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            relayed: None,
            refresh_at: None,
            rebind_at: None,
            tid_seed: rand::random(),
            tid_counter: 0,
        };
        c.send_request(now, Request::Allocate);
        c
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once data can be sent.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// The relayed transport address, once allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed
    }

    /// The configuration this client runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// Moves the next message to send into `out` (cleared first); false when there is none.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        match self.outbox.pop_front() {
            Some(msg) => {
                out.clear();
                out.extend_from_slice(&msg);
                true
            }
            None => false,
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next (None: nothing scheduled).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retransmit = self.pending.iter().map(|t| t.deadline).min();
        [retransmit, self.refresh_at, self.rebind_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Retransmits, times out, and refreshes as due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.retransmit_due(now);
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.send_request(now, Request::Refresh(self.cfg.lifetime));
        }
        if self.rebind_at.is_some_and(|t| t <= now) {
            self.rebind_at = None;
            self.send_request(now, Request::Bind);
        }
    }

    /// Marks the allocation failed because the transport broke (driver-detected).
    pub fn fail_transport(&mut self, reason: impl Into<String>) {
        self.fail_driver(FailureKind::Io, reason.into());
    }

    /// Marks the allocation failed because its TLS/DTLS layer failed (driver-detected).
    pub fn fail_tls(&mut self, reason: impl Into<String>) {
        self.fail_driver(FailureKind::Tls, reason.into());
    }

    fn fail_driver(&mut self, kind: FailureKind, reason: String) {
        let stage = if self.relayed.is_some() {
            Stage::Refresh
        } else {
            Stage::Allocate
        };
        self.fail(stage, kind, reason);
    }

    /// Starts deallocation (Refresh with lifetime 0). Without an allocation it closes at once.
    pub fn close(&mut self, now: Instant) {
        match self.phase {
            Phase::Binding | Phase::Ready => {
                self.pending.clear();
                self.refresh_at = None;
                self.rebind_at = None;
                self.phase = Phase::Closing;
                self.send_request(now, Request::Refresh(0));
            }
            Phase::Allocating => {
                self.pending.clear();
                self.phase = Phase::Closed;
                self.events.push_back(Event::Closed);
            }
            Phase::Closing | Phase::Closed | Phase::Failed => {}
        }
    }

    /// Writes `payload` for the peer into `out` (cleared first) as ChannelData or a Send indication.
    /// Returns false (and leaves `out` empty) when not ready or the payload is too large.
    pub fn encode_data(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        if self.phase != Phase::Ready {
            out.clear();
            return false;
        }
        match self.cfg.mode {
            DataMode::Channel => {
                turn::encode_channel_data(out, self.cfg.channel, payload, self.cfg.stream).is_ok()
            }
            DataMode::Send => {
                let tid = self.next_tid();
                let typ = MessageType::new(Class::Indication, Method::Send);
                let mut b = MessageBuilder::new(out, typ, tid);
                b.xor_peer_address(self.cfg.peer).data(payload);
                b.finish().is_ok()
            }
        }
    }

    /// Processes one datagram (UDP) or frame (TCP) from the server.
    pub fn handle_input<'a>(&mut self, now: Instant, buf: &'a [u8]) -> Input<'a> {
        match turn::classify(buf) {
            Framing::ChannelData => match turn::ChannelData::decode(buf) {
                Ok(cd) if cd.channel == self.cfg.channel => Input::Data(cd.data),
                _ => Input::Ignored,
            },
            Framing::Stun => match Message::decode(buf) {
                Ok(msg) => self.handle_message(now, &msg),
                Err(_) => Input::Ignored,
            },
            Framing::Unknown => Input::Ignored,
        }
    }

    fn handle_message<'a>(&mut self, now: Instant, msg: &Message<'a>) -> Input<'a> {
        let typ = msg.message_type();
        if typ.class == Class::Indication {
            return match (typ.method, msg.data()) {
                (Method::Data, Some(data)) => Input::Data(data),
                _ => Input::Ignored,
            };
        }
        let tid = msg.transaction_id();
        let Some(pos) = self.pending.iter().position(|t| t.tid == tid) else {
            return Input::Ignored;
        };
        if let (true, Some(key)) = (msg.has_integrity(), self.key)
            && msg.verify_integrity(&key).is_err()
        {
            return Input::Ignored; // forged or corrupted: keep waiting for the real answer
        }
        let tx = self.pending.swap_remove(pos);
        match typ.class {
            Class::Success => self.on_success(now, tx, msg),
            _ => self.on_error(now, tx, msg),
        }
        Input::Control
    }

    fn on_success(&mut self, now: Instant, tx: Transaction, msg: &Message<'_>) {
        // The stale-nonce retry budget is per exchange: nonces expire many times in a long call.
        self.stale_nonces = 0;
        match tx.request {
            Request::Allocate => {
                let Some(relayed) = msg.xor_relayed_address() else {
                    return self.fail(
                        Stage::Allocate,
                        FailureKind::Protocol,
                        "no XOR-RELAYED-ADDRESS".into(),
                    );
                };
                self.relayed = Some(relayed);
                self.schedule_refresh(now, msg.lifetime().unwrap_or(self.cfg.lifetime));
                let latency = now.saturating_duration_since(self.started);
                self.events.push_back(Event::Allocated {
                    relayed,
                    mapped: msg.xor_mapped_address(),
                    latency,
                });
                self.phase = Phase::Binding;
                self.send_request(now, Request::Bind);
            }
            Request::Bind => {
                self.rebind_at = Some(now + self.cfg.permission_refresh);
                if self.phase == Phase::Binding {
                    self.phase = Phase::Ready;
                    let latency = now.saturating_duration_since(self.started);
                    self.events.push_back(Event::Ready { latency });
                }
            }
            Request::Refresh(0) => self.closed(),
            Request::Refresh(_) => {
                self.schedule_refresh(now, msg.lifetime().unwrap_or(self.cfg.lifetime))
            }
        }
    }

    fn on_error(&mut self, now: Instant, tx: Transaction, msg: &Message<'_>) {
        let (code, reason) = msg.error_code().unwrap_or((0, ""));
        let stage = tx.request.stage();
        match code {
            code::UNAUTHENTICATED if self.accept_challenge(msg) => {
                self.send_request(now, tx.request)
            }
            code::STALE_NONCE if self.stale_nonces < 3 => {
                self.stale_nonces += 1;
                if let Some(nonce) = msg.nonce() {
                    nonce.clone_into(&mut self.nonce);
                }
                self.send_request(now, tx.request);
            }
            // Deallocating something the server already dropped is success enough.
            code::ALLOCATION_MISMATCH if tx.request == Request::Refresh(0) => self.closed(),
            _ => {
                let reason = match code {
                    code::UNAUTHENTICATED => {
                        format!("401 {reason}: credentials rejected after retry")
                    }
                    0 => "error response without ERROR-CODE".to_owned(),
                    _ => format!("{code} {reason}"),
                };
                let kind = if code == 0 {
                    FailureKind::Protocol
                } else {
                    FailureKind::Code(code)
                };
                self.fail(stage, kind, reason);
            }
        }
    }

    /// Takes realm and nonce from the first 401; false when we already answered a challenge (the
    /// server rejects our credentials: "401 after retry").
    fn accept_challenge(&mut self, msg: &Message<'_>) -> bool {
        let (Some(realm), Some(nonce), None) = (msg.realm(), msg.nonce(), self.key) else {
            return false;
        };
        realm.clone_into(&mut self.realm);
        nonce.clone_into(&mut self.nonce);
        let c = &self.cfg.credentials;
        self.key = Some(turn::long_term_key(&c.username, &self.realm, &c.password));
        true
    }

    fn schedule_refresh(&mut self, now: Instant, granted: u32) {
        // Refresh at half the granted lifetime, as real clients do well before expiry.
        self.refresh_at = Some(now + Duration::from_secs(u64::from(granted.max(2)) / 2));
    }

    fn closed(&mut self) {
        self.phase = Phase::Closed;
        self.refresh_at = None;
        self.rebind_at = None;
        self.pending.clear();
        self.events.push_back(Event::Closed);
    }

    fn fail(&mut self, stage: Stage, kind: FailureKind, reason: String) {
        if matches!(self.phase, Phase::Failed | Phase::Closed) {
            return;
        }
        if self.phase == Phase::Closing {
            return self.closed(); // a failed deallocation still ends the allocation for us
        }
        self.phase = Phase::Failed;
        self.pending.clear();
        self.refresh_at = None;
        self.rebind_at = None;
        self.events.push_back(Event::Failed(Failure {
            stage,
            kind,
            reason,
        }));
    }

    fn retransmit_due(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            let tx = &mut self.pending[i];
            if tx.deadline > now {
                i += 1;
                continue;
            }
            if tx.attempts >= self.cfg.max_attempts || self.cfg.stream {
                let tx = self.pending.swap_remove(i);
                let waited = now.saturating_duration_since(tx.first_sent);
                let reason = format!("no response after {} attempts ({waited:.1?})", tx.attempts);
                self.fail(tx.request.stage(), FailureKind::Timeout, reason);
                continue;
            }
            tx.attempts += 1;
            tx.rto *= 2;
            tx.deadline = now + tx.rto;
            self.outbox.push_back(tx.bytes.clone());
            i += 1;
        }
    }

    fn next_tid(&mut self) -> TransactionId {
        self.tid_counter += 1;
        let mut id = [0u8; 12];
        id[..4].copy_from_slice(&self.tid_seed);
        id[4..].copy_from_slice(&self.tid_counter.to_be_bytes());
        TransactionId(id)
    }

    /// Builds, queues and tracks a request (control path: a small allocation here is fine).
    fn send_request(&mut self, now: Instant, request: Request) {
        let tid = self.next_tid();
        let mut bytes = Vec::new();
        if let Err(e) = self.encode_request(&mut bytes, tid, request) {
            return self.fail(
                request.stage(),
                FailureKind::Protocol,
                format!("cannot encode request: {e}"),
            );
        }
        self.outbox.push_back(bytes.clone());
        // On streams a request is sent once and waited for as long as all UDP retries would take.
        let wait = if self.cfg.stream {
            self.cfg.rto * ((1u32 << self.cfg.max_attempts.min(16)) - 1)
        } else {
            self.cfg.rto
        };
        let tx = Transaction {
            tid,
            request,
            bytes,
            first_sent: now,
            deadline: now + wait,
            attempts: 1,
            rto: wait,
        };
        self.pending.push(tx);
    }

    fn encode_request(
        &self,
        out: &mut Vec<u8>,
        tid: TransactionId,
        request: Request,
    ) -> Result<(), turn::EncodeError> {
        let method = match request {
            Request::Allocate => Method::Allocate,
            Request::Bind if self.cfg.mode == DataMode::Channel => Method::ChannelBind,
            Request::Bind => Method::CreatePermission,
            Request::Refresh(_) => Method::Refresh,
        };
        let mut b = MessageBuilder::new(out, MessageType::new(Class::Request, method), tid);
        match request {
            Request::Allocate => {
                // The relay is UDP (17) whatever the client transport is.
                b.requested_transport(turn::attr::TRANSPORT_UDP)
                    .lifetime(self.cfg.lifetime);
            }
            Request::Bind if self.cfg.mode == DataMode::Channel => {
                b.channel_number(self.cfg.channel)
                    .xor_peer_address(self.cfg.peer);
            }
            Request::Bind => {
                b.xor_peer_address(self.cfg.peer);
            }
            Request::Refresh(lifetime) => {
                b.lifetime(lifetime);
            }
        }
        match self.key {
            Some(key) => {
                b.username(&self.cfg.credentials.username)
                    .realm(&self.realm)
                    .nonce(&self.nonce);
                b.finish_with_integrity(&key)
            }
            None => b.finish(),
        }
    }
}
