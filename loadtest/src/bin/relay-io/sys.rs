//! relay-io's one module with `unsafe`: the thread CPU clock (`getrusage(RUSAGE_THREAD)`), forced
//! socket buffers, and the two io_uring drivers ([`SendRing`], [`Multishot`]), whose submission
//! entries carry raw pointers that must outlive the kernel's use of them.
//!
//! Every pointer handed to the kernel points into memory owned by the driver struct, which
//! outlives the ring it owns: a `SendRing` reaps every send before `send_each` returns, and a
//! `Multishot` unregisters its buffer ring before freeing it (and leaks it if that fails).
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::io;
use std::mem::{self, ManuallyDrop};
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

/// User and system CPU time of one thread.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ThreadCpu {
    pub(crate) user: Duration,
    pub(crate) sys: Duration,
}

impl ThreadCpu {
    /// The calling thread's CPU time so far (`getrusage(RUSAGE_THREAD)`: the total is the
    /// scheduler's nanosecond runtime, the user/system split is sampled per tick).
    pub(crate) fn now() -> io::Result<Self> {
        // SAFETY: getrusage only writes the rusage struct we own.
        let ru = unsafe {
            let mut ru: libc::rusage = mem::zeroed();
            if libc::getrusage(libc::RUSAGE_THREAD, &mut ru) != 0 {
                return Err(io::Error::last_os_error());
            }
            ru
        };
        Ok(Self {
            user: timeval(ru.ru_utime),
            sys: timeval(ru.ru_stime),
        })
    }

    /// CPU time spent since `earlier`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    pub(crate) fn total(self) -> Duration {
        self.user + self.sys
    }
}

fn timeval(t: libc::timeval) -> Duration {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let micros = u64::try_from(t.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

fn context(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Sets SO_RCVBUFFORCE (root only, beyond rmem_max); false when refused.
pub(crate) fn force_rcvbuf(fd: RawFd, bytes: usize) -> bool {
    let val = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads one c_int that lives for the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            ptr::from_ref(&val).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = addr.port().to_be();
    sin.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    sin
}

/// A ring for the measuring thread: SINGLE_ISSUER + DEFER_TASKRUN (completion work runs only
/// inside our own `io_uring_enter`, so it is charged to this thread) when the kernel takes them.
/// Returns the ring and whether DEFER_TASKRUN is on. Must be built on the thread that uses it.
pub(crate) fn new_ring(sq: u32, cq: u32) -> io::Result<(IoUring, bool)> {
    let deferred = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(cq)
        .build(sq);
    match deferred {
        Ok(ring) => Ok((ring, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let ring = IoUring::builder().setup_cqsize(cq).build(sq)?;
            Ok((ring, false))
        }
        Err(e) => Err(e),
    }
}

/// `sendto`-style sends of one payload from many sockets, one submission per batch.
pub(crate) struct SendRing {
    // Declared first: dropped (closed) before the memory its entries point into.
    ring: IoUring,
    payload: Box<[u8]>,
    dest: Box<libc::sockaddr_in>,
}

/// What one [`SendRing::send_each`] did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SendOutcome {
    /// Datagrams the kernel accepted.
    pub(crate) sent: u64,
    /// Datagrams refused with EAGAIN (socket buffer full).
    pub(crate) dropped: u64,
    /// `io_uring_enter` calls made.
    pub(crate) enters: u64,
}

impl SendRing {
    pub(crate) fn new(entries: u32, dest: SocketAddrV4, payload: &[u8]) -> io::Result<Self> {
        let (ring, _) = new_ring(entries, entries * 2)?;
        Ok(Self {
            ring,
            payload: payload.into(),
            dest: Box::new(sockaddr_in(dest)),
        })
    }

    /// Sends the payload once from each socket in `fds` (at most the ring's size) as one batch of
    /// IORING_OP_SEND entries with a destination address, submitted and reaped with one
    /// `io_uring_enter` (more only if interrupted).
    pub(crate) fn send_each(&mut self, fds: &[RawFd]) -> io::Result<SendOutcome> {
        let len = u32::try_from(self.payload.len()).map_err(io::Error::other)?;
        let addr_len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        {
            let mut sq = self.ring.submission();
            for (i, &fd) in fds.iter().enumerate() {
                let entry = opcode::Send::new(Fd(fd), self.payload.as_ptr(), len)
                    .dest_addr(ptr::from_ref(&*self.dest).cast())
                    .dest_addr_len(addr_len)
                    .build()
                    .user_data(i as u64);
                // SAFETY: the payload and address are owned by self, which outlives the ring.
                unsafe { sq.push(&entry) }
                    .map_err(|_| io::Error::other("submission queue full"))?;
            }
        }
        let mut out = SendOutcome::default();
        let mut reaped = 0;
        while reaped < fds.len() {
            out.enters += 1;
            match self.ring.submit_and_wait(fds.len() - reaped) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            for cqe in self.ring.completion() {
                reaped += 1;
                match cqe.result() {
                    r if r >= 0 => out.sent += 1,
                    r if r == -libc::EAGAIN => out.dropped += 1,
                    r => return Err(io::Error::from_raw_os_error(-r)),
                }
            }
        }
        Ok(out)
    }
}

const BUF_GROUP: u16 = 7;

/// A provided-buffer ring (IORING_REGISTER_PBUF_RING): `entries` buffers of `size` bytes that the
/// kernel picks from for each received datagram and that we hand back after reading.
struct BufRing {
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    data: Vec<u8>,
    size: usize,
    entries: u16,
    tail: u16,
}

impl BufRing {
    fn new(entries: u16, size: usize) -> io::Result<Self> {
        if !entries.is_power_of_two() {
            return Err(io::Error::other("buffer ring size must be a power of two"));
        }
        let bytes = usize::from(entries) * size_of::<BufRingEntry>();
        let ring_layout = Layout::from_size_align(bytes, 4096).map_err(io::Error::other)?;
        // SAFETY: the layout's size is non-zero (entries is a power of two, so at least 1).
        let ring = unsafe { alloc::alloc_zeroed(ring_layout) }.cast::<BufRingEntry>();
        if ring.is_null() {
            return Err(io::Error::other("buffer ring allocation failed"));
        }
        let mut bufs = Self {
            ring,
            ring_layout,
            data: vec![0; usize::from(entries) * size],
            size,
            entries,
            tail: 0,
        };
        for bid in 0..entries {
            bufs.recycle(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// Queues buffer `bid` for the kernel again (visible after [`publish`](Self::publish)).
    fn recycle(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.entries - 1));
        let addr = self.data.as_ptr() as u64 + u64::from(bid) * self.size as u64;
        // SAFETY: slot < entries, the ring's length.
        let entry = unsafe { &mut *self.ring.add(slot) };
        entry.set_addr(addr);
        entry.set_len(u32::try_from(self.size).unwrap_or(u32::MAX));
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the recycled buffers visible to the kernel (one release store of the tail).
    fn publish(&self) {
        // SAFETY: the tail is a u16 inside the ring's first entry, suitably aligned; the kernel
        // only reads it.
        unsafe {
            let tail = BufRingEntry::tail(self.ring).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * self.size;
        &self.data[start..start + len.min(self.size)]
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the owner has unregistered the ring.
        unsafe { alloc::dealloc(self.ring.cast(), self.ring_layout) }
    }
}

/// One multishot IORING_OP_RECVMSG per relay socket, all drawing from one provided-buffer ring.
pub(crate) struct Multishot {
    // Declared first: closed after `drop` has unregistered the buffer ring.
    ring: IoUring,
    bufs: ManuallyDrop<BufRing>,
    msghdr: Box<libc::msghdr>,
    cqes: Vec<(u64, i32, u32)>,
    /// Multishot requests re-armed because the kernel ended them (out of buffers, CQ overflow).
    pub(crate) rearms: u64,
}

impl Multishot {
    /// A ring with `buffers` provided buffers of `buf_size` bytes (datagram plus the 32-byte
    /// header and IPv4 address the kernel writes in front of it).
    pub(crate) fn new(buffers: u16, buf_size: usize) -> io::Result<Self> {
        // Room for a completion per buffer plus the ends of requests; at least the SQ's size.
        let cq = (u32::from(buffers) * 2).max(2048);
        let (ring, _) = new_ring(1024, cq).map_err(|e| context("io_uring_setup", e))?;
        let bufs = BufRing::new(buffers, buf_size)?;
        // SAFETY: the ring memory lives until `drop`, which unregisters it before freeing.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(bufs.ring as u64, buffers, BUF_GROUP, 0)
                .map_err(|e| context("IORING_REGISTER_PBUF_RING", e))?;
        }
        // SAFETY: all-zero is a valid msghdr; only the name length matters for multishot.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { mem::zeroed() });
        msghdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        Ok(Self {
            ring,
            bufs: ManuallyDrop::new(bufs),
            msghdr,
            cqes: Vec::with_capacity(cq as usize),
            rearms: 0,
        })
    }

    /// Queues a multishot receive on `fd` tagged `idx` (submitted by the next enter; submits
    /// first when the submission queue is full).
    pub(crate) fn arm(&mut self, idx: usize, fd: RawFd) -> io::Result<()> {
        let entry = opcode::RecvMsgMulti::new(Fd(fd), &raw const *self.msghdr, BUF_GROUP)
            .build()
            .user_data(idx as u64);
        if self.push(&entry).is_err() {
            self.ring.submit()?;
            self.push(&entry)
                .map_err(|_| io::Error::other("submission queue full"))?;
        }
        Ok(())
    }

    fn push(&mut self, entry: &squeue::Entry) -> Result<(), squeue::PushError> {
        // SAFETY: the msghdr is owned by self and the buffer group stays registered while the
        // ring lives.
        unsafe { self.ring.submission().push(entry) }
    }

    /// Submits what is queued without waiting (setup, not a measured call).
    pub(crate) fn submit(&mut self) -> io::Result<()> {
        self.ring.submit().map(drop)
    }

    /// One `io_uring_enter`: submits what is queued and waits for at least one completion or
    /// `timeout`. Returns false on timeout or interruption.
    pub(crate) fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        let ts = Timespec::from(timeout);
        let args = SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Handles every completion queued so far: calls `on_datagram` with each payload, hands the
    /// buffers back, and re-arms the sockets whose multishot ended. Returns the datagram count.
    pub(crate) fn reap(
        &mut self,
        fds: &[RawFd],
        mut on_datagram: impl FnMut(&[u8]),
    ) -> io::Result<u64> {
        self.cqes.clear();
        for cqe in self.ring.completion() {
            self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
        let mut count = 0;
        for i in 0..self.cqes.len() {
            let (idx, res, flags) = self.cqes[i];
            if let Some(bid) = cqueue::buffer_select(flags) {
                let len = usize::try_from(res).unwrap_or(0);
                let out = RecvMsgOut::parse(self.bufs.buffer(bid, len), &self.msghdr)
                    .map_err(|()| io::Error::other("malformed multishot recvmsg buffer"))?;
                on_datagram(out.payload_data());
                count += 1;
                self.bufs.recycle(bid);
            } else if res < 0 && res != -libc::ENOBUFS {
                let e = io::Error::from_raw_os_error(-res);
                return Err(context("multishot IORING_OP_RECVMSG completion", e));
            }
            if !cqueue::more(flags) {
                let idx = usize::try_from(idx).map_err(io::Error::other)?;
                self.rearms += 1;
                self.arm(idx, fds[idx])?;
            }
        }
        self.bufs.publish();
        Ok(count)
    }
}

impl Drop for Multishot {
    fn drop(&mut self) {
        // After the unregister the kernel picks no more buffers, and a selected one is only
        // written inside our own enter (DEFER_TASKRUN) or task work, never concurrently.
        if self.ring.submitter().unregister_buf_ring(BUF_GROUP).is_ok() {
            // SAFETY: dropped once, here, and no longer registered with the kernel.
            unsafe { ManuallyDrop::drop(&mut self.bufs) }
        }
    }
}
