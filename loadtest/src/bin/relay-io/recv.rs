//! The peer→client side: an offering thread on the other CPU sends `packets` datagrams
//! round-robin to the relay sockets, in bursts of `batch` (one `sendmmsg` each) paced to `rate`;
//! the measuring thread receives them with epoll + `recvmmsg` or with multishot io_uring receives.
//!
//! On loopback the delivery into the relay sockets' queues, and the readiness callback (epoll's
//! or io_uring's poll wake-up), run in the offering thread's context: the measuring thread's CPU
//! is the wait plus the copies out, as on a server whose NIC interrupts land on another core.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use loadtest::sys::ffi::{RecvBatch, SendBatch};
use loadtest::sys::sockets::udp_bound;
use loadtest::{Error, Result};

use crate::run::{Mode, RunConfig, Sample, Window, on_pinned_thread, pin, relay_sockets};
use crate::sys::Multishot;

/// recvmmsg slots per call, as stunnerd's relay poll uses.
const RECV_SLOTS: usize = 8;
/// Provided buffers shared by all multishot receives.
const RING_BUFFERS: u16 = 2048;
/// How long one wait blocks before the loop looks at the clock and the offering thread again.
const WAIT: Duration = Duration::from_millis(50);
/// A run ends this long after the offering thread is done if datagrams are still missing.
const GRACE: Duration = Duration::from_millis(500);

/// The offering thread's progress, shared with the receiver.
#[derive(Default)]
struct Offered {
    sent: AtomicU64,
    done: AtomicBool,
}

/// Runs one receive-side measurement of `mode` (EpollRecvmmsg or UringMultishot).
pub(crate) fn run(mode: Mode, cfg: RunConfig) -> Result<Sample> {
    let sockets = relay_sockets(cfg.sockets)?;
    let dests = sockets
        .iter()
        .map(|s| s.local_addr().map_err(|e| Error::io("relay address", e)))
        .collect::<Result<Vec<_>>>()?;
    let start = Arc::new(Barrier::new(2));
    let offered = Arc::new(Offered::default());
    let offer = {
        let (start, offered) = (start.clone(), offered.clone());
        thread::Builder::new()
            .name("relay-io-offer".into())
            .spawn(move || offer_loop(&dests, &cfg, &start, &offered))
            .map_err(|e| Error::io("spawn the offering thread", e))?
    };
    let measured = on_pinned_thread(cfg.cpu, "relay-io-recv", move || {
        let mut rx = Receiver::new(mode, &sockets)?;
        start.wait();
        rx.run(&sockets, &offered, cfg.timeout)
    });
    let offer_result = offer
        .join()
        .map_err(|_| Error::io("offering thread", io::Error::other("panicked")))?;
    let mut sample = measured?;
    sample.sent = offer_result?;
    Ok(sample)
}

/// Sends round-robin bursts of `batch` datagrams, one `sendmmsg` per burst, paced to `rate`.
/// Returns how many the kernel accepted.
fn offer_loop(
    dests: &[SocketAddr],
    cfg: &RunConfig,
    start: &Barrier,
    offered: &Offered,
) -> Result<u64> {
    pin(cfg.peer_cpu);
    let sock = udp_bound(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), 4 << 20)
        .map_err(|e| Error::io("bind the offering socket", e));
    start.wait();
    // Whatever happens, the receiver must learn that nothing more is coming.
    let result = sock.and_then(|sock| offer_bursts(&sock, dests, cfg, offered));
    offered.done.store(true, Ordering::Release);
    result
}

fn offer_bursts(
    sock: &UdpSocket,
    dests: &[SocketAddr],
    cfg: &RunConfig,
    offered: &Offered,
) -> Result<u64> {
    let mut batch = SendBatch::new(cfg.batch);
    let payload = vec![0xa5; cfg.size];
    let t0 = Instant::now();
    let (mut next, mut attempted, mut sent) = (0, 0u64, 0u64);
    while attempted < cfg.packets && t0.elapsed() < cfg.timeout {
        let n = (cfg.packets - attempted).min(cfg.batch as u64);
        for _ in 0..n {
            batch.push(Some(dests[next])).extend_from_slice(&payload);
            next = (next + 1) % dests.len();
        }
        attempted += n;
        let accepted = batch
            .flush(sock.as_raw_fd())
            .map_err(|e| Error::io("sendmmsg to the relay sockets", e))?;
        sent += accepted as u64;
        offered.sent.store(sent, Ordering::Release);
        let due = t0 + Duration::from_secs_f64(attempted as f64 / cfg.rate.max(1) as f64);
        if let Some(ahead) = due.checked_duration_since(Instant::now()) {
            thread::sleep(ahead);
        }
    }
    Ok(sent)
}

/// The measuring thread's receive driver.
enum Driver {
    Epoll {
        poll: Poll,
        events: Events,
        batch: RecvBatch,
    },
    Uring(Box<Multishot>),
}

struct Receiver {
    driver: Driver,
    sample: Sample,
}

impl Receiver {
    /// Registers every socket (setup, outside the measured window).
    fn new(mode: Mode, sockets: &[UdpSocket]) -> Result<Self> {
        let driver = match mode {
            Mode::UringMultishot => Driver::Uring(Box::new(arm_all(sockets)?)),
            _ => epoll_driver(sockets)?,
        };
        Ok(Self {
            driver,
            sample: Sample::default(),
        })
    }

    fn run(
        &mut self,
        sockets: &[UdpSocket],
        offered: &Offered,
        timeout: Duration,
    ) -> Result<Sample> {
        let fds: Vec<RawFd> = sockets.iter().map(AsRawFd::as_raw_fd).collect();
        let window = Window::open()?;
        let deadline = Instant::now() + timeout;
        let mut done_at = None;
        while Instant::now() < deadline {
            if offered.done.load(Ordering::Acquire) {
                let done_at = *done_at.get_or_insert_with(Instant::now);
                let all = self.sample.received >= offered.sent.load(Ordering::Acquire);
                if all || done_at.elapsed() > GRACE {
                    break;
                }
            }
            self.wake_up(&fds)?;
        }
        window.close(&mut self.sample)?;
        if let Driver::Uring(ms) = &self.driver {
            self.sample.rearms = ms.rearms;
        }
        Ok(self.sample)
    }

    /// One wait and everything it made ready.
    fn wake_up(&mut self, fds: &[RawFd]) -> Result<()> {
        let s = &mut self.sample;
        match &mut self.driver {
            Driver::Epoll {
                poll,
                events,
                batch,
            } => {
                s.syscalls += 1;
                match poll.poll(events, Some(WAIT)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
                    Err(e) => return Err(Error::io("epoll_wait", e)),
                }
                for ev in events.iter() {
                    drain_socket(fds[ev.token().0], batch, s)?;
                }
            }
            Driver::Uring(ms) => {
                s.syscalls += 1;
                ms.wait(WAIT).map_err(|e| Error::io("io_uring_enter", e))?;
                let mut bytes = 0;
                s.received += ms
                    .reap(fds, |p| bytes += p.len())
                    .map_err(|e| Error::io("multishot completion", e))?;
            }
        }
        Ok(())
    }
}

/// `recvmmsg` until a short batch, which with edge-triggered readiness means the socket is empty
/// (stunnerd's rule: no extra call to see EAGAIN).
fn drain_socket(fd: RawFd, batch: &mut RecvBatch, s: &mut Sample) -> Result<()> {
    loop {
        s.syscalls += 1;
        let n = batch
            .recv(fd, false)
            .map_err(|e| Error::io("recvmmsg", e))?;
        s.received += n as u64;
        if n < RECV_SLOTS {
            return Ok(());
        }
    }
}

fn epoll_driver(sockets: &[UdpSocket]) -> Result<Driver> {
    let poll = Poll::new().map_err(|e| Error::io("epoll_create", e))?;
    for (i, s) in sockets.iter().enumerate() {
        poll.registry()
            .register(&mut SourceFd(&s.as_raw_fd()), Token(i), Interest::READABLE)
            .map_err(|e| Error::io("epoll_ctl", e))?;
    }
    Ok(Driver::Epoll {
        poll,
        events: Events::with_capacity(1024),
        batch: RecvBatch::new(RECV_SLOTS, 2048),
    })
}

fn arm_all(sockets: &[UdpSocket]) -> Result<Multishot> {
    let mut ms = Multishot::new(RING_BUFFERS, 2048)
        .map_err(|e| Error::io("io_uring setup for multishot receive", e))?;
    for (i, s) in sockets.iter().enumerate() {
        ms.arm(i, s.as_raw_fd())
            .map_err(|e| Error::io("arm multishot recvmsg", e))?;
    }
    ms.submit().map_err(|e| Error::io("io_uring_enter", e))?;
    Ok(ms)
}
