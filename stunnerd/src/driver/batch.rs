//! Batched datagram I/O: [`RecvBatch`] receives up to [`SLOTS`] datagrams with one `recvmmsg`,
//! [`SendBatch`] queues datagrams for one socket and sends them with one `sendmmsg` (through `nix`),
//! a burst to one destination as one UDP GSO datagram.
//! A batch that comes back short means the socket was empty at that moment, which with
//! edge-triggered readiness is as good as the `EAGAIN` a further call would return: the caller
//! saves that call.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per batch.
pub(crate) const SLOTS: usize = 32;
/// Room per received datagram: a full-size UDP payload.
const SLOT: usize = 65_536;

/// Receive buffers for [`SLOTS`] datagrams, reused for every call.
pub(crate) struct RecvBatch {
    buf: Box<[u8]>,
    hdrs: MultiHeaders<SockaddrStorage>,
    got: Vec<(usize, Option<SocketAddr>)>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("got", &self.got.len())
            .finish_non_exhaustive()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            buf: vec![0u8; SLOTS * SLOT].into_boxed_slice(),
            hdrs: MultiHeaders::preallocate(SLOTS, None),
            got: Vec::with_capacity(SLOTS),
        }
    }
}

impl RecvBatch {
    /// Receives what `sock` holds, up to `max` (≤ [`SLOTS`]) datagrams, without blocking; the
    /// count, 0 when the socket was empty.
    pub(crate) fn recv(&mut self, sock: &impl AsFd, max: usize) -> io::Result<usize> {
        self.got.clear();
        let mut slots = self.buf.chunks_mut(SLOT);
        let mut iovs: [[IoSliceMut<'_>; 1]; SLOTS] =
            std::array::from_fn(|_| [IoSliceMut::new(slots.next().unwrap_or_default())]);
        let max = max.clamp(1, SLOTS);
        let fd = sock.as_fd().as_raw_fd();
        let res = socket::recvmmsg(
            fd,
            &mut self.hdrs,
            iovs.iter_mut().take(max),
            MsgFlags::MSG_DONTWAIT,
            None,
        );
        match res {
            Ok(msgs) => {
                for m in msgs {
                    let from = m.address.as_ref().and_then(to_std);
                    let len = if m.flags.contains(MsgFlags::MSG_TRUNC) {
                        usize::MAX
                    } else {
                        m.bytes
                    };
                    self.got.push((len, from));
                }
                Ok(self.got.len())
            }
            Err(Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Self::recv`] on a socket of the runtime: a short batch also clears the socket's readiness,
    /// so its task waits for the next edge instead of making a call only to learn `EAGAIN`.
    pub(crate) fn recv_ready(&mut self, sock: &UdpSocket, max: usize) -> io::Result<usize> {
        let max = max.clamp(1, SLOTS);
        let mut n = 0;
        let got = sock.try_io(Interest::READABLE, || {
            n = self.recv(sock, max)?;
            if n < max {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        match got {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    /// Datagram `i` of the last call and its source; `None` for a truncated datagram (larger than
    /// a slot) or one without a source address.
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (span, from) = self.span(i)?;
        Some((self.buf.get(span)?, from))
    }

    /// [`Self::get`], writable (a DTLS record is decrypted in place).
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<(&mut [u8], SocketAddr)> {
        let (span, from) = self.span(i)?;
        Some((self.buf.get_mut(span)?, from))
    }

    /// Where datagram `i` lies in the buffer, and its source (as [`Self::get`] filters them).
    fn span(&self, i: usize) -> Option<(std::ops::Range<usize>, SocketAddr)> {
        let (len, from) = *self.got.get(i)?;
        if len > SLOT {
            return None;
        }
        Some((i * SLOT..i * SLOT + len, from?))
    }
}

fn to_std(ss: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = ss.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    ss.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Datagrams in one GSO send at most (the kernel's `UDP_MAX_SEGMENTS` is 64 or, since 6.11, 128).
const GSO_MAX_SEGMENTS: usize = 64;
/// UDP payload bytes in one GSO send at most (an IPv4 datagram's limit).
const GSO_MAX_BYTES: usize = 65_507;

/// A run of consecutive queued datagrams to one destination, all of `seg` bytes but the last,
/// which may be shorter: sent as one GSO datagram (`UDP_SEGMENT`) when it holds more than one.
#[derive(Debug, Clone, Copy)]
struct Group {
    /// Its first datagram (an index into `spans` and `addrs`).
    first: usize,
    /// Its datagrams.
    count: usize,
    /// The size of every datagram but the last.
    seg: usize,
    /// Its bytes.
    bytes: usize,
    /// Whether its last datagram is shorter than `seg` (the group takes no more).
    closed: bool,
}

/// Datagrams queued for one socket: payloads back to back in one buffer, with their destinations.
///
/// A burst to one destination (a video frame relayed to a client: equal-size datagrams, the last
/// maybe shorter) leaves as one UDP GSO datagram that the kernel cuts into the original datagrams,
/// so the whole burst crosses the socket, routing and netfilter layers once; every other datagram
/// goes as before, and all of them still share one `sendmmsg`. GSO is assumed until a send with it
/// fails with `EIO` or `EINVAL` (a kernel or route without UDP GSO): then this batch stops using
/// it and sends those datagrams one by one.
pub(crate) struct SendBatch {
    data: Vec<u8>,
    /// Where each payload is in `data`.
    spans: Vec<(usize, usize)>,
    /// Each payload's destination, in the form `sendmmsg` takes.
    addrs: Vec<Option<SockaddrStorage>>,
    /// The destination of the last payload, to extend its group.
    last_to: Option<SocketAddr>,
    /// The queued datagrams, grouped (one group per datagram while GSO is off).
    groups: Vec<Group>,
    /// Whether some group holds more than one datagram.
    merged: bool,
    hdrs: MultiHeaders<SockaddrStorage>,
    /// Headers with room for a `UDP_SEGMENT` control message each.
    gso_hdrs: MultiHeaders<SockaddrStorage>,
    /// The destination of each message of a GSO `sendmmsg` (one per group).
    gso_addrs: Vec<Option<SockaddrStorage>>,
    /// Whether sends may use GSO (until the kernel refuses it).
    gso: bool,
    /// Groups of more than one datagram sent with GSO.
    gso_sends: u64,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("queued", &self.spans.len())
            .field("gso", &self.gso)
            .finish_non_exhaustive()
    }
}

impl Default for SendBatch {
    fn default() -> Self {
        Self {
            data: Vec::with_capacity(SLOTS * 1500),
            spans: Vec::with_capacity(SLOTS),
            addrs: Vec::with_capacity(SLOTS),
            last_to: None,
            groups: Vec::with_capacity(SLOTS),
            merged: false,
            hdrs: MultiHeaders::preallocate(SLOTS, None),
            gso_hdrs: MultiHeaders::preallocate(SLOTS, Some(nix::cmsg_space!(u16))),
            gso_addrs: Vec::with_capacity(SLOTS),
            gso: true,
            gso_sends: 0,
        }
    }
}

impl SendBatch {
    /// Whether the batch is full (flush before queueing more).
    pub(crate) fn is_full(&self) -> bool {
        self.spans.len() >= SLOTS
    }

    /// Queues `payload` for `to`.
    pub(crate) fn push(&mut self, payload: &[u8], to: SocketAddr) {
        let start = self.data.len();
        let len = payload.len();
        self.data.extend_from_slice(payload);
        self.spans.push((start, len));
        self.addrs.push(Some(SockaddrStorage::from(to)));
        let same_to = self.last_to == Some(to);
        self.last_to = Some(to);
        if let Some(g) = self.groups.last_mut()
            && same_to
            && self.gso
            && g.extends(len)
        {
            g.count += 1;
            g.bytes += len;
            g.closed = len < g.seg;
            self.merged = true;
            return;
        }
        self.groups.push(Group {
            first: self.spans.len() - 1,
            count: 1,
            seg: len,
            bytes: len,
            closed: false,
        });
    }

    /// Groups of more than one datagram this batch has sent with GSO.
    #[cfg(test)]
    pub(crate) fn gso_sends(&self) -> u64 {
        self.gso_sends
    }

    /// Sends everything queued from `sock` (one `sendmmsg` per [`SLOTS`] datagrams); the number of
    /// datagrams the kernel refused (full send buffer, unreachable destination). Empties the batch.
    pub(crate) fn flush(&mut self, sock: &impl AsFd) -> usize {
        let fd = sock.as_fd().as_raw_fd();
        let failed = if self.merged {
            self.flush_groups(fd)
        } else {
            self.send_plain(fd, 0, self.spans.len())
        };
        self.data.clear();
        self.spans.clear();
        self.addrs.clear();
        self.groups.clear();
        self.last_to = None;
        self.merged = false;
        failed
    }

    /// Sends datagrams `from..to` one message each; the number refused.
    fn send_plain(&mut self, fd: RawFd, from: usize, to: usize) -> usize {
        let mut failed = 0;
        let mut next = from;
        while next < to {
            let spans = &self.spans[next..to];
            let k = spans.len().min(SLOTS);
            let data = &self.data;
            let iovs: [[IoSlice<'_>; 1]; SLOTS] = std::array::from_fn(|i| {
                let payload = spans
                    .get(i)
                    .map_or(&[][..], |&(at, len)| &data[at..at + len]);
                [IoSlice::new(payload)]
            });
            let sent = socket::sendmmsg(
                fd,
                &mut self.hdrs,
                iovs.iter().take(k),
                &self.addrs[next..next + k],
                [],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(Iterator::count);
            match sent {
                Ok(n) if n > 0 => next += n,
                // The first datagram was refused: count it and go on with the rest.
                _ => {
                    failed += 1;
                    next += 1;
                }
            }
        }
        failed
    }

    /// Sends the queued groups: runs of groups that can share one segment size go as one
    /// `sendmmsg` with a `UDP_SEGMENT` control message, others as plain datagrams.
    fn flush_groups(&mut self, fd: RawFd) -> usize {
        let mut failed = 0;
        let mut g = 0;
        while g < self.groups.len() {
            let (end, seg) = self.gso_run(g);
            let Some(seg) = seg.filter(|_| self.gso) else {
                let (from, to) = self.datagrams(g, end);
                failed += self.send_plain(fd, from, to);
                g = end;
                continue;
            };
            match self.send_gso(fd, g, end, seg) {
                Ok(n) if n > 0 => g += n,
                refused => {
                    if matches!(refused, Err(Errno::EIO | Errno::EINVAL)) {
                        tracing::info!(error = ?refused, "UDP GSO unavailable: sending datagrams one by one");
                        self.gso = false;
                    }
                    // Whatever the kernel refused, the group's datagrams get their own try.
                    let (from, to) = self.datagrams(g, g + 1);
                    failed += self.send_plain(fd, from, to);
                    g += 1;
                }
            }
        }
        failed
    }

    /// The groups from `g` that one GSO `sendmmsg` can carry, as their end, and its segment size
    /// (None: none holds more than one datagram). Every multi-datagram group of the run has that
    /// segment size, and every single datagram is no longer (the kernel sends a datagram no
    /// longer than the segment size unsegmented).
    fn gso_run(&self, g: usize) -> (usize, Option<usize>) {
        let mut seg: Option<usize> = None;
        let mut longest_single = 0;
        let end = (g..self.groups.len().min(g + SLOTS))
            .find(|&i| {
                let grp = &self.groups[i];
                let fits = match (grp.count, seg) {
                    (1, None) => true,
                    (1, Some(s)) => grp.bytes <= s,
                    (_, None) => longest_single <= grp.seg,
                    (_, Some(s)) => grp.seg == s,
                };
                if fits && grp.count == 1 {
                    longest_single = longest_single.max(grp.bytes);
                } else if fits {
                    seg = Some(grp.seg);
                }
                !fits
            })
            .unwrap_or_else(|| self.groups.len().min(g + SLOTS));
        (end, seg)
    }

    /// The datagrams of groups `g..end`, as a range of datagram indices.
    fn datagrams(&self, g: usize, end: usize) -> (usize, usize) {
        let last = &self.groups[end - 1];
        (self.groups[g].first, last.first + last.count)
    }

    /// One `sendmmsg` of groups `g..end`, each one message, with segment size `seg`: the number
    /// of groups sent.
    fn send_gso(&mut self, fd: RawFd, g: usize, end: usize, seg: usize) -> nix::Result<usize> {
        let groups = &self.groups[g..end];
        let (spans, data) = (&self.spans, &self.data);
        let iovs: [[IoSlice<'_>; 1]; SLOTS] = std::array::from_fn(|i| {
            let bytes = groups.get(i).map_or(&[][..], |grp| {
                let at = spans[grp.first].0;
                &data[at..at + grp.bytes]
            });
            [IoSlice::new(bytes)]
        });
        self.gso_addrs.clear();
        self.gso_addrs
            .extend(groups.iter().map(|grp| self.addrs[grp.first]));
        let seg = u16::try_from(seg).unwrap_or(u16::MAX);
        let n = socket::sendmmsg(
            fd,
            &mut self.gso_hdrs,
            iovs.iter().take(groups.len()),
            &self.gso_addrs,
            [ControlMessage::UdpGsoSegments(&seg)],
            MsgFlags::MSG_DONTWAIT,
        )?
        .count();
        let multi = groups[..n].iter().filter(|grp| grp.count > 1).count();
        self.gso_sends += multi as u64;
        Ok(n)
    }
}

impl Group {
    /// Whether a datagram of `len` bytes to the same destination may join the group.
    fn extends(&self, len: usize) -> bool {
        !self.closed
            && len <= self.seg
            && len > 0
            && self.count < GSO_MAX_SEGMENTS
            && self.bytes + len <= GSO_MAX_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_batch_round_trips_and_a_short_batch_means_empty() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("addr");
        let mut out = SendBatch::default();
        for i in 0..40u8 {
            if out.is_full() {
                assert_eq!(out.flush(&tx), 0);
            }
            out.push(&vec![i; usize::from(i) + 1], to);
        }
        assert_eq!(out.flush(&tx), 0);
        assert_eq!(out.flush(&tx), 0, "empty after a flush");
        let mut batch = RecvBatch::default();
        let mut seen = Vec::new();
        loop {
            let n = batch.recv(&rx, SLOTS).expect("recv");
            for i in 0..n {
                let (data, from) = batch.get(i).expect("datagram");
                assert_eq!(from, tx.local_addr().expect("addr"));
                assert!(data.iter().all(|b| usize::from(*b) + 1 == data.len()));
                seen.push(data[0]);
            }
            if n < SLOTS {
                break;
            }
        }
        assert_eq!(seen, (0..40).collect::<Vec<u8>>(), "all, in order");
        assert_eq!(batch.recv(&rx, SLOTS).expect("empty"), 0);
        let v6 = SockaddrStorage::from("[::1]:9".parse::<SocketAddr>().expect("addr"));
        assert_eq!(to_std(&v6), Some("[::1]:9".parse().expect("addr")));
    }

    /// Receives everything `rx` holds: (payload, source) in arrival order.
    fn drain(rx: &UdpSocket) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut batch = RecvBatch::default();
        let mut seen = Vec::new();
        loop {
            let n = batch.recv(rx, SLOTS).expect("recv");
            seen.extend((0..n).map(|i| {
                let (data, from) = batch.get(i).expect("datagram");
                (data.to_vec(), from)
            }));
            if n < SLOTS {
                return seen;
            }
        }
    }

    fn receiver() -> (UdpSocket, SocketAddr) {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        let at = rx.local_addr().expect("addr");
        (rx, at)
    }

    /// Whether the kernel knows `UDP_SEGMENT` (Linux 4.18 or later).
    fn kernel_has_gso(sock: &UdpSocket) -> bool {
        socket::getsockopt(sock, socket::sockopt::UdpGsoSegment).is_ok()
    }

    /// A frame: `count` datagrams of `seg` bytes, the last `last` bytes, each filled with its
    /// index within the frame plus `base`.
    fn frame(base: u8, count: u8, seg: usize, last: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| vec![base + i; if i + 1 == count { last } else { seg }])
            .collect()
    }

    #[test]
    fn a_burst_to_one_destination_leaves_as_one_gso_send_and_arrives_as_its_datagrams() {
        let (rx_a, a) = receiver();
        let (rx_b, b) = receiver();
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut out = SendBatch::default();
        // A single small datagram to B, a video frame of 5 × 1,204 B to A, a frame to B whose last
        // datagram is shorter, another single datagram to A: two GSO groups, one sendmmsg.
        let frame_a = frame(10, 5, 1204, 1204);
        let frame_b = frame(20, 4, 1204, 300);
        out.push(&[1; 100], b);
        for d in &frame_a {
            out.push(d, a);
        }
        for d in &frame_b {
            out.push(d, b);
        }
        out.push(&[2; 50], a);
        assert_eq!(out.flush(&tx), 0, "nothing refused");
        let expect_gso = if kernel_has_gso(&tx) { 2 } else { 0 };
        assert_eq!(out.gso_sends(), expect_gso, "the two bursts went with GSO");
        let got_a: Vec<Vec<u8>> = drain(&rx_a).into_iter().map(|(d, _)| d).collect();
        let got_b: Vec<Vec<u8>> = drain(&rx_b).into_iter().map(|(d, _)| d).collect();
        let want_a: Vec<Vec<u8>> = frame_a.into_iter().chain([vec![2; 50]]).collect();
        let want_b: Vec<Vec<u8>> = [vec![1; 100]].into_iter().chain(frame_b).collect();
        assert_eq!(
            got_a, want_a,
            "A: every datagram, its size and contents, in order"
        );
        assert_eq!(
            got_b, want_b,
            "B: every datagram, its size and contents, in order"
        );
    }

    #[test]
    fn a_burst_of_varying_sizes_is_not_merged_past_a_shorter_datagram() {
        let (rx, to) = receiver();
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut out = SendBatch::default();
        // 1,000 then 400 (shorter: ends the group), then 1,000 and 1,000 (a new group).
        let sent = [vec![1u8; 1000], vec![2; 400], vec![3; 1000], vec![4; 1000]];
        for d in &sent {
            out.push(d, to);
        }
        assert_eq!(
            out.groups.iter().map(|g| g.count).collect::<Vec<_>>(),
            [2, 2]
        );
        assert_eq!(out.flush(&tx), 0);
        let got: Vec<Vec<u8>> = drain(&rx).into_iter().map(|(d, _)| d).collect();
        assert_eq!(got, sent);
    }

    #[test]
    fn a_refused_gso_send_turns_gso_off_and_the_datagrams_still_arrive() {
        let (rx, to) = receiver();
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        // The kernel refuses GSO (EINVAL) on a socket that sends without UDP checksums, as it
        // refuses it (EIO) on a route or device that cannot segment.
        let on: nix::libc::c_int = 1;
        // SAFETY: a valid descriptor, and a pointer to an int of the length given.
        #[allow(unsafe_code)]
        let rc = unsafe {
            nix::libc::setsockopt(
                tx.as_raw_fd(),
                nix::libc::SOL_SOCKET,
                nix::libc::SO_NO_CHECK,
                std::ptr::from_ref(&on).cast(),
                size_of_val(&on) as nix::libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_NO_CHECK");
        let mut out = SendBatch::default();
        let burst = frame(1, 6, 1000, 1000);
        for d in &burst {
            out.push(d, to);
        }
        assert_eq!(out.flush(&tx), 0, "nothing lost");
        assert!(!out.gso, "GSO is off after the kernel refused it");
        assert_eq!(out.gso_sends(), 0);
        for d in &burst {
            out.push(d, to);
        }
        assert_eq!(out.groups.len(), burst.len(), "no longer merged");
        assert_eq!(out.flush(&tx), 0);
        let got: Vec<Vec<u8>> = drain(&rx).into_iter().map(|(d, _)| d).collect();
        assert_eq!(got, [burst.clone(), burst].concat());
    }
}
