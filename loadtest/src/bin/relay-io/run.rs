//! What one measured run is given ([`RunConfig`], [`Mode`]) and what it yields ([`Sample`]), and
//! the pieces both sides share: the relay sockets and the pinned measuring thread.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use loadtest::sys::ffi::pin_current_thread;
use loadtest::sys::procfs::{Pid, cpu_time};
use loadtest::sys::sockets::udp_bound;
use loadtest::{Error, Result};

use crate::sys::ThreadCpu;

/// The four ways of moving relay datagrams that are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Mode {
    /// Client→peer today: one `sendto` per datagram, each on its allocation's socket.
    Sendto,
    /// The same datagrams as one batch of IORING_OP_SEND entries per `io_uring_enter`.
    UringSend,
    /// Peer→client today: `epoll_wait`, then `recvmmsg` (8 slots) per ready socket.
    EpollRecvmmsg,
    /// One multishot IORING_OP_RECVMSG per socket and one provided-buffer ring for all.
    UringMultishot,
}

impl Mode {
    pub(crate) const ALL: [Self; 4] = [
        Self::Sendto,
        Self::UringSend,
        Self::EpollRecvmmsg,
        Self::UringMultishot,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sendto => "sendto",
            Self::UringSend => "uring-send",
            Self::EpollRecvmmsg => "epoll-recvmmsg",
            Self::UringMultishot => "uring-multishot",
        }
    }

    /// "send" (the measuring thread sends) or "recv" (it receives).
    pub(crate) fn side(self) -> &'static str {
        match self {
            Self::Sendto | Self::UringSend => "send",
            Self::EpollRecvmmsg | Self::UringMultishot => "recv",
        }
    }

    pub(crate) fn uses_uring(self) -> bool {
        matches!(self, Self::UringSend | Self::UringMultishot)
    }

    /// The mode this one is compared against.
    pub(crate) fn baseline(self) -> Self {
        match self {
            Self::Sendto | Self::UringSend => Self::Sendto,
            Self::EpollRecvmmsg | Self::UringMultishot => Self::EpollRecvmmsg,
        }
    }
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunConfig {
    /// Relay sockets (allocations).
    pub(crate) sockets: usize,
    /// Datagrams per batch: per `io_uring_enter` (send side), per offered burst (receive side).
    pub(crate) batch: usize,
    /// Datagrams to move.
    pub(crate) packets: u64,
    /// Datagram payload bytes.
    pub(crate) size: usize,
    /// Offered rate on the receive side (datagrams/s).
    pub(crate) rate: u64,
    /// CPU of the measuring thread.
    pub(crate) cpu: usize,
    /// CPU of the other side (sink or offering sender).
    pub(crate) peer_cpu: usize,
    /// A run gives up after this long.
    pub(crate) timeout: Duration,
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sample {
    /// Datagrams the sending side handed to the kernel.
    pub(crate) sent: u64,
    /// Datagrams the receiving side got.
    pub(crate) received: u64,
    /// CPU of the measuring thread over the measured loop.
    pub(crate) cpu: ThreadCpu,
    /// CPU of the whole process over the same window (10 ms ticks; includes the other side and
    /// any io_uring worker thread).
    pub(crate) process_cpu: Duration,
    /// System calls the measuring thread made in the loop (counted at each call site).
    pub(crate) syscalls: u64,
    /// Flow-control pauses (send side: the sink fell behind); not counted in `syscalls`.
    pub(crate) pauses: u64,
    /// Multishot requests re-armed during the loop.
    pub(crate) rearms: u64,
    pub(crate) wall: Duration,
}

impl Sample {
    /// Datagrams the measuring thread handled.
    pub(crate) fn handled(&self, mode: Mode) -> u64 {
        if mode.side() == "send" {
            self.sent
        } else {
            self.received
        }
    }
}

/// Start of a measurement window on the measuring thread.
pub(crate) struct Window {
    cpu: ThreadCpu,
    process: Duration,
    wall: Instant,
}

impl Window {
    pub(crate) fn open() -> Result<Self> {
        Ok(Self {
            cpu: ThreadCpu::now().map_err(|e| Error::io("getrusage(RUSAGE_THREAD)", e))?,
            process: cpu_time(Pid::SelfProcess)?,
            wall: Instant::now(),
        })
    }

    /// Fills the CPU and wall fields of `sample`.
    pub(crate) fn close(&self, sample: &mut Sample) -> Result<()> {
        let cpu = ThreadCpu::now().map_err(|e| Error::io("getrusage(RUSAGE_THREAD)", e))?;
        sample.cpu = cpu.since(self.cpu);
        sample.process_cpu = cpu_time(Pid::SelfProcess)?.saturating_sub(self.process);
        sample.wall = self.wall.elapsed();
        Ok(())
    }
}

/// `n` non-blocking UDP sockets on 127.0.0.1 with the kernel's default buffers, as relay
/// sockets are.
pub(crate) fn relay_sockets(n: usize) -> Result<Vec<UdpSocket>> {
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    (0..n)
        .map(|i| udp_bound(any, 0).map_err(|e| Error::io(format!("relay socket {i} of {n}"), e)))
        .collect()
}

/// Pins the calling thread, warning (once per thread) instead of failing when it cannot.
pub(crate) fn pin(cpu: usize) {
    if let Err(e) = pin_current_thread(&[cpu]) {
        eprintln!("relay-io: cannot pin a thread to CPU {cpu} ({e}); running unpinned");
    }
}

/// Runs `body` on a new thread pinned to `cpu` and returns its result.
pub(crate) fn on_pinned_thread<T: Send + 'static>(
    cpu: usize,
    name: &str,
    body: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let handle = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            pin(cpu);
            body()
        })
        .map_err(|e| Error::io(format!("spawn {name}"), e))?;
    handle
        .join()
        .map_err(|_| Error::io(format!("thread {name}"), io::Error::other("panicked")))?
}
