//! Lifecycle state shared by the run loop, the admin server and the metrics: the config in force
//! (for `/status`), readiness, and the graceful drain of docs/ARCHITECTURE.md §4 (SIGTERM or `POST /drain`).
//! Implements the admin server's [`DataplaneView`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::admin::{DataplaneState, DrainResponse, Status};
use proto::config::StunnerConfig;
use tokio::sync::Notify;

use crate::admin::{DataplaneView, DrainError};
use crate::engine::Shared;

/// A drain in progress.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    /// When it started (unix seconds).
    pub started_unix: u64,
    /// When it gives up.
    pub deadline: Instant,
    /// The deadline in unix seconds.
    pub deadline_unix: u64,
    /// Started by a signal: exit when the last allocation is gone or at the deadline. An admin
    /// drain (`POST /drain`) never exits by itself; at its deadline the remaining allocations are
    /// closed.
    pub exit: bool,
}

/// Dataplane lifecycle state.
#[derive(Debug)]
pub struct Control {
    shared: Arc<Shared>,
    config: RwLock<Option<StunnerConfig>>,
    drain: Mutex<Option<Drain>>,
    draining: Arc<AtomicBool>,
    terminating: AtomicBool,
    /// Woken whenever the drain state changes.
    pub wake: Notify,
    drain_timeout: Duration,
    fail_readiness: bool,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Control {
    /// New state: not ready, not draining.
    pub fn new(shared: Arc<Shared>, drain_timeout: Duration, fail_readiness: bool) -> Self {
        Self {
            shared,
            config: RwLock::new(None),
            drain: Mutex::new(None),
            draining: Arc::new(AtomicBool::new(false)),
            terminating: AtomicBool::new(false),
            wake: Notify::new(),
            drain_timeout,
            fail_readiness,
        }
    }

    /// The 0/1 flag behind `stunner_dataplane_draining`.
    pub fn draining_flag(&self) -> Arc<AtomicBool> {
        self.draining.clone()
    }

    /// Records the config now in force.
    pub fn set_config(&self, cfg: StunnerConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Some(cfg);
    }

    /// The drain in progress.
    pub fn drain(&self) -> Option<Drain> {
        *self.drain.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the process as exiting now.
    pub fn set_terminating(&self) {
        self.terminating.store(true, Ordering::Relaxed);
    }

    /// Starts a drain (or, for a signal, turns a running admin drain into an exiting one).
    pub fn begin_drain(&self, timeout: Option<Duration>, exit: bool) -> (Drain, bool) {
        let mut guard = self.drain.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = guard.as_mut() {
            d.exit |= exit;
            return (*d, false);
        }
        let timeout = timeout.unwrap_or(self.drain_timeout);
        let now = unix_now();
        let d = Drain {
            started_unix: now,
            deadline: Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600)),
            deadline_unix: now.saturating_add(timeout.as_secs()),
            exit,
        };
        *guard = Some(d);
        self.shared.set_draining(true);
        self.draining.store(true, Ordering::Relaxed);
        drop(guard);
        self.wake.notify_one();
        (d, true)
    }

    fn state(&self) -> DataplaneState {
        let has_config = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if self.terminating.load(Ordering::Relaxed) {
            DataplaneState::Terminating
        } else if self.drain().is_some() {
            DataplaneState::Draining
        } else if has_config {
            DataplaneState::Ready
        } else {
            DataplaneState::NotReady
        }
    }

    fn response(&self, message: &str) -> DrainResponse {
        let d = self.drain();
        DrainResponse {
            state: self.state(),
            allocation_count: self.shared.active_allocations().max(0) as u64,
            drain_started_at: d.map(|d| d.started_unix),
            drain_deadline: d.map(|d| d.deadline_unix),
            message: message.into(),
        }
    }
}

impl DataplaneView for Control {
    fn status(&self) -> Status {
        let cfg = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        let allocs = self.shared.active_allocations().max(0) as u64;
        let mut status = Status::new(&cfg, self.state(), allocs, env!("CARGO_PKG_VERSION"));
        if let Some(d) = self.drain() {
            status.drain_started_at = Some(d.started_unix);
            status.drain_deadline = Some(d.deadline_unix);
        }
        status
    }

    fn is_ready(&self) -> bool {
        match self.state() {
            DataplaneState::Ready => true,
            DataplaneState::Draining => !self.fail_readiness,
            DataplaneState::NotReady | DataplaneState::Terminating => false,
        }
    }

    fn start_drain(&self, timeout: Option<Duration>) -> Result<DrainResponse, DrainError> {
        let (_, started) = self.begin_drain(timeout, false);
        if started {
            tracing::info!(timeout = ?timeout.unwrap_or(self.drain_timeout), "drain started by admin request");
        }
        Ok(self.response(if started {
            "drain started"
        } else {
            "already draining"
        }))
    }

    fn cancel_drain(&self) -> Result<DrainResponse, DrainError> {
        let mut guard = self.drain.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some_and(|d| d.exit) || self.terminating.load(Ordering::Relaxed) {
            return Err(DrainError::Conflict(
                "the dataplane is shutting down on a signal; the drain cannot be cancelled".into(),
            ));
        }
        let was = guard.take().is_some();
        drop(guard);
        self.shared.set_draining(false);
        self.draining.store(false, Ordering::Relaxed);
        self.wake.notify_one();
        if was {
            tracing::info!("drain cancelled by admin request");
        }
        Ok(self.response(if was {
            "drain cancelled"
        } else {
            "not draining"
        }))
    }
}
