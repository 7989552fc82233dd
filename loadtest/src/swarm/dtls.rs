//! The swarm's DTLS worker. webrtc-rs `dtls` is tokio-only, so a DTLS worker thread runs a
//! current-thread runtime with one task per allocation around the same sans-IO [`TurnClient`],
//! feeding the same [`WorkerStats`] and [`Progress`] as the mio workers. Its echo peer runs on a
//! thread of its own (`peer::run_blocking`).
//!
//! ```text
//!  thread swarm-i (LocalSet)
//!    coordinator: spawn at arrival times ─▶ all send windows over ─▶ drain ─▶ hold ─▶ closing=true
//!                 ─▶ join tasks (CLOSE_GRACE) ; publisher: progress every CONTROL_SWEEP
//!    task × n:    DTLS handshake ─▶ loop { record in │ tick: send due │ TURN timers │ closing }
//! ```
//!
//! Phases match the mio worker's (Active → Drain → Hold → Closing); the allocation latency is
//! measured from the first Allocate, after the handshake, as over TCP after the connect.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use dtls::conn::DTLSConn;
use tokio::sync::watch;
use tokio::task::{JoinSet, LocalSet};
use tokio::time::MissedTickBehavior;

use super::alloc::{self, write_payload};
use super::worker::{BATCH, CLOSE_GRACE, CONTROL_SWEEP, WorkerStats};
use super::{Progress, SwarmConfig};
use crate::client::{ClientConfig, Event, FailureKind, Input, TurnClient};
use crate::peer::{self, EchoPeer, PeerCounters};
use crate::sys;
use crate::tls::TlsClient;
use crate::{Error, Result};

/// Largest record we read.
const RECORD_BUF: usize = 2048;

/// A DTLS worker, prepared on the calling thread (its echo peer is bound) and run on its own.
pub(super) struct DtlsWorker {
    cfg: SwarmConfig,
    index: usize,
    epoch: Instant,
    progress: Arc<Progress>,
    tls: Arc<TlsClient>,
    peer: Option<EchoPeer>,
    peer_addr: SocketAddr,
}

/// State shared by the coordinator and the allocation tasks of one worker (single thread).
struct Shared {
    cfg: SwarmConfig,
    epoch: Instant,
    progress: Arc<Progress>,
    tls: Arc<TlsClient>,
    peer: SocketAddr,
    stats: RefCell<WorkerStats>,
    /// Allocations whose send window is not over yet (opened or still to open).
    sending: Cell<usize>,
    /// The echo peer thread's counters.
    counters: Arc<PeerCounters>,
    published: Cell<(u64, u64, u64)>,
}

impl Shared {
    fn publish(&self) {
        let mut p = self.published.get();
        let peer = self.counters.received.load(Ordering::Relaxed);
        self.stats.borrow().publish(&self.progress, peer, &mut p);
        self.published.set(p);
    }
}

/// Ends an allocation's send window exactly once (explicitly, or when its task ends).
struct SendWindow(Option<Rc<Shared>>);

impl SendWindow {
    fn end(&mut self) {
        if let Some(sh) = self.0.take() {
            sh.sending.set(sh.sending.get().saturating_sub(1));
        }
    }
}

impl Drop for SendWindow {
    fn drop(&mut self) {
        self.end();
    }
}

impl DtlsWorker {
    /// Binds the worker's echo peer (unless an external one is configured).
    pub(super) fn new(
        cfg: &SwarmConfig,
        index: usize,
        epoch: Instant,
        progress: Arc<Progress>,
        tls: Arc<TlsClient>,
    ) -> Result<Self> {
        let (peer, peer_addr) = match cfg.peer {
            Some(addr) => (None, addr),
            None => {
                let p = EchoPeer::bind(cfg.peer_bind)?;
                let addr = p.local_addr()?;
                (Some(p), addr)
            }
        };
        Ok(Self {
            cfg: cfg.clone(),
            index,
            epoch,
            progress,
            tls,
            peer,
            peer_addr,
        })
    }

    /// Runs all phases and returns the worker's statistics.
    pub(super) fn run(mut self) -> Result<WorkerStats> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("start the DTLS worker runtime", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(PeerCounters::default());
        let peer_thread = self.peer.take().map(|p| spawn_peer(p, &stop, &counters));
        let shared = Rc::new(Shared {
            cfg: self.cfg.clone(),
            epoch: self.epoch,
            progress: self.progress.clone(),
            tls: self.tls.clone(),
            peer: self.peer_addr,
            stats: RefCell::new(WorkerStats::default()),
            sending: Cell::new(self.cfg.share(self.index)),
            counters: counters.clone(),
            published: Cell::new((0, 0, 0)),
        });
        LocalSet::new().block_on(&rt, self.coordinate(shared.clone()));
        stop.store(true, Ordering::Relaxed);
        if let Some(t) = peer_thread {
            let _ = t.join();
        }
        shared.publish();
        let mut stats = shared.stats.take();
        stats.peer_received = counters.received.load(Ordering::Relaxed);
        stats.peer_echoed = counters.echoed.load(Ordering::Relaxed);
        self.progress.done.fetch_add(1, Ordering::AcqRel);
        Ok(stats)
    }

    async fn coordinate(&self, sh: Rc<Shared>) {
        let publisher = tokio::task::spawn_local(publish_every(sh.clone()));
        let (closing_tx, closing_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for k in 0..self.cfg.share(self.index) {
            let global = k * self.cfg.workers + self.index;
            if let Some(at) = self.cfg.open_at(self.epoch, global) {
                tokio::time::sleep_until(at.into()).await;
            }
            tasks.spawn_local(allocation(sh.clone(), global as u32, closing_rx.clone()));
        }
        while sh.sending.get() > 0 {
            tokio::time::sleep(CONTROL_SWEEP).await;
        }
        tokio::time::sleep(self.cfg.drain).await;
        self.progress.holding.fetch_add(1, Ordering::AcqRel);
        tokio::time::sleep(self.cfg.hold).await;
        self.progress.holding.fetch_sub(1, Ordering::AcqRel);
        let _ = closing_tx.send(true);
        let all_closed = async { while tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(CLOSE_GRACE, all_closed).await;
        tasks.abort_all();
        publisher.abort();
    }
}

fn spawn_peer(
    mut p: EchoPeer,
    stop: &Arc<AtomicBool>,
    counters: &Arc<PeerCounters>,
) -> JoinHandle<Result<()>> {
    let (stop, counters) = (stop.clone(), counters.clone());
    std::thread::spawn(move || peer::run_blocking(&mut p, &stop, &counters))
}

async fn publish_every(sh: Rc<Shared>) {
    loop {
        tokio::time::sleep(CONTROL_SWEEP).await;
        sh.publish();
    }
}

/// One allocation's task: handshake, then the TURN client until it closes or fails.
async fn allocation(sh: Rc<Shared>, index: u32, closing: watch::Receiver<bool>) {
    let mut window = SendWindow(Some(sh.clone()));
    sh.stats
        .borrow_mut()
        .first_open
        .get_or_insert(Instant::now());
    sh.progress.opened.fetch_add(1, Ordering::Relaxed);
    let conn = match sh.tls.connect_dtls(sh.cfg.server).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(index, error = %e, "DTLS allocation failed");
            let kind = match e {
                Error::Tls(_) => FailureKind::Tls,
                _ => FailureKind::Io,
            };
            sh.stats
                .borrow_mut()
                .fail_counted(&kind, Instant::now(), &sh.progress);
            return;
        }
    };
    let creds = sh.cfg.auth.credentials(SystemTime::now());
    let mut ccfg = ClientConfig::new(creds, sh.peer);
    ccfg.mode = sh.cfg.mode;
    ccfg.lifetime = sh.cfg.lifetime;
    let mut a = DtlsAlloc {
        client: TurnClient::new(ccfg, Instant::now()),
        conn: conn.clone(),
        sh,
        index,
        ready_at: None,
        stop_at: None,
        sent: 0,
        out: Vec::new(),
        payload: Vec::new(),
    };
    a.payload.resize(a.sh.cfg.packet_size, 0);
    a.run(&mut window, closing).await;
    let _ = conn.close().await;
}

/// A DTLS allocation's state inside its task.
struct DtlsAlloc {
    sh: Rc<Shared>,
    client: TurnClient,
    conn: Arc<DTLSConn>,
    index: u32,
    ready_at: Option<Instant>,
    stop_at: Option<Instant>,
    sent: u64,
    out: Vec<u8>,
    payload: Vec<u8>,
}

impl DtlsAlloc {
    async fn run(&mut self, window: &mut SendWindow, mut closing: watch::Receiver<bool>) {
        let mut buf = vec![0u8; RECORD_BUF];
        let mut tick = tokio::time::interval(self.sh.cfg.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut close_requested = false;
        loop {
            self.flush_control().await;
            if self.handle_events() {
                return;
            }
            let now = Instant::now();
            if self.sh.progress.stop_requested() {
                self.stop_at = self.stop_at.map(|s| s.min(now));
            }
            if self.stop_at.is_some_and(|s| now >= s) {
                window.end();
            }
            let sending = self.stop_at.is_some_and(|s| now < s);
            let wake = self.client.poll_timeout();
            let conn = self.conn.clone();
            tokio::select! {
                r = conn.read(&mut buf, None) => match r {
                    Ok(n) => self.on_record(buf.get(..n).unwrap_or_default()),
                    Err(e) => self.client.fail_tls(format!("DTLS receive: {e}")),
                },
                _ = tick.tick(), if sending => self.send_due().await,
                () = sys::sleep_until(wake) => self.client.handle_timeout(Instant::now()),
                r = closing.changed(), if !close_requested => {
                    if r.is_err() || *closing.borrow() {
                        close_requested = true;
                        self.client.close(Instant::now());
                    }
                }
            }
        }
    }

    /// Sends queued requests; a failed send fails the allocation.
    async fn flush_control(&mut self) {
        while self.client.poll_transmit(&mut self.out) {
            if let Err(e) = self.conn.write(&self.out, None).await {
                self.client.fail_tls(format!("DTLS send: {e}"));
                return;
            }
        }
    }

    /// Accounts client events; true once the allocation is over (failed or closed).
    fn handle_events(&mut self) -> bool {
        while let Some(ev) = self.client.poll_event() {
            let now = Instant::now();
            self.sh
                .stats
                .borrow_mut()
                .on_event(&ev, now, &self.sh.progress);
            match ev {
                Event::Ready { .. } => {
                    self.ready_at = Some(now);
                    self.stop_at = Some(now + self.sh.cfg.duration);
                }
                Event::Failed(f) => {
                    tracing::debug!(index = self.index, stage = ?f.stage, reason = %f.reason, "allocation failed");
                    return true;
                }
                Event::Closed => return true,
                Event::Allocated { .. } => {}
            }
        }
        false
    }

    fn on_record(&mut self, record: &[u8]) {
        let now = Instant::now();
        let mut stats = self.sh.stats.borrow_mut();
        match self.client.handle_input(now, record) {
            Input::Data(p) => stats.on_payload(p, self.index, now, self.sh.epoch),
            Input::Control => {}
            Input::Ignored => stats.stray += 1,
        }
    }

    /// Sends the packets due by the allocation's rate (at most a batch per tick).
    async fn send_due(&mut self) {
        let (Some(ready), pace) = (self.ready_at, self.sh.cfg.pace()) else {
            return;
        };
        let now = Instant::now();
        let due = alloc::due_packets(ready, now, pace, self.sent, BATCH);
        if pace.rate <= 0.0 || due == 0 {
            return;
        }
        let ts = now.duration_since(self.sh.epoch).as_nanos() as u64;
        write_payload(&mut self.payload, ts, self.index);
        let mut n = 0;
        while n < due && self.client.encode_data(&self.payload, &mut self.out) {
            if let Err(e) = self.conn.write(&self.out, None).await {
                self.client.fail_tls(format!("DTLS send: {e}"));
                break;
            }
            n += 1;
        }
        self.sent += n as u64;
        let mut stats = self.sh.stats.borrow_mut();
        stats.sent += n as u64;
        stats.send_dropped += (due - n) as u64;
        stats.first_send.get_or_insert(now);
        stats.last_send = Some(now);
    }
}
