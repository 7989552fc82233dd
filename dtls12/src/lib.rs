//! A sans-IO DTLS 1.2 server (RFC 6347) for TURN-DTLS listeners: the caller owns the socket and
//! the clock, hands each datagram in and sends what comes out (quinn-proto's shape).
//!
//! Why not the `dtls` crate the client side uses: a TURN-DTLS listener faces the internet, and a
//! server must answer a ClientHello without keeping anything until the client proves it can
//! receive at its address (the stateless cookie exchange of RFC 6347 §4.2.1). `dtls` keeps a whole
//! connection (tasks, an ECDHE key) from the first ClientHello and draws its cookie at random
//! inside that state, with no hook to check a cookie made elsewhere; its record layer also runs
//! each record through two tasks and channels. Here [`accept`] is a pure function of the datagram
//! and a secret, and an [`Association`] decrypts in place on the caller's thread.
//!
//! Scope, on purpose small: ECDHE-ECDSA with AES-GCM (no CBC, no RSA, no PSK, no resumption,
//! no renegotiation), x25519 and P-256, the extended master secret when offered.

mod codec;
mod cookie;
mod crypto;
mod server;

pub use cookie::PERIOD as COOKIE_PERIOD;
pub use crypto::Suite;
pub use server::{Accept, Association, DEFAULT_MTU, RECORD_OVERHEAD, ServerConfig, accept};

/// Why a datagram or an association was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended inside a field.
    #[error("truncated input")]
    Truncated,
    /// A record without a DTLS version.
    #[error("not a DTLS record")]
    NotDtls,
    /// A field that cannot be read.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A message this server does not expect here.
    #[error("unexpected: {0}")]
    Unexpected(&'static str),
    /// The client offers nothing this server accepts.
    #[error("no common {0}")]
    Negotiation(&'static str),
    /// A record failed authentication (or came before its keys).
    #[error("record failed authentication")]
    Decrypt,
    /// A record was seen before.
    #[error("replayed record")]
    Replayed,
    /// The client's Finished did not verify: the handshake was tampered with.
    #[error("client Finished does not verify")]
    BadFinished,
    /// The client sent a fatal alert (its description).
    #[error("fatal alert {0} from the client")]
    Alert(u8),
    /// The certificate or key cannot be used.
    #[error("certificate or key: {0}")]
    Key(&'static str),
    /// A cryptographic operation failed.
    #[error("crypto: {0}")]
    Crypto(&'static str),
}

impl Error {
    /// Whether the error ends an association: only what an attacker who can spoof the client's
    /// address cannot cause once keys are in use (authenticated alerts and Finished), or a failed
    /// handshake step.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::BadFinished | Self::Alert(_) | Self::Crypto(_) | Self::Negotiation(_)
        )
    }
}

/// Fuzzing entry: everything that reads bytes a client sent before any key is known (records,
/// fragments, the ClientHello) and the stateless [`accept`] path (cookie check, HelloVerifyRequest).
pub fn fuzz_decode(pkt: &[u8]) {
    use std::sync::OnceLock;
    static CONFIG: OnceLock<Option<ServerConfig>> = OnceLock::new();
    if let Ok(records) = codec::records(pkt) {
        for (_, range) in records {
            if let Ok(frags) = codec::fragments(&pkt[range]) {
                for f in frags {
                    let _ = codec::ClientHello::parse(f.body);
                }
            }
        }
    }
    let cfg = CONFIG.get_or_init(|| {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).ok()?;
        // The server never parses its own certificate: any bytes do here.
        ServerConfig::new(vec![vec![0x30, 0]], key.as_ref(), std::time::Instant::now()).ok()
    });
    if let Some(cfg) = cfg {
        let client = std::net::SocketAddr::from(([192, 0, 2, 1], 5000));
        let _ = accept(cfg, std::time::Instant::now(), client, pkt);
    }
}

/// Whether datagram `pkt` starts with an epoch-0 handshake record holding a ClientHello (a client
/// starting a handshake, perhaps again from the address of an association).
pub fn is_client_hello(pkt: &[u8]) -> bool {
    matches!(
        pkt,
        [
            codec::content::HANDSHAKE,
            0xfe,
            _,
            0,
            0,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            codec::msg::CLIENT_HELLO,
            ..
        ]
    )
}
