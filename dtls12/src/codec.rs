//! The wire formats this server reads and writes (RFC 6347 §4.1, §4.2.2; RFC 5246 §7.4): DTLS
//! record headers, handshake headers, the ClientHello it parses and the messages it builds. Pure
//! functions over byte slices; a decoder never panics and refuses what it cannot read whole.

use crate::Error;

/// Record header: content type, version, epoch, 48-bit sequence number, length.
pub(crate) const RECORD_HEADER: usize = 13;
/// Handshake header: type, length, message_seq, fragment_offset, fragment_length.
pub(crate) const HANDSHAKE_HEADER: usize = 12;
/// DTLS 1.2 on the wire.
pub(crate) const DTLS_1_2: u16 = 0xfefd;
/// DTLS 1.0 on the wire (the version a HelloVerifyRequest carries, RFC 6347 §4.2.1).
pub(crate) const DTLS_1_0: u16 = 0xfeff;

/// Record content types.
pub(crate) mod content {
    /// ChangeCipherSpec.
    pub(crate) const CCS: u8 = 20;
    /// Alert.
    pub(crate) const ALERT: u8 = 21;
    /// Handshake.
    pub(crate) const HANDSHAKE: u8 = 22;
    /// ApplicationData.
    pub(crate) const APPLICATION_DATA: u8 = 23;
}

/// Handshake message types.
pub(crate) mod msg {
    /// ClientHello.
    pub(crate) const CLIENT_HELLO: u8 = 1;
    /// ServerHello.
    pub(crate) const SERVER_HELLO: u8 = 2;
    /// HelloVerifyRequest.
    pub(crate) const HELLO_VERIFY_REQUEST: u8 = 3;
    /// Certificate.
    pub(crate) const CERTIFICATE: u8 = 11;
    /// ServerKeyExchange.
    pub(crate) const SERVER_KEY_EXCHANGE: u8 = 12;
    /// ServerHelloDone.
    pub(crate) const SERVER_HELLO_DONE: u8 = 14;
    /// ClientKeyExchange.
    pub(crate) const CLIENT_KEY_EXCHANGE: u8 = 16;
    /// Finished.
    pub(crate) const FINISHED: u8 = 20;
}

/// Extension types this server reads or answers.
pub(crate) mod ext {
    /// supported_groups (RFC 8422).
    pub(crate) const SUPPORTED_GROUPS: u16 = 10;
    /// ec_point_formats (RFC 8422).
    pub(crate) const EC_POINT_FORMATS: u16 = 11;
    /// signature_algorithms (RFC 5246 §7.4.1.4.1).
    pub(crate) const SIGNATURE_ALGORITHMS: u16 = 13;
    /// extended_master_secret (RFC 7627).
    pub(crate) const EXTENDED_MASTER_SECRET: u16 = 23;
    /// renegotiation_info (RFC 5746).
    pub(crate) const RENEGOTIATION_INFO: u16 = 0xff01;
}

/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3).
pub(crate) const RENEGOTIATION_SCSV: u16 = 0x00ff;

/// A bounds-checked reader over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Self(b)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u24(&mut self) -> Result<usize, Error> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    pub(crate) fn u48(&mut self) -> Result<u64, Error> {
        let b = self.take(6)?;
        Ok(b.iter().fold(0, |n, &x| n << 8 | u64::from(x)))
    }

    /// A vector with a one-byte length.
    pub(crate) fn vec8(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A vector with a two-byte length.
    pub(crate) fn vec16(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// A record's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) content: u8,
    pub(crate) version: u16,
    pub(crate) epoch: u16,
    pub(crate) seq: u64,
}

impl RecordHeader {
    /// The 8 bytes of epoch and sequence number (the AEAD's sequence input, RFC 6347 §4.1.2.1).
    pub(crate) fn epoch_seq(&self) -> [u8; 8] {
        (u64::from(self.epoch) << 48 | self.seq).to_be_bytes()
    }

    /// Writes the header for a body of `len` bytes.
    pub(crate) fn write(&self, len: usize, out: &mut Vec<u8>) {
        out.push(self.content);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.epoch_seq());
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
}

/// Splits datagram `pkt` into its records: each header with the body's range in `pkt`. A datagram
/// holding anything but whole records is refused whole.
pub(crate) fn records(pkt: &[u8]) -> Result<Vec<(RecordHeader, std::ops::Range<usize>)>, Error> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < pkt.len() {
        let (h, body) = record_at(pkt, at)?;
        at = body.end;
        out.push((h, body));
    }
    Ok(out)
}

/// Whether datagram `pkt` is made of whole records only ([`records`] without collecting them).
pub(crate) fn whole_records(pkt: &[u8]) -> bool {
    let mut at = 0;
    while at < pkt.len() {
        match record_at(pkt, at) {
            Ok((_, body)) => at = body.end,
            Err(_) => return false,
        }
    }
    true
}

/// The record that starts at offset `at` of `pkt`: its header and its body's range in `pkt`.
pub(crate) fn record_at(
    pkt: &[u8],
    at: usize,
) -> Result<(RecordHeader, std::ops::Range<usize>), Error> {
    let mut r = Reader::new(pkt.get(at..).ok_or(Error::Truncated)?);
    let content = r.u8()?;
    let version = r.u16()?;
    if version >> 8 != 0xfe {
        return Err(Error::NotDtls);
    }
    let epoch = r.u16()?;
    let seq = r.u48()?;
    let body = r.vec16()?;
    let start = at + RECORD_HEADER;
    let h = RecordHeader {
        content,
        version,
        epoch,
        seq,
    };
    Ok((h, start..start + body.len()))
}

/// One handshake message or fragment of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fragment<'a> {
    pub(crate) typ: u8,
    /// The whole message's length.
    pub(crate) length: usize,
    pub(crate) seq: u16,
    pub(crate) offset: usize,
    pub(crate) body: &'a [u8],
}

impl Fragment<'_> {
    /// Whether this fragment is the whole message.
    pub(crate) fn is_whole(&self) -> bool {
        self.offset == 0 && self.body.len() == self.length
    }
}

/// The handshake fragments of a handshake record's body.
pub(crate) fn fragments(body: &[u8]) -> Result<Vec<Fragment<'_>>, Error> {
    let mut out = Vec::new();
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let typ = r.u8()?;
        let length = r.u24()?;
        let seq = r.u16()?;
        let offset = r.u24()?;
        let n = r.u24()?;
        if offset + n > length {
            return Err(Error::Malformed("fragment beyond its message"));
        }
        let body = r.take(n)?;
        out.push(Fragment {
            typ,
            length,
            seq,
            offset,
            body,
        });
    }
    Ok(out)
}

/// Appends a whole (unfragmented) handshake message: its header, then `body`.
pub(crate) fn handshake(typ: u8, seq: u16, body: &[u8], out: &mut Vec<u8>) {
    let len = u24(body.len());
    out.push(typ);
    out.extend_from_slice(&len);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
}

/// The three big-endian bytes of `n` (< 2^24).
pub(crate) fn u24(n: usize) -> [u8; 3] {
    let b = (n as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

/// The fields of a ClientHello this server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientHello<'a> {
    pub(crate) version: u16,
    pub(crate) random: &'a [u8],
    pub(crate) session_id: &'a [u8],
    pub(crate) cookie: &'a [u8],
    /// Cipher suites, two bytes each.
    pub(crate) suites: &'a [u8],
    /// Named groups of supported_groups, two bytes each (empty when absent).
    pub(crate) groups: &'a [u8],
    /// Signature schemes of signature_algorithms, two bytes each (empty when absent).
    pub(crate) sig_algs: &'a [u8],
    pub(crate) ems: bool,
    /// Whether the client signalled secure renegotiation (extension or SCSV).
    pub(crate) reneg: bool,
    pub(crate) point_formats: bool,
    pub(crate) null_compression: bool,
}

impl<'a> ClientHello<'a> {
    /// Parses a ClientHello body (RFC 6347 §4.2.1 adds the cookie to RFC 5246 §7.4.1.2).
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let version = r.u16()?;
        let random = r.take(32)?;
        let session_id = r.vec8()?;
        let cookie = r.vec8()?;
        let suites = r.vec16()?;
        if suites.len() % 2 != 0 {
            return Err(Error::Malformed("odd cipher suite list"));
        }
        let null_compression = r.vec8()?.contains(&0);
        let mut hello = Self {
            version,
            random,
            session_id,
            cookie,
            suites,
            groups: &[],
            sig_algs: &[],
            ems: false,
            reneg: pairs(suites).any(|s| s == RENEGOTIATION_SCSV),
            point_formats: false,
            null_compression,
        };
        if !r.is_empty() {
            let mut exts = Reader::new(r.vec16()?);
            while !exts.is_empty() {
                let typ = exts.u16()?;
                let data = exts.vec16()?;
                hello.extension(typ, data)?;
            }
        }
        Ok(hello)
    }

    fn extension(&mut self, typ: u16, data: &'a [u8]) -> Result<(), Error> {
        match typ {
            ext::SUPPORTED_GROUPS => self.groups = Reader::new(data).vec16()?,
            ext::SIGNATURE_ALGORITHMS => self.sig_algs = Reader::new(data).vec16()?,
            ext::EXTENDED_MASTER_SECRET => self.ems = true,
            ext::RENEGOTIATION_INFO => self.reneg = true,
            ext::EC_POINT_FORMATS => self.point_formats = true,
            _ => {}
        }
        Ok(())
    }

    /// The cipher suites offered, in the client's order.
    pub(crate) fn suites(&self) -> impl Iterator<Item = u16> + '_ {
        pairs(self.suites)
    }

    /// The named groups offered, in the client's order.
    pub(crate) fn groups(&self) -> impl Iterator<Item = u16> + '_ {
        pairs(self.groups)
    }

    /// The signature schemes offered.
    pub(crate) fn sig_algs(&self) -> impl Iterator<Item = u16> + '_ {
        pairs(self.sig_algs)
    }
}

/// The big-endian u16s of `b` (a trailing odd byte is ignored).
fn pairs(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello as the webrtc-rs client sends its second one (with a cookie), trimmed.
    fn hello_body(cookie: &[u8]) -> Vec<u8> {
        let mut b = vec![0xfe, 0xfd];
        b.extend_from_slice(&[7; 32]);
        b.push(0);
        b.push(cookie.len() as u8);
        b.extend_from_slice(cookie);
        b.extend_from_slice(&[0, 4, 0xc0, 0x2b, 0x00, 0xff, 1, 0]);
        let exts = [
            &[0x00, 0x0a, 0, 6, 0, 4, 0, 29, 0, 23][..],
            &[0x00, 0x0d, 0, 4, 0, 2, 4, 3],
            &[0x00, 0x17, 0, 0],
        ]
        .concat();
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(&exts);
        b
    }

    #[test]
    fn client_hello_fields_are_read() {
        let body = hello_body(&[9; 20]);
        let h = ClientHello::parse(&body).expect("parse");
        assert_eq!(h.version, DTLS_1_2);
        assert_eq!(h.cookie, &[9; 20]);
        assert_eq!(h.suites().collect::<Vec<_>>(), [0xc02b, 0x00ff]);
        assert_eq!(h.groups().collect::<Vec<_>>(), [29, 23]);
        assert_eq!(h.sig_algs().collect::<Vec<_>>(), [0x0403]);
        assert!(h.ems && h.reneg && h.null_compression && !h.point_formats);
        for cut in 0..body.len() {
            // Every truncation either fails or (cut inside the optional extensions) still parses.
            let _ = ClientHello::parse(&body[..cut]);
        }
        assert_eq!(
            ClientHello::parse(&body[..30]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn records_and_fragments_split_and_refuse_partial_input() {
        let mut msg = Vec::new();
        handshake(msg::SERVER_HELLO_DONE, 4, &[], &mut msg);
        handshake(msg::FINISHED, 5, &[1; 12], &mut msg);
        let mut pkt = Vec::new();
        let h = RecordHeader {
            content: content::HANDSHAKE,
            version: DTLS_1_2,
            epoch: 0,
            seq: 0x0102_0304_0506,
        };
        h.write(msg.len(), &mut pkt);
        pkt.extend_from_slice(&msg);
        let recs = records(&pkt).expect("records");
        assert_eq!(recs, vec![(h, RECORD_HEADER..pkt.len())]);
        let frags = fragments(&pkt[recs[0].1.clone()]).expect("fragments");
        assert_eq!(frags.len(), 2);
        assert_eq!((frags[1].typ, frags[1].seq), (msg::FINISHED, 5));
        assert!(frags.iter().all(Fragment::is_whole));
        assert_eq!(records(&pkt[..pkt.len() - 1]), Err(Error::Truncated));
        let mut not_dtls = pkt.clone();
        not_dtls[1] = 3;
        assert_eq!(records(&not_dtls), Err(Error::NotDtls));
        let mut beyond = msg.clone();
        beyond[11] = 200;
        assert!(fragments(&beyond).is_err());
    }
}
