//! The cryptography of a DTLS 1.2 association, all from `ring`: the cipher suites offered (AEAD
//! only: AES-GCM with ECDHE-ECDSA), the TLS 1.2 PRF (RFC 5246 §5), master secret derivation with
//! and without the extended master secret (RFC 7627), the record protection of RFC 5288 with
//! DTLS's epoch and sequence number as the explicit nonce, and the receive replay window (RFC 6347
//! §4.1.2.6).

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::digest;
use ring::hmac;

use crate::Error;
use crate::codec::RecordHeader;

/// A cipher suite this server negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xC02B), what every WebRTC stack offers.
    EcdheEcdsaAes128GcmSha256,
    /// TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 (0xC02C).
    EcdheEcdsaAes256GcmSha384,
}

/// GCM's explicit nonce (RFC 5288 §3) and tag.
pub(crate) const EXPLICIT_NONCE: usize = 8;
pub(crate) const TAG: usize = 16;

impl Suite {
    /// Every suite, in the server's order of preference.
    pub const ALL: [Self; 2] = [
        Self::EcdheEcdsaAes128GcmSha256,
        Self::EcdheEcdsaAes256GcmSha384,
    ];

    /// The IANA number.
    pub fn id(self) -> u16 {
        match self {
            Self::EcdheEcdsaAes128GcmSha256 => 0xc02b,
            Self::EcdheEcdsaAes256GcmSha384 => 0xc02c,
        }
    }

    /// The suite numbered `id`, when this server knows it.
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    fn aead(self) -> &'static aead::Algorithm {
        match self {
            Self::EcdheEcdsaAes128GcmSha256 => &aead::AES_128_GCM,
            Self::EcdheEcdsaAes256GcmSha384 => &aead::AES_256_GCM,
        }
    }

    /// The PRF's and the handshake transcript's hash.
    pub(crate) fn hash(self) -> &'static digest::Algorithm {
        match self {
            Self::EcdheEcdsaAes128GcmSha256 => &digest::SHA256,
            Self::EcdheEcdsaAes256GcmSha384 => &digest::SHA384,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::EcdheEcdsaAes128GcmSha256 => hmac::HMAC_SHA256,
            Self::EcdheEcdsaAes256GcmSha384 => hmac::HMAC_SHA384,
        }
    }

    /// The TLS 1.2 PRF of this suite: `out.len()` bytes of P_hash(secret, label + seed).
    pub(crate) fn prf(self, secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
        prf(self.hmac(), secret, label, seed, out);
    }

    /// The 48-byte master secret (RFC 5246 §8.1, or RFC 7627 §4 when `session_hash` is given).
    pub(crate) fn master_secret(
        self,
        premaster: &[u8],
        randoms: (&[u8], &[u8]),
        session_hash: Option<&[u8]>,
    ) -> [u8; 48] {
        let mut master = [0; 48];
        match session_hash {
            Some(h) => self.prf(premaster, b"extended master secret", &[h], &mut master),
            None => self.prf(
                premaster,
                b"master secret",
                &[randoms.0, randoms.1],
                &mut master,
            ),
        }
        master
    }

    /// The 12 bytes of a Finished message (RFC 5246 §7.4.9).
    pub(crate) fn verify_data(self, master: &[u8], label: &[u8], transcript: &[u8]) -> [u8; 12] {
        let hash = digest::digest(self.hash(), transcript);
        let mut out = [0; 12];
        self.prf(master, label, &[hash.as_ref()], &mut out);
        out
    }

    /// The client's and the server's record protection from `master` (RFC 5246 §6.3: the key block
    /// is client key, server key, client IV, server IV; GCM uses a 4-byte implicit IV).
    pub(crate) fn keys(
        self,
        master: &[u8],
        client_random: &[u8],
        server_random: &[u8],
    ) -> Result<(RecordCipher, RecordCipher), Error> {
        let key_len = self.aead().key_len();
        let mut block = [0u8; 2 * 32 + 2 * 4];
        let block = &mut block[..2 * key_len + 8];
        self.prf(
            master,
            b"key expansion",
            &[server_random, client_random],
            block,
        );
        let (client_key, rest) = block.split_at(key_len);
        let (server_key, rest) = rest.split_at(key_len);
        let (client_iv, server_iv) = rest.split_at(4);
        Ok((
            RecordCipher::new(self.aead(), client_key, client_iv)?,
            RecordCipher::new(self.aead(), server_key, server_iv)?,
        ))
    }
}

/// P_hash of RFC 5246 §5: A(0) = label + seed, A(i) = HMAC(secret, A(i-1)), output the
/// concatenation of HMAC(secret, A(i) + label + seed).
fn prf(alg: hmac::Algorithm, secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let key = hmac::Key::new(alg, secret);
    let with_seed = |ctx: &mut hmac::Context| {
        ctx.update(label);
        for s in seed {
            ctx.update(s);
        }
    };
    let mut a = {
        let mut ctx = hmac::Context::with_key(&key);
        with_seed(&mut ctx);
        ctx.sign()
    };
    for chunk in out.chunks_mut(alg.digest_algorithm().output_len()) {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        with_seed(&mut ctx);
        let block = ctx.sign();
        chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        a = hmac::sign(&key, a.as_ref());
    }
}

/// One direction's record protection: AES-GCM with a 4-byte implicit and an 8-byte explicit nonce.
pub(crate) struct RecordCipher {
    key: LessSafeKey,
    salt: [u8; 4],
}

impl std::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCipher").finish_non_exhaustive()
    }
}

impl RecordCipher {
    fn new(alg: &'static aead::Algorithm, key: &[u8], iv: &[u8]) -> Result<Self, Error> {
        let key = UnboundKey::new(alg, key).map_err(|_| Error::Crypto("record key"))?;
        let mut salt = [0; 4];
        salt.copy_from_slice(iv);
        Ok(Self {
            key: LessSafeKey::new(key),
            salt,
        })
    }

    fn nonce(&self, explicit: [u8; 8]) -> Nonce {
        let mut n = [0; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(&explicit);
        Nonce::assume_unique_for_key(n)
    }

    /// The additional data of a record (RFC 5246 §6.2.3.3 with DTLS's epoch and sequence number).
    fn aad(h: &RecordHeader, len: usize) -> [u8; 13] {
        let mut a = [0; 13];
        a[..8].copy_from_slice(&h.epoch_seq());
        a[8] = h.content;
        a[9..11].copy_from_slice(&h.version.to_be_bytes());
        a[11..].copy_from_slice(&(len as u16).to_be_bytes());
        a
    }

    /// Appends the protected record `h` carrying `plain` to `out`. The explicit nonce is the
    /// record's epoch and sequence number, which never repeat under one key.
    pub(crate) fn seal(
        &self,
        h: &RecordHeader,
        plain: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let explicit = h.epoch_seq();
        h.write(EXPLICIT_NONCE + plain.len() + TAG, out);
        out.extend_from_slice(&explicit);
        let at = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                self.nonce(explicit),
                Aad::from(Self::aad(h, plain.len())),
                &mut out[at..],
            )
            .map_err(|_| Error::Crypto("seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts record body `body` (explicit nonce, ciphertext, tag) of header `h` in place and
    /// returns the plaintext.
    pub(crate) fn open<'a>(&self, h: &RecordHeader, body: &'a mut [u8]) -> Result<&'a [u8], Error> {
        if body.len() < EXPLICIT_NONCE + TAG {
            return Err(Error::Malformed("record shorter than its nonce and tag"));
        }
        let (explicit, sealed) = body.split_at_mut(EXPLICIT_NONCE);
        let mut nonce = [0; 8];
        nonce.copy_from_slice(explicit);
        let aad = Aad::from(Self::aad(h, sealed.len() - TAG));
        let plain = self
            .key
            .open_in_place(self.nonce(nonce), aad, sealed)
            .map_err(|_| Error::Decrypt)?;
        Ok(plain)
    }
}

/// The receive replay window of one epoch: the highest sequence number seen and a bitmap of the 64
/// below it.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReplayWindow {
    top: Option<u64>,
    seen: u64,
}

impl ReplayWindow {
    /// Whether `seq` is new (not seen, not older than the window). Call [`accept`](Self::accept)
    /// once its record authenticated.
    pub(crate) fn is_new(&self, seq: u64) -> bool {
        match self.top {
            None => true,
            Some(top) if seq > top => true,
            Some(top) => top - seq < 64 && self.seen & (1 << (top - seq)) == 0,
        }
    }

    /// Marks `seq` as seen.
    pub(crate) fn accept(&mut self, seq: u64) {
        match self.top {
            Some(top) if seq <= top => self.seen |= 1 << (top - seq),
            Some(top) => {
                let shift = seq - top;
                self.seen = if shift >= 64 { 0 } else { self.seen << shift };
                self.seen |= 1;
                self.top = Some(seq);
            }
            None => {
                self.seen = 1;
                self.top = Some(seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DTLS_1_2, content};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// The TLS 1.2 PRF test vector for SHA-256 that circulated on the IETF TLS list (the one most
    /// TLS stacks test against): secret, label "test label", seed, first 100 bytes of output.
    #[test]
    fn prf_sha256_matches_the_published_vector() {
        let secret = hex("9bbe436ba940f017b17652849a71db35");
        let seed = hex("a0ba9f936cda311827a6f796ffd5198c");
        let mut out = [0u8; 100];
        prf(
            hmac::HMAC_SHA256,
            &secret,
            b"test label",
            &[&seed],
            &mut out,
        );
        let want = hex(concat!(
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af",
            "0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701",
            "87347b66"
        ));
        assert_eq!(out.as_slice(), want.as_slice());
    }

    #[test]
    fn prf_sha384_matches_the_published_vector() {
        let secret = hex("b80b733d6ceefcdc71566ea48e5567df");
        let seed = hex("cd665cf6a8447dd6ff8b27555edb7465");
        let mut out = [0u8; 148];
        prf(
            hmac::HMAC_SHA384,
            &secret,
            b"test label",
            &[&seed],
            &mut out,
        );
        let want = hex(concat!(
            "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0",
            "e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425",
            "9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e099070",
            "3d73e56f"
        ));
        assert_eq!(out.as_slice(), want.as_slice());
    }

    #[test]
    fn a_sealed_record_opens_once_and_not_when_altered() {
        let suite = Suite::EcdheEcdsaAes128GcmSha256;
        let (client, server) = suite.keys(&[5; 48], &[1; 32], &[2; 32]).expect("keys");
        let h = RecordHeader {
            content: content::APPLICATION_DATA,
            version: DTLS_1_2,
            epoch: 1,
            seq: 9,
        };
        let mut rec = Vec::new();
        client.seal(&h, b"hello turn", &mut rec).expect("seal");
        let mut body = rec[13..].to_vec();
        assert_eq!(client.open(&h, &mut body).expect("open"), b"hello turn");
        // Wrong direction's key, altered header, altered body: all refused.
        let mut body = rec[13..].to_vec();
        assert_eq!(server.open(&h, &mut body), Err(Error::Decrypt));
        let mut body = rec[13..].to_vec();
        let other = RecordHeader { seq: 10, ..h };
        assert_eq!(client.open(&other, &mut body), Err(Error::Decrypt));
        let mut body = rec[13..].to_vec();
        body[10] ^= 1;
        assert_eq!(client.open(&h, &mut body), Err(Error::Decrypt));
        assert!(client.open(&h, &mut [0; 23]).is_err());
    }

    #[test]
    fn replay_window_takes_each_sequence_number_once() {
        let mut w = ReplayWindow::default();
        for seq in [5, 3, 70, 7, 69] {
            assert!(w.is_new(seq), "{seq}");
            w.accept(seq);
            assert!(!w.is_new(seq), "{seq} again");
        }
        // 5 and 3 fell out of the window when 70 arrived (64 or more below it); 6 is 64 below.
        assert!(!w.is_new(5) && !w.is_new(3) && !w.is_new(6) && w.is_new(68) && w.is_new(1000));
        w.accept(1000);
        assert!(!w.is_new(70) && w.is_new(999));
    }
}
