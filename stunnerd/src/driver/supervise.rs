//! Supervision of listener tasks: a listener task that panics is counted
//! (`stunner_listener_failures_total{task="listener"}`) and started again after a short pause, so a
//! bug reachable by a client cannot leave a port unserved while the process looks healthy.
//! Connection tasks that panic are counted (`task="connection"`) by their accept loop.
//!
//! ```text
//!   supervisor task ─spawn─▶ listener task ─panic─▶ counted, pause, spawn again
//!        └─ aborted (listener stopped) ─▶ aborts the listener task
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinError};

use crate::engine::ListenerStats;

/// Pause before a panicked listener task is started again (a panic loop must not spin).
const RESTART_PAUSE: Duration = Duration::from_millis(100);

/// Aborts a task when dropped (the supervisor itself was aborted).
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the listener task made by `make` on the current worker, making it again whenever it panics;
/// aborting the returned handle stops it for good. A task that returns normally is not restarted.
pub(crate) fn listener<F, Fut>(
    listener: Arc<str>,
    stats: Arc<ListenerStats>,
    make: F,
) -> AbortHandle
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    restarting(
        move || {
            stats.listener_failures.add(1);
            tracing::error!(%listener, "listener task panicked, restarting it");
        },
        make,
    )
}

/// Runs the task made by `make` on the current worker, calling `panicked` and making it again
/// whenever it panics; aborting the returned handle stops it for good.
pub(crate) fn restarting<P, F, Fut>(panicked: P, make: F) -> AbortHandle
where
    P: Fn() + 'static,
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let supervisor = async move {
        loop {
            let task = tokio::task::spawn_local(make());
            let guard = AbortOnDrop(task.abort_handle());
            let ended = task.await;
            drop(guard);
            match ended {
                Err(e) if e.is_panic() => {
                    panicked();
                    tokio::time::sleep(RESTART_PAUSE).await;
                }
                _ => return,
            }
        }
    };
    tokio::task::spawn_local(supervisor).abort_handle()
}

/// Counts a connection task that ended in a panic (its connection is closed).
pub(crate) fn connection_ended(ended: Result<(), JoinError>, stats: &ListenerStats) {
    if let Err(e) = ended
        && e.is_panic()
    {
        stats.connection_failures.add(1);
        tracing::error!("connection task panicked, connection closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[tokio::test]
    async fn a_panicking_listener_is_counted_and_restarted_until_aborted() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let stats = Arc::new(ListenerStats::default());
                let runs = Rc::new(Cell::new(0u32));
                let r = runs.clone();
                let handle = listener("l".into(), stats.clone(), move || {
                    let r = r.clone();
                    async move {
                        r.set(r.get() + 1);
                        if r.get() < 3 {
                            panic!("listener bug");
                        }
                        std::future::pending::<()>().await;
                    }
                });
                for _ in 0..100 {
                    if runs.get() >= 3 {
                        break;
                    }
                    tokio::time::sleep(RESTART_PAUSE).await;
                }
                assert_eq!(runs.get(), 3);
                assert_eq!(stats.listener_failures.get(), 2);
                handle.abort();
                tokio::task::yield_now().await;
                tokio::time::sleep(RESTART_PAUSE * 2).await;
                assert_eq!(runs.get(), 3, "aborted supervisor must not restart");
            })
            .await;
    }

    #[tokio::test]
    async fn a_panicking_connection_is_counted() {
        let stats = ListenerStats::default();
        let ended = tokio::spawn(async { panic!("connection bug") }).await;
        connection_ended(ended, &stats);
        connection_ended(Ok(()), &stats);
        assert_eq!(stats.connection_failures.get(), 1);
    }
}
