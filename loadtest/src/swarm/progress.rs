//! Live swarm counters shared between workers and the display: an indicatif bar on a terminal,
//! one plain line per second otherwise, nothing for the benchmark. The benchmark also reads them
//! to measure a steady window, and ends the send phase early with [`Progress::request_stop`].

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Counters updated by the workers (per batch, not per packet) and read by observers.
#[derive(Debug)]
pub struct Progress {
    /// Allocations requested in total.
    pub total: usize,
    workers: usize,
    /// Allocate requests started.
    pub opened: AtomicU64,
    /// Allocations ready to relay.
    pub ready: AtomicU64,
    /// Allocations failed.
    pub failed: AtomicU64,
    /// Data packets sent.
    pub sent: AtomicU64,
    /// Data packets received back.
    pub received: AtomicU64,
    /// Data packets the in-process echo peers received (= relayed towards the peer).
    pub peer_received: AtomicU64,
    /// Set by [`Progress::request_stop`]: every allocation ends its send window now.
    stop: AtomicBool,
    /// Workers that finished sending and are holding their allocations idle.
    pub holding: AtomicUsize,
    /// Workers that finished.
    pub done: AtomicUsize,
}

impl Progress {
    /// Zeroed counters for `total` allocations over `workers` workers.
    pub fn new(total: usize, workers: usize) -> Self {
        Self {
            total,
            workers,
            opened: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            peer_received: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            holding: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }

    /// True once every worker is in its hold phase (or finished).
    pub fn all_holding(&self) -> bool {
        self.holding.load(Ordering::Acquire) + self.done.load(Ordering::Acquire) >= self.workers
    }

    /// True once every allocation is either ready or failed.
    pub fn all_settled(&self) -> bool {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        g(&self.ready) + g(&self.failed) >= self.total as u64
    }

    /// Ends every allocation's send window now (the swarm then drains, holds and closes as usual):
    /// the benchmark runs swarms with a long duration and stops them after its window.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether [`Progress::request_stop`] was called.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// True once every worker finished.
    pub fn all_done(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.workers
    }

    fn line(&self, elapsed: Duration, pps: f64) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "t={:.1}s ready={}/{} failed={} sent={} received={} rx_rate={:.0}/s",
            elapsed.as_secs_f64(),
            g(&self.ready),
            self.total,
            g(&self.failed),
            g(&self.sent),
            g(&self.received),
            pps
        )
    }
}

/// How to show progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif bar (terminals).
    Bar,
    /// A plain line on stderr every second (logs, CI).
    Lines,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// Bar on a terminal, lines otherwise.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Lines
        }
    }
}

/// Blocks until every worker is done, displaying progress as asked.
pub fn watch(p: &Progress, mode: ProgressMode) {
    let start = Instant::now();
    let bar = (mode == ProgressMode::Bar).then(|| {
        let bar = ProgressBar::new(p.total as u64);
        let style = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} ready  {msg}");
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let (mut last_rx, mut last_t, mut last_line) = (0u64, start, start);
    while !p.all_done() {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if now - last_t < Duration::from_millis(250) {
            continue;
        }
        let rx = p.received.load(Ordering::Relaxed);
        let pps = (rx - last_rx) as f64 / (now - last_t).as_secs_f64();
        (last_rx, last_t) = (rx, now);
        match (&bar, mode) {
            (Some(bar), _) => {
                bar.set_position(p.ready.load(Ordering::Relaxed));
                bar.set_message(p.line(now - start, pps));
            }
            (None, ProgressMode::Lines) if now - last_line >= Duration::from_secs(1) => {
                last_line = now;
                eprintln!("{}", p.line(now - start, pps));
            }
            _ => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
