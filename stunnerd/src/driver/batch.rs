//! Batched datagram I/O: [`RecvBatch`] receives up to [`SLOTS`] datagrams with one `recvmmsg`,
//! [`SendBatch`] queues datagrams for one socket and sends them with one `sendmmsg` (through `nix`).
//! A batch that comes back short means the socket was empty at that moment, which with
//! edge-triggered readiness is as good as the `EAGAIN` a further call would return: the caller
//! saves that call.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{self, MsgFlags, MultiHeaders, SockaddrStorage};
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
            Err(nix::errno::Errno::EAGAIN) => Ok(0),
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
        let (len, from) = *self.got.get(i)?;
        if len > SLOT {
            return None;
        }
        let data = self.buf.get(i * SLOT..i * SLOT + len)?;
        Some((data, from?))
    }
}

fn to_std(ss: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = ss.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    ss.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Datagrams queued for one socket: payloads back to back in one buffer, with their destinations.
pub(crate) struct SendBatch {
    data: Vec<u8>,
    /// Where each payload is in `data`.
    spans: Vec<(usize, usize)>,
    /// Each payload's destination, in the form `sendmmsg` takes.
    addrs: Vec<Option<SockaddrStorage>>,
    hdrs: MultiHeaders<SockaddrStorage>,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("queued", &self.spans.len())
            .finish_non_exhaustive()
    }
}

impl Default for SendBatch {
    fn default() -> Self {
        Self {
            data: Vec::with_capacity(SLOTS * 1500),
            spans: Vec::with_capacity(SLOTS),
            addrs: Vec::with_capacity(SLOTS),
            hdrs: MultiHeaders::preallocate(SLOTS, None),
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
        self.data.extend_from_slice(payload);
        self.spans.push((start, payload.len()));
        self.addrs.push(Some(SockaddrStorage::from(to)));
    }

    /// Sends everything queued from `sock` (one `sendmmsg` per [`SLOTS`] datagrams); the number of
    /// datagrams the kernel refused (full send buffer, unreachable destination). Empties the batch.
    pub(crate) fn flush(&mut self, sock: &impl AsFd) -> usize {
        let fd = sock.as_fd().as_raw_fd();
        let mut failed = 0;
        let mut next = 0;
        while next < self.spans.len() {
            let spans = &self.spans[next..];
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
        self.data.clear();
        self.spans.clear();
        self.addrs.clear();
        failed
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
}
