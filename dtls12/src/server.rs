//! The server side of DTLS 1.2 (RFC 6347) for one listener: [`accept`] answers a new client's
//! ClientHello statelessly, and an [`Association`] is one client's handshake and record layer.
//!
//! ```text
//!   client                                   server
//!   ClientHello ───────────────────────────▶ accept: no valid cookie ─▶ HelloVerifyRequest (nothing kept)
//!   ClientHello + cookie ──────────────────▶ accept: cookie valid ─▶ Association::open
//!                      ◀─── ServerHello, Certificate, ServerKeyExchange, ServerHelloDone (flight 4)
//!   ClientKeyExchange, CCS, Finished ──────▶ Association::handle ─▶ CCS, Finished (flight 6)
//!   application data ◀────────────────────▶ handle (decrypt in place) / seal
//! ```
//! Lost flights: the server resends flight 4 on its timer ([`Association::poll_timeout`]) or when
//! the ClientHello comes again, and flight 6 when the client's flight 5 comes again. Only whole
//! (unfragmented) messages are read from clients, whose messages in this handshake are small; the
//! server fragments its own to the MTU.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

use crate::Error;
use crate::codec::{
    self, ClientHello, DTLS_1_0, DTLS_1_2, HANDSHAKE_HEADER, RECORD_HEADER, RecordHeader, content,
    ext, msg,
};
use crate::cookie::CookieKey;
use crate::crypto::{EXPLICIT_NONCE, RecordCipher, ReplayWindow, Suite, TAG};

/// Largest datagram this server sends by default (fits a 1,280-byte IPv6 path with headers).
pub const DEFAULT_MTU: usize = 1200;
/// The first retransmission timeout (RFC 6347 §4.2.4.1), doubled up to [`MAX_RTO`].
const INITIAL_RTO: Duration = Duration::from_secs(1);
const MAX_RTO: Duration = Duration::from_secs(8);
/// Flight 4 goes out again on a repeated ClientHello at most this often.
const MIN_RESEND: Duration = Duration::from_millis(250);
/// ecdsa_secp256r1_sha256 (RFC 8446 numbering, same as RFC 5246's sha256/ecdsa pair).
const ECDSA_P256_SHA256: u16 = 0x0403;
/// Named groups: x25519 and secp256r1.
const X25519: u16 = 29;
const SECP256R1: u16 = 23;
/// Alert levels and descriptions this server reads.
const CLOSE_NOTIFY: u8 = 0;
const FATAL: u8 = 2;
/// Alert descriptions this server sends when a ClientHello has nothing in common with it.
const HANDSHAKE_FAILURE: u8 = 40;
const PROTOCOL_VERSION: u8 = 70;
const INSUFFICIENT_SECURITY: u8 = 71;

/// A listener's DTLS identity and cookie secret.
pub struct ServerConfig {
    certs: Vec<Vec<u8>>,
    key: EcdsaKeyPair,
    cookies: CookieKey,
    mtu: usize,
    rng: SystemRandom,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("certs", &self.certs.len())
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// A server presenting certificate chain `certs` (DER, leaf first) with the ECDSA P-256 key
    /// `pkcs8` (DER); cookie periods count from `now`.
    pub fn new(certs: Vec<Vec<u8>>, pkcs8: &[u8], now: Instant) -> Result<Self, Error> {
        if certs.is_empty() {
            return Err(Error::Key("no certificate"));
        }
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
            .map_err(|_| Error::Key("not an ECDSA P-256 PKCS#8 key"))?;
        Ok(Self {
            certs,
            key,
            cookies: CookieKey::new(&rng, now)?,
            mtu: DEFAULT_MTU,
            rng,
        })
    }

    /// The same with datagrams of at most `mtu` bytes (at least 256).
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu.max(256);
        self
    }
}

/// What to do with a datagram from a client that has no association.
#[derive(Debug)]
pub enum Accept {
    /// Send this HelloVerifyRequest back; nothing was kept.
    Verify(Vec<u8>),
    /// The cookie is valid: a new association, and the datagrams of its first flight.
    Open(Box<Association>, Vec<Vec<u8>>),
    /// A ClientHello with a valid cookie but nothing in common with this server (an old
    /// version, only CBC suites): send this fatal alert back, so the client fails at once.
    Refuse(Vec<u8>, Error),
    /// Not a ClientHello this server answers: drop it.
    Ignore(Error),
}

/// Answers datagram `pkt` from `client`, which has no association: a HelloVerifyRequest for a
/// ClientHello without a valid cookie, a new association for one with.
pub fn accept(cfg: &ServerConfig, now: Instant, client: SocketAddr, pkt: &[u8]) -> Accept {
    match hello(pkt) {
        Ok((rec, seq, body)) => match ClientHello::parse(body) {
            Ok(h) if cfg.cookies.verify(now, client, &h) => {
                match Association::open(cfg, now, client, rec, seq, &h, body) {
                    Ok((a, flight)) => Accept::Open(Box::new(a), flight),
                    Err(e @ Error::Negotiation(_)) => Accept::Refuse(refusal(rec, &e), e),
                    Err(e) => Accept::Ignore(e),
                }
            }
            Ok(h) => Accept::Verify(verify_request(cfg, now, client, rec, seq, &h)),
            Err(e) => Accept::Ignore(e),
        },
        Err(e) => Accept::Ignore(e),
    }
}

/// The ClientHello `pkt` starts with: its record's header, its message_seq and its body (whole, in
/// an epoch-0 handshake record).
fn hello(pkt: &[u8]) -> Result<(RecordHeader, u16, &[u8]), Error> {
    let records = codec::records(pkt)?;
    let Some((h, range)) = records.first() else {
        return Err(Error::Truncated);
    };
    if h.content != content::HANDSHAKE || h.epoch != 0 {
        return Err(Error::Unexpected("a record other than a ClientHello"));
    }
    let frags = codec::fragments(&pkt[range.clone()])?;
    match frags.first() {
        Some(f) if f.typ == msg::CLIENT_HELLO && f.is_whole() => Ok((*h, f.seq, f.body)),
        Some(f) if f.typ == msg::CLIENT_HELLO => Err(Error::Unexpected("a fragmented ClientHello")),
        _ => Err(Error::Unexpected(
            "a handshake message other than a ClientHello",
        )),
    }
}

/// A HelloVerifyRequest for `hello`: its record and message sequence numbers mirror the
/// ClientHello's (RFC 6347 §4.2.1), its versions are DTLS 1.0.
fn verify_request(
    cfg: &ServerConfig,
    now: Instant,
    client: SocketAddr,
    rec: RecordHeader,
    seq: u16,
    hello: &ClientHello<'_>,
) -> Vec<u8> {
    let cookie = cfg.cookies.make(now, client, hello);
    let mut body = DTLS_1_0.to_be_bytes().to_vec();
    body.push(cookie.len() as u8);
    body.extend_from_slice(&cookie);
    let mut message = Vec::new();
    codec::handshake(msg::HELLO_VERIFY_REQUEST, seq, &body, &mut message);
    let h = RecordHeader {
        content: content::HANDSHAKE,
        version: DTLS_1_0,
        epoch: 0,
        seq: rec.seq,
    };
    let mut out = Vec::with_capacity(RECORD_HEADER + message.len());
    h.write(message.len(), &mut out);
    out.extend_from_slice(&message);
    out
}

/// A fatal alert answering the ClientHello in record `rec` (its version and sequence number).
fn refusal(rec: RecordHeader, e: &Error) -> Vec<u8> {
    let description = match e {
        Error::Negotiation(what) if what.starts_with("version") => PROTOCOL_VERSION,
        Error::Negotiation(what) if what.starts_with("cipher") => INSUFFICIENT_SECURITY,
        _ => HANDSHAKE_FAILURE,
    };
    let h = RecordHeader {
        content: content::ALERT,
        ..rec
    };
    let mut out = Vec::with_capacity(RECORD_HEADER + 2);
    h.write(2, &mut out);
    out.extend_from_slice(&[FATAL, description]);
    out
}

/// Where an association's handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Flight 4 sent; waiting for the client's key exchange and Finished.
    AwaitFlight5,
    /// Handshake done: application data flows.
    Established,
    /// An alert ended it, or it was closed.
    Closed,
}

/// What the handshake negotiated and holds until it completes.
struct Pending {
    /// Our ephemeral ECDHE key (used once, on the client's key exchange).
    ephemeral: Option<EphemeralPrivateKey>,
    group: &'static agreement::Algorithm,
    ems: bool,
    /// The message_seq of the client's ClientHello: its key exchange and Finished follow it.
    hello_seq: u16,
    /// Handshake messages so far, as hashed (RFC 6347 §4.2.6: whole, unfragmented headers).
    transcript: Vec<u8>,
    /// Flight 4's messages, for retransmission.
    flight4: Vec<Vec<u8>>,
    next_rto: Duration,
    resend_at: Instant,
    last_sent: Instant,
}

/// One client's DTLS association (sans-IO: datagrams in, datagrams and application data out).
pub struct Association {
    client: SocketAddr,
    suite: Suite,
    phase: Phase,
    client_random: [u8; 32],
    server_random: [u8; 32],
    master: Option<[u8; 48]>,
    /// Record protection: from the client, to the client.
    read: Option<RecordCipher>,
    write: Option<RecordCipher>,
    /// Whether the client's ChangeCipherSpec arrived (epoch-1 records may follow).
    peer_ccs: bool,
    /// Next record sequence number to send, per epoch.
    send_seq: [u64; 2],
    replay: ReplayWindow,
    pending: Option<Box<Pending>>,
    /// Our Finished message (header and body), resent with flight 6 when flight 5 comes again.
    server_finished: Vec<u8>,
    /// The message_seq of our next handshake message.
    next_msg_seq: u16,
    mtu: usize,
}

impl std::fmt::Debug for Association {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Association")
            .field("client", &self.client)
            .field("suite", &self.suite)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Association {
    /// A new association for a cookie-bearing ClientHello `hello` (raw body `body`) in a record
    /// with header `rec` and message_seq `seq`, and the datagrams of flight 4.
    fn open(
        cfg: &ServerConfig,
        now: Instant,
        client: SocketAddr,
        rec: RecordHeader,
        seq: u16,
        hello: &ClientHello<'_>,
        body: &[u8],
    ) -> Result<(Self, Vec<Vec<u8>>), Error> {
        let n = negotiate(hello)?;
        let mut server_random = [0; 32];
        cfg.rng
            .fill(&mut server_random)
            .map_err(|_| Error::Crypto("random"))?;
        let mut client_random = [0; 32];
        client_random.copy_from_slice(hello.random);
        let ephemeral = EphemeralPrivateKey::generate(n.group, &cfg.rng)
            .map_err(|_| Error::Crypto("ECDHE key"))?;
        let mut transcript = Vec::with_capacity(2048);
        codec::handshake(msg::CLIENT_HELLO, seq, body, &mut transcript);
        let mut a = Self {
            client,
            suite: n.suite,
            phase: Phase::AwaitFlight5,
            client_random,
            server_random,
            master: None,
            read: None,
            write: None,
            peer_ccs: false,
            // Above the HelloVerifyRequest's, which mirrored the first ClientHello's.
            send_seq: [rec.seq, 0],
            replay: ReplayWindow::default(),
            pending: None,
            server_finished: Vec::new(),
            next_msg_seq: seq,
            mtu: cfg.mtu,
        };
        let flight4 = a.flight4(cfg, hello, &n, &ephemeral)?;
        for m in &flight4 {
            transcript.extend_from_slice(m);
        }
        let datagrams = a.pack_epoch0(&flight4);
        a.pending = Some(Box::new(Pending {
            ephemeral: Some(ephemeral),
            group: n.group,
            ems: n.ems,
            hello_seq: seq,
            transcript,
            flight4,
            next_rto: INITIAL_RTO * 2,
            resend_at: now + INITIAL_RTO,
            last_sent: now,
        }));
        Ok((a, datagrams))
    }

    /// The client this association serves.
    pub fn client(&self) -> SocketAddr {
        self.client
    }

    /// The negotiated cipher suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Whether the handshake completed (application data may be sealed).
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// Whether an alert or [`close`](Self::close) ended the association.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due (flight 4's retransmission).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (&self.pending, self.phase) {
            (Some(p), Phase::AwaitFlight5) => Some(p.resend_at),
            _ => None,
        }
    }

    /// Resends flight 4 when its timer expired; datagrams to send go to `out`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        let due = matches!(&self.pending, Some(p) if now >= p.resend_at);
        if due && self.phase == Phase::AwaitFlight5 {
            self.resend_flight4(now, out);
        }
    }

    /// Handles datagram `pkt` from the client (decrypting in place): application data goes to
    /// `deliver`, datagrams to send to `out`. Returns how many records were dropped (malformed,
    /// replayed, unauthenticated, or plaintext once the keys are in use: anyone can spoof those);
    /// an error (an authenticated fatal alert or Finished that does not verify, a failed key
    /// exchange) ends the association.
    pub fn handle(
        &mut self,
        now: Instant,
        pkt: &mut [u8],
        out: &mut Vec<Vec<u8>>,
        deliver: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, Error> {
        if !codec::whole_records(pkt) {
            return Ok(1);
        }
        let mut dropped = 0;
        let mut at = 0;
        // Walked in place (no list of records per datagram: this is the packet path).
        while let Ok((h, range)) = codec::record_at(pkt, at) {
            if self.phase == Phase::Closed {
                break;
            }
            at = range.end;
            let body = &mut pkt[range];
            let handled = match h.epoch {
                0 if self.phase == Phase::Established => self.after_handshake0(&h, body, out),
                0 => self.epoch0(now, &h, body, out),
                1 => self.epoch1(&h, body, out, deliver),
                _ => Err(Error::Unexpected("a record of an unknown epoch")),
            };
            match handled {
                Ok(()) => {}
                Err(e) if e.is_fatal() => return Err(e),
                Err(_) => dropped += 1,
            }
        }
        Ok(dropped)
    }

    /// Appends an application data record carrying `data` to `out`.
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.phase != Phase::Established {
            return Err(Error::Unexpected(
                "application data before the handshake completed",
            ));
        }
        self.seal_record(content::APPLICATION_DATA, data, out)
    }

    /// Ends the association; the close_notify alert to send, when its keys allow one.
    pub fn close(&mut self) -> Option<Vec<u8>> {
        let was = self.phase;
        self.phase = Phase::Closed;
        let mut out = Vec::new();
        let sealed = was == Phase::Established
            && self
                .seal_record(content::ALERT, &[1, CLOSE_NOTIFY], &mut out)
                .is_ok();
        sealed.then_some(out)
    }

    fn seal_record(&mut self, typ: u8, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let h = self.next_header(typ, 1)?;
        let write = self
            .write
            .as_ref()
            .ok_or(Error::Unexpected("no keys yet"))?;
        write.seal(&h, data, out)
    }

    /// The header of our next record in `epoch`.
    fn next_header(&mut self, typ: u8, epoch: u16) -> Result<RecordHeader, Error> {
        let seq = &mut self.send_seq[usize::from(epoch)];
        if *seq >= 1 << 48 {
            return Err(Error::Crypto("record sequence numbers exhausted"));
        }
        let h = RecordHeader {
            content: typ,
            version: DTLS_1_2,
            epoch,
            seq: *seq,
        };
        *seq += 1;
        Ok(h)
    }

    /// An epoch-0 record: the ClientHello again (our flight 4 was lost), the client's key
    /// exchange, its ChangeCipherSpec, or an alert.
    fn epoch0(
        &mut self,
        now: Instant,
        h: &RecordHeader,
        body: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        match h.content {
            content::HANDSHAKE => {
                for f in codec::fragments(body)? {
                    self.handshake0(now, &f, out)?;
                }
                Ok(())
            }
            content::CCS if body == [1] => {
                self.peer_ccs = self.read.is_some();
                Ok(())
            }
            content::ALERT => self.alert(body),
            _ => Ok(()),
        }
    }

    /// A plaintext record once established: only the client's key exchange again (our flight 6
    /// was lost, so it resends flight 5) means something.
    fn after_handshake0(
        &mut self,
        h: &RecordHeader,
        body: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        if h.content == content::CCS {
            return Ok(());
        }
        let resend = h.content == content::HANDSHAKE
            && codec::fragments(body)?
                .iter()
                .any(|f| f.typ == msg::CLIENT_KEY_EXCHANGE);
        if !resend {
            return Err(Error::Unexpected("a plaintext record after the handshake"));
        }
        self.resend_flight6(out)
    }

    fn handshake0(
        &mut self,
        now: Instant,
        f: &codec::Fragment<'_>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let Some(hello_seq) = self.pending.as_ref().map(|p| p.hello_seq) else {
            return Ok(());
        };
        match f.typ {
            msg::CLIENT_HELLO if f.seq == hello_seq && self.read.is_none() => {
                // The client's retransmission (our flight 4 was lost). Anyone can send one with the
                // client's address: resend at most every MIN_RESEND, so spoofing amplifies nothing.
                let last = self.pending.as_ref().map(|p| p.last_sent);
                if last.is_some_and(|t| now.saturating_duration_since(t) >= MIN_RESEND) {
                    self.resend_flight4(now, out);
                }
                Ok(())
            }
            msg::CLIENT_KEY_EXCHANGE if f.seq == hello_seq.wrapping_add(1) && f.is_whole() => {
                if self.read.is_none() {
                    self.key_exchange(f.body)?;
                }
                Ok(())
            }
            msg::CLIENT_HELLO | msg::CLIENT_KEY_EXCHANGE => Ok(()),
            _ => Err(Error::Unexpected(
                "a handshake message this server did not ask for",
            )),
        }
    }

    /// The client's ECDHE public key: derive the premaster, master and record keys.
    fn key_exchange(&mut self, body: &[u8]) -> Result<(), Error> {
        let p = self
            .pending
            .as_mut()
            .ok_or(Error::Unexpected("key exchange"))?;
        let public = codec::Reader::new(body).vec8()?;
        let ephemeral = p
            .ephemeral
            .take()
            .ok_or(Error::Unexpected("key exchange"))?;
        let premaster =
            agreement::agree_ephemeral(ephemeral, &UnparsedPublicKey::new(p.group, public), |s| {
                s.to_vec()
            })
            .map_err(|_| Error::Crypto("client ECDHE public key"))?;
        codec::handshake(
            msg::CLIENT_KEY_EXCHANGE,
            p.hello_seq.wrapping_add(1),
            body,
            &mut p.transcript,
        );
        let session_hash = p
            .ems
            .then(|| ring::digest::digest(self.suite.hash(), &p.transcript));
        let master = self.suite.master_secret(
            &premaster,
            (&self.client_random, &self.server_random),
            session_hash.as_ref().map(AsRef::as_ref),
        );
        let (read, write) = self
            .suite
            .keys(&master, &self.client_random, &self.server_random)?;
        self.master = Some(master);
        self.read = Some(read);
        self.write = Some(write);
        Ok(())
    }

    /// An epoch-1 record: decrypted in place, then the client's Finished, an alert or data.
    fn epoch1(
        &mut self,
        h: &RecordHeader,
        body: &mut [u8],
        out: &mut Vec<Vec<u8>>,
        deliver: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Error> {
        let (Some(read), true) = (&self.read, self.peer_ccs) else {
            return Err(Error::Decrypt);
        };
        if !self.replay.is_new(h.seq) {
            return Err(Error::Replayed);
        }
        let plain = read.open(h, body)?;
        self.replay.accept(h.seq);
        match h.content {
            content::APPLICATION_DATA if self.phase == Phase::Established => deliver(plain),
            content::APPLICATION_DATA => return Err(Error::Decrypt),
            content::HANDSHAKE => self.handshake1(plain, out)?,
            content::ALERT => self.alert(plain)?,
            _ => {}
        }
        Ok(())
    }

    /// The client's Finished (or, once established, its retransmission).
    fn handshake1(&mut self, plain: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        if self.phase == Phase::Established {
            return self.resend_flight6(out);
        }
        let frags = codec::fragments(plain)?;
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        let finished_seq = p.hello_seq.wrapping_add(2);
        let Some(f) = frags
            .iter()
            .find(|f| f.typ == msg::FINISHED && f.is_whole())
        else {
            return Err(Error::Unexpected(
                "an encrypted handshake message other than Finished",
            ));
        };
        let master = self.master.ok_or(Error::Unexpected("Finished"))?;
        let want = self
            .suite
            .verify_data(&master, b"client finished", &p.transcript);
        if f.seq != finished_seq || !constant_time_eq(f.body, &want) {
            return Err(Error::BadFinished);
        }
        codec::handshake(msg::FINISHED, finished_seq, f.body, &mut p.transcript);
        let verify = self
            .suite
            .verify_data(&master, b"server finished", &p.transcript);
        self.server_finished.clear();
        let seq = self.next_msg_seq;
        codec::handshake(msg::FINISHED, seq, &verify, &mut self.server_finished);
        self.next_msg_seq = seq.wrapping_add(1);
        self.pending = None;
        self.phase = Phase::Established;
        self.resend_flight6(out)
    }

    fn alert(&mut self, body: &[u8]) -> Result<(), Error> {
        match body {
            [FATAL, d] => Err(Error::Alert(*d)),
            [_, CLOSE_NOTIFY] => {
                self.phase = Phase::Closed;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Flight 4's messages: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone.
    fn flight4(
        &mut self,
        cfg: &ServerConfig,
        hello: &ClientHello<'_>,
        n: &Negotiated,
        ephemeral: &EphemeralPrivateKey,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let public = ephemeral
            .compute_public_key()
            .map_err(|_| Error::Crypto("ECDHE public key"))?;
        let bodies = [
            (msg::SERVER_HELLO, self.server_hello(hello, n)),
            (msg::CERTIFICATE, certificate(&cfg.certs)),
            (
                msg::SERVER_KEY_EXCHANGE,
                self.key_exchange_params(cfg, n.group_id, public.as_ref())?,
            ),
            (msg::SERVER_HELLO_DONE, Vec::new()),
        ];
        Ok(bodies
            .into_iter()
            .map(|(typ, body)| {
                let mut m = Vec::with_capacity(HANDSHAKE_HEADER + body.len());
                codec::handshake(typ, self.next_msg_seq, &body, &mut m);
                self.next_msg_seq = self.next_msg_seq.wrapping_add(1);
                m
            })
            .collect())
    }

    fn server_hello(&self, hello: &ClientHello<'_>, n: &Negotiated) -> Vec<u8> {
        let mut b = DTLS_1_2.to_be_bytes().to_vec();
        b.extend_from_slice(&self.server_random);
        b.push(0); // no session id: no resumption
        b.extend_from_slice(&self.suite.id().to_be_bytes());
        b.push(0); // null compression
        let mut exts = Vec::new();
        if n.ems {
            exts.extend_from_slice(&ext::EXTENDED_MASTER_SECRET.to_be_bytes());
            exts.extend_from_slice(&[0, 0]);
        }
        if hello.reneg {
            exts.extend_from_slice(&ext::RENEGOTIATION_INFO.to_be_bytes());
            exts.extend_from_slice(&[0, 1, 0]);
        }
        if hello.point_formats {
            exts.extend_from_slice(&ext::EC_POINT_FORMATS.to_be_bytes());
            exts.extend_from_slice(&[0, 2, 1, 0]);
        }
        if !exts.is_empty() {
            b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
            b.extend_from_slice(&exts);
        }
        b
    }

    /// ServerKeyExchange (RFC 8422 §5.4): the named group, our public key, and our signature over
    /// both randoms and those parameters.
    fn key_exchange_params(
        &self,
        cfg: &ServerConfig,
        group: u16,
        public: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut params = vec![3]; // named_curve
        params.extend_from_slice(&group.to_be_bytes());
        params.push(public.len() as u8);
        params.extend_from_slice(public);
        let signed = [&self.client_random[..], &self.server_random, &params].concat();
        let sig = cfg
            .key
            .sign(&cfg.rng, &signed)
            .map_err(|_| Error::Crypto("signature"))?;
        params.extend_from_slice(&ECDSA_P256_SHA256.to_be_bytes());
        params.extend_from_slice(&(sig.as_ref().len() as u16).to_be_bytes());
        params.extend_from_slice(sig.as_ref());
        Ok(params)
    }

    fn resend_flight4(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        out.extend(self.pack_epoch0(&p.flight4));
        p.last_sent = now;
        p.resend_at = now + p.next_rto;
        p.next_rto = (p.next_rto * 2).min(MAX_RTO);
        self.pending = Some(p);
    }

    /// Flight 6: ChangeCipherSpec (epoch 0) and our Finished (epoch 1), in one datagram.
    fn resend_flight6(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        if self.server_finished.is_empty() {
            return Ok(());
        }
        let mut d = Vec::with_capacity(128);
        self.next_header(content::CCS, 0)?.write(1, &mut d);
        d.push(1);
        let finished = std::mem::take(&mut self.server_finished);
        let sealed = self.seal_record(content::HANDSHAKE, &finished, &mut d);
        self.server_finished = finished;
        sealed?;
        out.push(d);
        Ok(())
    }

    /// Epoch-0 datagrams carrying handshake messages `msgs`, each fragmented to fit the MTU, with
    /// fresh record sequence numbers (as a retransmission needs).
    fn pack_epoch0(&mut self, msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let room = self.mtu - RECORD_HEADER - HANDSHAKE_HEADER;
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        let mut cur = Vec::with_capacity(self.mtu);
        for m in msgs {
            let (head, body) = m.split_at(HANDSHAKE_HEADER);
            let mut offset = 0;
            loop {
                let n = (body.len() - offset).min(room);
                if cur.len() + RECORD_HEADER + HANDSHAKE_HEADER + n > self.mtu {
                    datagrams.push(std::mem::replace(&mut cur, Vec::with_capacity(self.mtu)));
                }
                let h = RecordHeader {
                    content: content::HANDSHAKE,
                    version: DTLS_1_2,
                    epoch: 0,
                    seq: self.send_seq[0],
                };
                self.send_seq[0] += 1;
                h.write(HANDSHAKE_HEADER + n, &mut cur);
                // type, length, message_seq as in the whole message; this fragment's offset and length.
                cur.extend_from_slice(&head[..6]);
                cur.extend_from_slice(&codec::u24(offset));
                cur.extend_from_slice(&codec::u24(n));
                cur.extend_from_slice(&body[offset..offset + n]);
                offset += n;
                if offset >= body.len() {
                    break;
                }
            }
        }
        if !cur.is_empty() {
            datagrams.push(cur);
        }
        datagrams
    }
}

/// Bytes an application data record adds to its payload (header, explicit nonce, tag).
pub const RECORD_OVERHEAD: usize = RECORD_HEADER + EXPLICIT_NONCE + TAG;

/// What a ClientHello and this server agreed on.
struct Negotiated {
    suite: Suite,
    group: &'static agreement::Algorithm,
    group_id: u16,
    ems: bool,
}

/// The suite (ours in order of preference, if the client offers it), the ECDHE group (x25519,
/// else P-256) and whether to use the extended master secret.
fn negotiate(hello: &ClientHello<'_>) -> Result<Negotiated, Error> {
    if hello.version != DTLS_1_2 {
        return Err(Error::Negotiation("version (DTLS 1.2 only)"));
    }
    if !hello.null_compression {
        return Err(Error::Negotiation("compression"));
    }
    let suite = Suite::ALL
        .into_iter()
        .find(|s| hello.suites().any(|id| id == s.id()))
        .ok_or(Error::Negotiation("cipher suite"))?;
    if !hello.sig_algs.is_empty() && !hello.sig_algs().any(|s| s == ECDSA_P256_SHA256) {
        return Err(Error::Negotiation("signature algorithm"));
    }
    let offers = |g| hello.groups.is_empty() || hello.groups().any(|o| o == g);
    let (group, group_id) = if hello.groups().any(|g| g == X25519) {
        (&agreement::X25519, X25519)
    } else if offers(SECP256R1) {
        (&agreement::ECDH_P256, SECP256R1)
    } else {
        return Err(Error::Negotiation("ECDHE group"));
    };
    Ok(Negotiated {
        suite,
        group,
        group_id,
        ems: hello.ems,
    })
}

/// The Certificate message body: the chain, each with a 3-byte length.
fn certificate(certs: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = certs.iter().map(|c| 3 + c.len()).sum();
    let mut b = Vec::with_capacity(3 + total);
    b.extend_from_slice(&codec::u24(total));
    for c in certs {
        b.extend_from_slice(&codec::u24(c.len()));
        b.extend_from_slice(c);
    }
    b
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}
