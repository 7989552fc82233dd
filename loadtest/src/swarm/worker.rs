//! One swarm worker thread: a mio event loop over its share of the allocations and its own echo
//! peer. Phases: Active (open, send) → Drain (wait for in-flight) → Hold (idle) → Closing
//! (deallocate) → done.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Poll, Token};

use super::alloc::{self, Alloc, Io};
use super::{Progress, SwarmConfig};
use crate::client::{Event, FailureKind, Input};
use crate::peer::{EchoPeer, PeerCounters};
use crate::sys::ffi::{RecvBatch, SendBatch};
use crate::tls::{TlsClient, TlsFailure};
use crate::{Error, Result};

pub(super) use super::report::WorkerStats;

/// Token of the in-process echo peer; allocation `i` uses token `i + 1`.
const PEER: Token = Token(0);
/// Datagrams per syscall.
pub(super) const BATCH: usize = 64;
/// Control timers (retransmissions, refreshes) are checked this often.
pub(super) const CONTROL_SWEEP: Duration = Duration::from_millis(5);
/// Deallocation gets this long before the worker gives up waiting.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Active,
    Drain(Instant),
    Hold(Instant),
    Closing(Instant),
}

/// A worker and everything it owns.
pub(super) struct Worker {
    cfg: SwarmConfig,
    index: usize,
    /// Global indexes this worker opens: index, index + workers, ...
    my_count: usize,
    epoch: Instant,
    progress: Arc<Progress>,
    /// Client TLS settings (TURN over TLS only).
    tls: Option<Arc<TlsClient>>,
    poll: Poll,
    allocs: Vec<Alloc>,
    peer: Option<EchoPeer>,
    peer_addr: SocketAddr,
    peer_counters: PeerCounters,
    recv: RecvBatch,
    send: SendBatch,
    payload: Vec<u8>,
    /// Ready allocations by the instant their next send event is due.
    schedule: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Scratch for [`Worker::send_due`]: entries put back after the pass.
    rescheduled: Vec<Reverse<(Instant, usize)>>,
    /// When the Active phase next checks whether every allocation has finished sending.
    next_finish_check: Instant,
    stats: WorkerStats,
    published: (u64, u64, u64),
}

impl Worker {
    /// Prepares the worker (binds its echo peer) on the calling thread.
    pub(super) fn new(
        cfg: &SwarmConfig,
        index: usize,
        epoch: Instant,
        progress: Arc<Progress>,
        tls: Option<Arc<TlsClient>>,
    ) -> Result<Self> {
        let poll = Poll::new().map_err(|e| Error::io("create poll", e))?;
        let (peer, peer_addr) = match cfg.peer {
            Some(addr) => (None, addr),
            None => {
                let p = EchoPeer::bind(cfg.peer_bind)?;
                let addr = p.local_addr()?;
                let fd = std::os::fd::AsRawFd::as_raw_fd(&p);
                poll.registry()
                    .register(&mut mio::unix::SourceFd(&fd), PEER, mio::Interest::READABLE)
                    .map_err(|e| Error::io("register echo peer", e))?;
                p.set_blocking(None)?;
                (Some(p), addr)
            }
        };
        let my_count = cfg.share(index);
        Ok(Self {
            cfg: cfg.clone(),
            index,
            my_count,
            epoch,
            progress,
            tls,
            poll,
            allocs: Vec::with_capacity(my_count),
            peer,
            peer_addr,
            peer_counters: PeerCounters::default(),
            recv: RecvBatch::new(BATCH, 2048),
            send: SendBatch::new(BATCH),
            payload: vec![0; cfg.packet_size],
            schedule: BinaryHeap::with_capacity(my_count),
            rescheduled: Vec::new(),
            next_finish_check: epoch,
            stats: WorkerStats::default(),
            published: (0, 0, 0),
        })
    }

    /// Runs all phases and returns the worker's statistics.
    pub(super) fn run(mut self) -> Result<WorkerStats> {
        let mut events = Events::with_capacity(1024);
        let mut phase = Phase::Active;
        let mut next_sweep = Instant::now();
        loop {
            let now = Instant::now();
            phase = match self.advance(phase, now) {
                Some(p) => p,
                None => break,
            };
            if now >= next_sweep {
                self.sweep_control(now);
                next_sweep = now + CONTROL_SWEEP;
            }
            let timeout = if phase == Phase::Active {
                self.cfg.tick
            } else {
                CONTROL_SWEEP
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(Error::io("poll", e));
            }
            let now = Instant::now();
            for ev in &events {
                match ev.token() {
                    PEER => self.pump_peer(),
                    Token(t) => self.on_socket(t - 1, now, ev.is_writable()),
                }
            }
            self.publish();
        }
        self.pump_peer();
        self.stats.peer_received = self.peer_counters.received.load(Ordering::Relaxed);
        self.stats.peer_echoed = self.peer_counters.echoed.load(Ordering::Relaxed);
        self.publish();
        self.progress.done.fetch_add(1, Ordering::AcqRel);
        Ok(self.stats)
    }

    /// Does the work of `phase` and returns the next phase (None: finished).
    fn advance(&mut self, phase: Phase, now: Instant) -> Option<Phase> {
        match phase {
            Phase::Active => {
                if self.progress.stop_requested() {
                    self.stop_sending(now);
                }
                self.open_due(now);
                self.send_due(now);
                Some(if self.finished_sending(now) {
                    Phase::Drain(now + self.cfg.drain)
                } else {
                    phase
                })
            }
            Phase::Drain(until) if now >= until => {
                self.progress.holding.fetch_add(1, Ordering::AcqRel);
                Some(Phase::Hold(now + self.cfg.hold))
            }
            Phase::Hold(until) if now >= until => {
                self.progress.holding.fetch_sub(1, Ordering::AcqRel);
                for i in 0..self.allocs.len() {
                    self.allocs[i].client.close(now);
                    self.after_control(i, now);
                }
                Some(Phase::Closing(now + CLOSE_GRACE))
            }
            Phase::Closing(until) if now >= until || self.allocs.iter().all(|a| !a.alive) => None,
            _ => Some(phase),
        }
    }

    /// Whether every allocation is open and past its send window (checked once per control
    /// sweep: a scan of every allocation at every wake-up would cost more than the sends).
    fn finished_sending(&mut self, now: Instant) -> bool {
        if now < self.next_finish_check {
            return false;
        }
        self.next_finish_check = now + CONTROL_SWEEP;
        self.allocs.len() == self.my_count
            && self
                .allocs
                .iter()
                .all(|a| !a.alive || a.stop_at.is_some_and(|s| now >= s))
    }

    /// Ends every send window now; allocations still to open are not opened.
    fn stop_sending(&mut self, now: Instant) {
        self.my_count = self.allocs.len();
        for a in &mut self.allocs {
            a.stop_at = Some(a.stop_at.map_or(now, |s| s.min(now)));
        }
    }

    fn open_due(&mut self, now: Instant) {
        for _ in 0..256 {
            let k = self.allocs.len();
            if k >= self.my_count {
                return;
            }
            let global = k * self.cfg.workers + self.index;
            if self
                .cfg
                .open_at(self.epoch, global)
                .is_some_and(|at| now < at)
            {
                return;
            }
            self.open_one(global as u32, now);
        }
    }

    fn open_one(&mut self, global: u32, now: Instant) {
        let creds = self.cfg.auth.credentials(SystemTime::now());
        self.stats.first_open.get_or_insert(now);
        self.progress.opened.fetch_add(1, Ordering::Relaxed);
        let token = Token(self.allocs.len() + 1);
        match Alloc::open(
            &self.cfg,
            self.tls.as_deref(),
            global,
            self.peer_addr,
            creds,
            now,
        ) {
            Ok(mut a) => {
                let registered = a.register(self.poll.registry(), token);
                self.allocs.push(a);
                match registered {
                    Ok(()) => self.after_control(token.0 - 1, now),
                    Err(e) => self.fail_io(token.0 - 1, &e),
                }
            }
            Err(e) => {
                // Keep indexes aligned with tokens: a dead placeholder is not possible without a
                // socket, so count the failure and open the next one in its place.
                tracing::debug!(error = %e, "cannot open allocation socket");
                self.stats
                    .fail_counted(&FailureKind::Io, now, &self.progress);
                self.my_count -= 1;
            }
        }
    }

    /// Sends the packets of every allocation whose next send event is due: the schedule is a
    /// min-heap of (due instant, allocation), so a wake-up costs O(due allocations · log n), not a
    /// scan of every allocation.
    fn send_due(&mut self, now: Instant) {
        if self.cfg.packet_rate <= 0.0 {
            return;
        }
        let ts = now.duration_since(self.epoch).as_nanos() as u64;
        while let Some(&Reverse((at, i))) = self.schedule.peek() {
            if at > now {
                break;
            }
            self.schedule.pop();
            let a = &self.allocs[i];
            let Some(ready) = a.ready_at.filter(|_| a.sending(now)) else {
                continue; // stopped or failed: off the schedule for good
            };
            let due = alloc::due_packets(ready, now, self.cfg.pace(), a.sent, BATCH);
            if due > 0 {
                self.send_packets(i, due, ts, now);
            }
            let a = &self.allocs[i];
            if a.alive {
                let next = alloc::next_due(ready, self.cfg.pace(), a.sent).max(now + self.cfg.tick);
                self.rescheduled.push(Reverse((next, i)));
            }
        }
        self.schedule.extend(self.rescheduled.drain(..));
    }

    /// Sends `due` data packets of allocation `i` (one `sendmmsg` over UDP).
    fn send_packets(&mut self, i: usize, due: usize, ts: u64, now: Instant) {
        let a = &mut self.allocs[i];
        alloc::write_payload(&mut self.payload, ts, a.index);
        let result = match &mut a.io {
            Io::Udp(_) => {
                for _ in 0..due {
                    if !a.client.encode_data(&self.payload, self.send.push(None)) {
                        self.send.pop();
                    }
                }
                self.send.flush(a.fd())
            }
            Io::Tcp(t) => {
                let frame = self.send.push(None);
                let mut queued = 0;
                if a.client.encode_data(&self.payload, frame) {
                    queued = (0..due).take_while(|_| t.queue(frame)).count();
                }
                self.send.pop();
                t.write_pending().map(|()| queued)
            }
        };
        match result {
            Ok(n) => {
                a.sent += n as u64;
                self.stats.sent += n as u64;
                self.stats.send_dropped += (due - n) as u64;
                self.stats.first_send.get_or_insert(now);
                self.stats.last_send = Some(now);
            }
            Err(e) => self.fail_io(i, &e),
        }
    }

    fn sweep_control(&mut self, now: Instant) {
        for i in 0..self.allocs.len() {
            let a = &mut self.allocs[i];
            if a.alive && a.client.poll_timeout().is_some_and(|t| t <= now) {
                a.client.handle_timeout(now);
                self.after_control(i, now);
            }
        }
    }

    /// Sends queued control messages and handles client events of allocation `i`.
    fn after_control(&mut self, i: usize, now: Instant) {
        if let Err(e) = self.allocs[i].flush_control(&mut self.send) {
            return self.fail_io(i, &e);
        }
        while let Some(ev) = self.allocs[i].client.poll_event() {
            self.on_event(i, ev, now);
        }
    }

    fn on_event(&mut self, i: usize, ev: Event, now: Instant) {
        self.stats.on_event(&ev, now, &self.progress);
        let a = &mut self.allocs[i];
        match ev {
            Event::Allocated { .. } => {}
            Event::Ready { .. } => {
                a.ready_at = Some(now);
                let stopped = self.progress.stop_requested();
                a.stop_at = Some(if stopped {
                    now
                } else {
                    now + self.cfg.duration
                });
                self.schedule.push(Reverse((now, i)));
            }
            Event::Failed(f) => {
                tracing::debug!(index = a.index, stage = ?f.stage, reason = %f.reason, "allocation failed");
                a.alive = false;
                a.deregister(self.poll.registry());
            }
            Event::Closed => {
                a.alive = false;
                a.deregister(self.poll.registry());
            }
        }
    }

    fn fail_io(&mut self, i: usize, e: &io::Error) {
        if let Some(TlsFailure(reason)) = e.get_ref().and_then(|e| e.downcast_ref()) {
            self.allocs[i].client.fail_tls(reason.clone());
            while let Some(ev) = self.allocs[i].client.poll_event() {
                self.on_event(i, ev, Instant::now());
            }
            return;
        }
        let reason = match e.kind() {
            io::ErrorKind::ConnectionRefused => {
                format!("{e} (ICMP port unreachable: is the TURN server up?)")
            }
            _ => e.to_string(),
        };
        self.allocs[i].client.fail_transport(reason);
        while let Some(ev) = self.allocs[i].client.poll_event() {
            self.on_event(i, ev, Instant::now());
        }
    }

    fn pump_peer(&mut self) {
        if let Some(p) = &mut self.peer {
            p.pump(false, 64, &self.peer_counters);
        }
    }

    /// Handles readiness of allocation `i`'s socket.
    fn on_socket(&mut self, i: usize, now: Instant, writable: bool) {
        if !self.allocs.get(i).is_some_and(|a| a.alive) {
            return;
        }
        let (control, result) = if matches!(self.allocs[i].io, Io::Udp(_)) {
            self.read_udp(i, now)
        } else {
            self.read_tcp(i, now, writable)
        };
        if let Err(e) = result {
            return self.fail_io(i, &e);
        }
        if control {
            self.after_control(i, now);
        }
    }

    fn read_udp(&mut self, i: usize, now: Instant) -> (bool, io::Result<()>) {
        let a = &mut self.allocs[i];
        let mut control = false;
        loop {
            let n = match self.recv.recv(a.fd(), false) {
                Ok(n) => n,
                Err(e) => return (control, Err(e)),
            };
            for k in 0..n {
                let (buf, _) = self.recv.get(k);
                match a.client.handle_input(now, buf) {
                    Input::Data(p) => self.stats.on_payload(p, a.index, now, self.epoch),
                    Input::Control => control = true,
                    Input::Ignored => self.stats.stray += 1,
                }
            }
            if n < BATCH {
                return (control, Ok(()));
            }
        }
    }

    fn read_tcp(&mut self, i: usize, now: Instant, writable: bool) -> (bool, io::Result<()>) {
        let a = &mut self.allocs[i];
        let Io::Tcp(t) = &mut a.io else {
            return (false, Ok(()));
        };
        if writable && let Err(e) = t.write_pending() {
            return (false, Err(e));
        }
        let mut control = false;
        loop {
            match t.read_some() {
                Ok(0) => {
                    return (
                        control,
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "server closed the connection",
                        )),
                    );
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (control, Ok(())),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (control, Err(e)),
            }
            loop {
                match t.deframer.next_frame() {
                    Ok(Some(frame)) => match a.client.handle_input(now, frame) {
                        Input::Data(p) => self.stats.on_payload(p, a.index, now, self.epoch),
                        Input::Control => control = true,
                        Input::Ignored => self.stats.stray += 1,
                    },
                    Ok(None) => break,
                    Err(e) => return (control, Err(io::Error::new(io::ErrorKind::InvalidData, e))),
                }
            }
        }
    }

    /// Publishes counter deltas to the shared progress.
    fn publish(&mut self) {
        let peer = self.peer_counters.received.load(Ordering::Relaxed);
        self.stats
            .publish(&self.progress, peer, &mut self.published);
    }
}
