//! The "calls" of the demo: each one a real TURN allocation on one pod, relaying a small media-like
//! stream (10 packets/s of 100 bytes) through the echo peer and back, until the caller hangs up.
//!
//! A call that was relaying and then stopped (its allocation failed, or no echo for
//! [`SILENCE_LIMIT`]) before the caller hung up is **dropped**: that is what a user would notice,
//! and the figure the demo exists to keep at zero.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::client::{ClientConfig, Credentials, Event, Input, TurnClient};

/// Media packet interval per call.
const MEDIA_INTERVAL: Duration = Duration::from_millis(100);
/// Media payload size.
const PAYLOAD: usize = 100;
/// No echo for this long while relaying = the call is dead.
pub(crate) const SILENCE_LIMIT: Duration = Duration::from_secs(2);

/// Counters shared by every call of one run.
#[derive(Debug, Default)]
pub(crate) struct CallStats {
    /// Calls that reached the relaying state.
    pub(crate) connected: AtomicU64,
    /// Calls whose setup failed (e.g. 508 from a pod that had just started draining).
    pub(crate) setup_failed: AtomicU64,
    /// Calls ended by their caller, allocation released cleanly.
    pub(crate) completed: AtomicU64,
    /// Calls that died while relaying.
    pub(crate) dropped: AtomicU64,
    /// Media packets sent.
    pub(crate) sent: AtomicU64,
    /// Media packets echoed back.
    pub(crate) received: AtomicU64,
}

/// A running call, as its owner sees it.
#[derive(Debug)]
pub(crate) struct Call {
    /// Health address of the pod the call was routed to.
    pub(crate) pod: SocketAddr,
    hangup: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<()>,
}

impl Call {
    /// Starts a call on the pod whose TURN listener is `server`.
    pub(crate) fn start(
        pod: SocketAddr,
        server: SocketAddr,
        peer: SocketAddr,
        stats: Arc<CallStats>,
    ) -> Self {
        let (hangup_tx, hangup_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        tokio::spawn(async move {
            run_call(server, peer, &stats, hangup_rx).await;
            let _ = done_tx.send(());
        });
        Self {
            pod,
            hangup: Some(hangup_tx),
            done: done_rx,
        }
    }

    /// Asks the caller to hang up (release the allocation).
    pub(crate) fn hang_up(&mut self) {
        if let Some(tx) = self.hangup.take() {
            let _ = tx.send(());
        }
    }

    /// True once the call has ended, whatever the reason.
    pub(crate) fn is_over(&mut self) -> bool {
        !matches!(
            self.done.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        )
    }

    /// True while the call has not been asked to hang up.
    pub(crate) fn is_live(&self) -> bool {
        self.hangup.is_some()
    }
}

/// How a call ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    SetupFailed,
    Completed,
    Dropped,
}

/// One call: allocate, relay media until hang-up, release. Updates `stats` with the outcome.
async fn run_call(
    server: SocketAddr,
    peer: SocketAddr,
    stats: &CallStats,
    hangup: oneshot::Receiver<()>,
) {
    let outcome = match UdpSocket::bind("127.0.0.1:0").await {
        Ok(sock) if sock.connect(server).await.is_ok() => drive(sock, peer, stats, hangup).await,
        _ => Outcome::SetupFailed,
    };
    let counter = match outcome {
        Outcome::SetupFailed => &stats.setup_failed,
        Outcome::Completed => &stats.completed,
        Outcome::Dropped => &stats.dropped,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The event loop of one call over a connected UDP socket.
async fn drive(
    sock: UdpSocket,
    peer: SocketAddr,
    stats: &CallStats,
    mut hangup: oneshot::Receiver<()>,
) -> Outcome {
    let creds = Credentials {
        username: super::fleet::USER.into(),
        password: super::fleet::PASSWORD.into(),
    };
    let mut client = TurnClient::new(ClientConfig::new(creds, peer), Instant::now());
    let (mut out, mut buf) = (Vec::with_capacity(256), vec![0u8; 2048]);
    let payload = [0x5au8; PAYLOAD];
    let mut media = tokio::time::interval(MEDIA_INTERVAL);
    let (mut relaying, mut hung_up) = (false, false);
    let mut last_echo = Instant::now();
    loop {
        while client.poll_transmit(&mut out) {
            let _ = sock.send(&out).await;
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                Event::Ready { .. } => {
                    relaying = true;
                    last_echo = Instant::now();
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                }
                Event::Failed(_) if relaying && !hung_up => return Outcome::Dropped,
                Event::Failed(_) if !relaying => return Outcome::SetupFailed,
                Event::Failed(_) | Event::Closed => return Outcome::Completed,
                Event::Allocated { .. } => {}
            }
        }
        if relaying && !hung_up && last_echo.elapsed() > SILENCE_LIMIT {
            return Outcome::Dropped;
        }
        let wake = client
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            r = sock.recv(&mut buf) => match r {
                Ok(n) => {
                    if let Input::Data(_) = client.handle_input(Instant::now(), &buf[..n]) {
                        last_echo = Instant::now();
                        stats.received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // ICMP port unreachable: the pod is gone.
                Err(_) if relaying && !hung_up => return Outcome::Dropped,
                Err(_) => {}
            },
            _ = tokio::time::sleep_until(wake.into()) => client.handle_timeout(Instant::now()),
            _ = media.tick(), if relaying && !hung_up => {
                if client.encode_data(&payload, &mut out) && sock.send(&out).await.is_ok() {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = &mut hangup, if !hung_up => {
                hung_up = true;
                client.close(Instant::now());
            }
        }
    }
}
