//! The client→peer side: the measuring thread sends `packets` datagrams round-robin from the
//! relay sockets to one sink socket, `batch` at a time, either with one `sendto` each or as one
//! io_uring submission; a sink thread on the other CPU receives and counts them.
//!
//! On loopback the whole delivery (IP, UDP, the sink's queue and its wake-up) runs inside the
//! sender's call, so both modes' CPU includes it; a NIC would end the sender's work at the driver.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use loadtest::sys::ffi::RecvBatch;
use loadtest::sys::sockets::udp_bound;
use loadtest::{Error, Result};

use crate::run::{Mode, RunConfig, Sample, Window, on_pinned_thread, pin, relay_sockets};
use crate::sys::{SendRing, force_rcvbuf};

/// The sink's receive buffer, forced past rmem_max when root.
const SINK_RCVBUF: usize = 16 << 20;

/// The sink thread and the counters it shares with the sender.
struct Sink {
    addr: SocketAddrV4,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<io::Result<()>>,
    /// Datagrams that may be queued at the sink before the sender pauses (half its buffer).
    window: u64,
}

impl Sink {
    fn start(cpu: usize) -> Result<Self> {
        let sock = udp_bound(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), SINK_RCVBUF)
            .map_err(|e| Error::io("bind the sink socket", e))?;
        force_rcvbuf(sock.as_raw_fd(), SINK_RCVBUF);
        let rcvbuf = socket2::SockRef::from(&sock)
            .recv_buffer_size()
            .map_err(|e| Error::io("SO_RCVBUF", e))?;
        let addr = match sock.local_addr() {
            Ok(SocketAddr::V4(a)) => a,
            Ok(other) => return Err(Error::Config(format!("sink bound to {other}, not IPv4"))),
            Err(e) => return Err(Error::io("sink address", e)),
        };
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let handle = thread::Builder::new()
            .name("relay-io-sink".into())
            .spawn(move || sink_loop(&sock, cpu, &r, &s))
            .map_err(|e| Error::io("spawn the sink", e))?;
        Ok(Self {
            addr,
            received,
            stop,
            handle,
            // A 160-byte datagram takes about 1 KiB of buffer accounting (its skb's truesize).
            window: (rcvbuf as u64 / 2048).max(64),
        })
    }

    /// Waits until the sink has `sent` datagrams (or a second without progress), stops it, and
    /// returns how many it received.
    fn finish(self, sent: u64) -> Result<u64> {
        let mut last = (self.received.load(Ordering::Acquire), Instant::now());
        while last.0 < sent && last.1.elapsed() < Duration::from_secs(1) {
            thread::sleep(Duration::from_millis(5));
            let now = self.received.load(Ordering::Acquire);
            if now != last.0 {
                last = (now, Instant::now());
            }
        }
        self.stop.store(true, Ordering::Release);
        self.handle
            .join()
            .map_err(|_| Error::io("sink", io::Error::other("panicked")))?
            .map_err(|e| Error::io("sink recvmmsg", e))?;
        Ok(self.received.load(Ordering::Acquire))
    }
}

fn sink_loop(
    sock: &UdpSocket,
    cpu: usize,
    received: &AtomicU64,
    stop: &AtomicBool,
) -> io::Result<()> {
    pin(cpu);
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut batch = RecvBatch::new(64, 2048);
    loop {
        let n = batch.recv(sock.as_raw_fd(), true)?;
        if n == 0 && stop.load(Ordering::Acquire) {
            return Ok(());
        }
        received.fetch_add(n as u64, Ordering::Release);
    }
}

/// Runs one send-side measurement of `mode` (Sendto or UringSend) on a pinned thread.
pub(crate) fn run(mode: Mode, cfg: RunConfig) -> Result<Sample> {
    let sink = Sink::start(cfg.peer_cpu)?;
    let sockets = relay_sockets(cfg.sockets)?;
    let (dest, window, received) = (sink.addr, sink.window, sink.received.clone());
    let measured = on_pinned_thread(cfg.cpu, "relay-io-send", move || {
        let mut sender = Sender::new(mode, &cfg, dest, window, received)?;
        sender.run(&sockets)?;
        Ok(sender.sample)
    });
    let mut sample = measured?;
    sample.received = sink.finish(sample.sent)?;
    Ok(sample)
}

/// The measuring thread's state.
struct Sender {
    cfg: RunConfig,
    dest: SocketAddrV4,
    payload: Vec<u8>,
    ring: Option<SendRing>,
    batch_fds: Vec<RawFd>,
    window: u64,
    sink_received: Arc<AtomicU64>,
    sample: Sample,
}

impl Sender {
    fn new(
        mode: Mode,
        cfg: &RunConfig,
        dest: SocketAddrV4,
        window: u64,
        sink_received: Arc<AtomicU64>,
    ) -> Result<Self> {
        let payload = vec![0x5a; cfg.size];
        let ring = match mode {
            Mode::UringSend => {
                let entries = u32::try_from(cfg.batch.next_power_of_two()).unwrap_or(4096);
                Some(
                    SendRing::new(entries, dest, &payload)
                        .map_err(|e| Error::io("io_uring setup for sends", e))?,
                )
            }
            _ => None,
        };
        Ok(Self {
            cfg: *cfg,
            dest,
            payload,
            ring,
            batch_fds: Vec::with_capacity(cfg.batch),
            window,
            sink_received,
            sample: Sample::default(),
        })
    }

    fn run(&mut self, sockets: &[UdpSocket]) -> Result<()> {
        let fds: Vec<RawFd> = sockets.iter().map(AsRawFd::as_raw_fd).collect();
        let mut batch = Vec::with_capacity(self.cfg.batch);
        let (mut next, mut attempted) = (0, 0);
        let window = Window::open()?;
        while attempted < self.cfg.packets {
            self.wait_for_sink();
            let n = (self.cfg.packets - attempted).min(self.cfg.batch as u64);
            batch.clear();
            for _ in 0..n {
                batch.push(next);
                next = (next + 1) % sockets.len();
            }
            if self.ring.is_some() {
                self.send_batch(&batch, &fds)?;
            } else {
                self.send_each(&batch, sockets)?;
            }
            attempted += n;
        }
        window.close(&mut self.sample)
    }

    /// One io_uring submission for the batch (`batch` indexes `fds`).
    fn send_batch(&mut self, batch: &[usize], fds: &[RawFd]) -> Result<()> {
        let Some(ring) = self.ring.as_mut() else {
            return Ok(());
        };
        self.batch_fds.clear();
        self.batch_fds.extend(batch.iter().map(|&i| fds[i]));
        let out = ring
            .send_each(&self.batch_fds)
            .map_err(|e| Error::io("io_uring send batch", e))?;
        self.sample.sent += out.sent;
        self.sample.syscalls += out.enters;
        Ok(())
    }

    /// One `sendto` per datagram (std's `send_to` is exactly that call).
    fn send_each(&mut self, batch: &[usize], sockets: &[UdpSocket]) -> Result<()> {
        let dest = SocketAddr::V4(self.dest);
        for &i in batch {
            self.sample.syscalls += 1;
            match sockets[i].send_to(&self.payload, dest) {
                Ok(_) => self.sample.sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::io("sendto", e)),
            }
        }
        Ok(())
    }

    /// Pauses while more than `window` datagrams wait at the sink (so none is dropped there).
    fn wait_for_sink(&mut self) {
        while self.sample.sent
            - self
                .sink_received
                .load(Ordering::Acquire)
                .min(self.sample.sent)
            > self.window
        {
            self.sample.pauses += 1;
            thread::sleep(Duration::from_micros(20));
        }
    }
}
