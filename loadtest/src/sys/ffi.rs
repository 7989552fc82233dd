//! The one module with `unsafe`: raw libc calls the standard library does not offer.
//!
//! - `recvmmsg`/`sendmmsg` batches ([`RecvBatch`], [`SendBatch`]) so the load generator pays one
//!   syscall per batch of datagrams instead of one per datagram;
//! - CPU pinning of the calling thread (`sched_setaffinity`);
//! - raising the open-file limit (one socket per allocation);
//! - the kernel clock tick rate used by `/proc/<pid>/stat`.
//!
//! Every buffer handed to the kernel is owned by the batch struct and sized at construction, so the
//! pointers written into the `mmsghdr` arrays stay valid for the duration of each call.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr;

/// Clock ticks per second used by `/proc/<pid>/stat` (USER_HZ), 100 if unknown.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100)
}

/// Pins the calling thread to the given CPUs (an empty list is a no-op).
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is a plain bitmask; CPU_SET bounds-checks against its size.
    unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    // SAFETY: getrlimit/setrlimit only read/write the rlimit struct we own.
    unsafe {
        let mut lim: libc::rlimit = mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(lim.rlim_cur)
    }
}

fn storage_to_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough for.
            let sin = unsafe { &*ptr::from_ref(ss).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(ss).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn addr_to_storage(addr: SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *ptr::from_mut(ss).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *ptr::from_mut(ss).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

fn zeroed_vec<T>(n: usize) -> Vec<T> {
    // SAFETY: only used for C structs (sockaddr_storage, iovec, mmsghdr) where all-zero is valid.
    (0..n).map(|_| unsafe { mem::zeroed() }).collect()
}

/// A reusable `recvmmsg` batch: `capacity` slots of `slot` bytes each.
pub struct RecvBatch {
    bufs: Vec<u8>,
    slot: usize,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    filled: usize,
}

// SAFETY: the raw pointers inside the headers only ever point into this struct's own heap buffers
// and are rewritten before every syscall, so moving the batch to another thread is sound.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Allocates `capacity` slots of `slot` bytes (datagrams longer than `slot` are truncated).
    pub fn new(capacity: usize, slot: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            bufs: vec![0; capacity * slot],
            slot,
            addrs: zeroed_vec(capacity),
            iovs: zeroed_vec(capacity),
            hdrs: zeroed_vec(capacity),
            filled: 0,
        }
    }

    /// Receives up to `capacity` datagrams. Non-blocking unless `wait` (then it blocks for the
    /// first one, subject to the socket's receive timeout). `Ok(0)` when nothing is ready.
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        self.filled = 0;
        let base = self.bufs.as_mut_ptr();
        for i in 0..self.hdrs.len() {
            self.iovs[i] = libc::iovec {
                // SAFETY: i * slot < bufs.len() by construction.
                iov_base: unsafe { base.add(i * self.slot) }.cast(),
                iov_len: self.slot,
            };
            let hdr = &mut self.hdrs[i];
            hdr.msg_hdr.msg_name = ptr::from_mut(&mut self.addrs[i]).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_iov = ptr::from_mut(&mut self.iovs[i]);
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_len = 0;
        }
        let flags = if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        let n = self.hdrs.len() as libc::c_uint;
        // SAFETY: every header points into buffers owned by self that outlive the call.
        let r = unsafe { libc::recvmmsg(fd, self.hdrs.as_mut_ptr(), n, flags, ptr::null_mut()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        self.filled = r as usize;
        Ok(self.filled)
    }

    /// Datagram `i` of the last `recv` and its source (None for an unknown address family).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        if i >= self.filled {
            return (&[], None);
        }
        let len = (self.hdrs[i].msg_len as usize).min(self.slot);
        let start = i * self.slot;
        (
            &self.bufs[start..start + len],
            storage_to_addr(&self.addrs[i]),
        )
    }
}

/// A reusable `sendmmsg` batch of up to `capacity` datagrams, each in its own retained buffer.
pub struct SendBatch {
    bufs: Vec<Vec<u8>>,
    dests: Vec<Option<SocketAddr>>,
    len: usize,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: as for RecvBatch: pointers are rebuilt from owned buffers before every syscall.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// A batch holding at most `capacity` datagrams.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            bufs: (0..capacity).map(|_| Vec::with_capacity(2048)).collect(),
            dests: vec![None; capacity],
            len: 0,
            addrs: zeroed_vec(capacity),
            iovs: zeroed_vec(capacity),
            hdrs: zeroed_vec(capacity),
        }
    }

    /// Number of queued datagrams.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when another `push` would not fit (flush first).
    pub fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    /// Queues a datagram to `dest` (None on a connected socket) and returns its cleared buffer to
    /// fill. Panics if full: callers check `is_full` first (this is our own invariant, not input).
    pub fn push(&mut self, dest: Option<SocketAddr>) -> &mut Vec<u8> {
        let i = self.len;
        self.len += 1;
        self.dests[i] = dest;
        let buf = &mut self.bufs[i];
        buf.clear();
        buf
    }

    /// Drops the last queued datagram (e.g. when encoding it failed).
    pub fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// Sends every queued datagram and empties the batch. Returns how many the kernel accepted;
    /// the rest (socket buffer full) are dropped. A hard error is returned after emptying.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<usize> {
        let count = mem::replace(&mut self.len, 0);
        for i in 0..count {
            let buf = &mut self.bufs[i];
            self.iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let hdr = &mut self.hdrs[i];
            match self.dests[i] {
                Some(dest) => {
                    hdr.msg_hdr.msg_namelen = addr_to_storage(dest, &mut self.addrs[i]);
                    hdr.msg_hdr.msg_name = ptr::from_mut(&mut self.addrs[i]).cast();
                }
                None => {
                    hdr.msg_hdr.msg_namelen = 0;
                    hdr.msg_hdr.msg_name = ptr::null_mut();
                }
            }
            hdr.msg_hdr.msg_iov = ptr::from_mut(&mut self.iovs[i]);
            hdr.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < count {
            let n = (count - sent) as libc::c_uint;
            // SAFETY: headers [sent, count) point into buffers owned by self.
            let r = unsafe {
                libc::sendmmsg(fd, self.hdrs.as_mut_ptr().add(sent), n, libc::MSG_DONTWAIT)
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => Ok(sent),
                    _ if sent > 0 => Ok(sent),
                    _ => Err(e),
                };
            }
            sent += r as usize;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn batch_round_trip_over_loopback() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_addr = b.local_addr().unwrap();
        let mut send = SendBatch::new(4);
        for i in 0..4u8 {
            send.push(Some(b_addr)).extend_from_slice(&[i; 10]);
        }
        assert!(send.is_full());
        assert_eq!(send.flush(a.as_raw_fd()).unwrap(), 4);
        assert!(send.is_empty());
        b.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut recv = RecvBatch::new(8, 64);
        let mut got = Vec::new();
        while got.len() < 4 {
            let n = recv.recv(b.as_raw_fd(), true).unwrap();
            assert!(n > 0, "timed out");
            for i in 0..n {
                let (data, from) = recv.get(i);
                assert_eq!(from, Some(a.local_addr().unwrap()));
                got.push(data.to_vec());
            }
        }
        assert_eq!(got, (0..4u8).map(|i| vec![i; 10]).collect::<Vec<_>>());
        assert_eq!(recv.recv(b.as_raw_fd(), false).unwrap(), 0);
    }

    #[test]
    fn v6_addresses_convert_both_ways() {
        let addr: SocketAddr = "[::1]:4242".parse().unwrap();
        let mut ss: libc::sockaddr_storage = zeroed_vec(1).pop().unwrap();
        addr_to_storage(addr, &mut ss);
        assert_eq!(storage_to_addr(&ss), Some(addr));
    }

    #[test]
    fn nofile_limit_is_positive() {
        assert!(raise_nofile_limit().unwrap() >= 64);
    }
}
