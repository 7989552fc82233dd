//! Health and admin HTTP server (docs/ARCHITECTURE.md §5.3), default `http://0.0.0.0:8086`.
//!
//! ```text
//!  GET    /live            200 always (the process is up)
//!  GET    /ready           200 when DataplaneView::is_ready(), else 503
//!  GET    /status          proto::admin::Status as JSON
//!  POST   /drain[?timeout] start a drain (Bearer token; off without --admin-token)
//!  DELETE /drain           cancel the drain (same access rule)
//! ```
//!
//! The server knows nothing of the engine: everything goes through [`DataplaneView`], which the
//! dataplane implements. The drain endpoints are guarded by [`guard`]: without an admin token they
//! are off (403 for every caller, loopback included); with one, every caller needs
//! `Authorization: Bearer <token>` (401 when missing, 403 when wrong).

mod guard;
mod routes;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::admin::{DrainResponse, Status};
use tokio::net::TcpListener;

pub use routes::router;

/// Fuzzing entry: the drain query parser.
pub(crate) fn fuzz_query(query: &str) {
    let _ = routes::parse_timeout(Some(query));
}

/// What the admin server needs from the dataplane.
pub trait DataplaneView: Send + Sync + 'static {
    /// The current `/status` document.
    fn status(&self) -> Status;
    /// Readiness: serving a real config (and, with `--drain-fail-readiness`, not draining).
    fn is_ready(&self) -> bool;
    /// Starts a drain with `timeout` (None = the daemon's `--drain-timeout`); starting a drain that
    /// is already running reports the running one.
    fn start_drain(&self, timeout: Option<Duration>) -> Result<DrainResponse, DrainError>;
    /// Cancels a running drain; cancelling when not draining is not an error.
    fn cancel_drain(&self) -> Result<DrainResponse, DrainError>;
}

/// Why the dataplane refused a drain request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    /// The request conflicts with the current state (e.g. cancel while terminating): HTTP 409.
    #[error("{0}")]
    Conflict(String),
    /// The dataplane failed to act: HTTP 500.
    #[error("{0}")]
    Internal(String),
}

/// Admin server settings.
#[derive(Debug, Clone, Default)]
pub struct AdminOptions {
    /// `--admin-token`: when set, the drain endpoints require `Authorization: Bearer <token>` from
    /// every caller; when unset they are off.
    pub admin_token: Option<String>,
}

/// Serves until the listener fails; see [`serve_with_shutdown`].
pub async fn serve(
    listener: TcpListener,
    view: Arc<dyn DataplaneView>,
    opts: AdminOptions,
) -> std::io::Result<()> {
    serve_with_shutdown(listener, view, opts, std::future::pending()).await
}

/// Serves the admin API on `listener` until `shutdown` completes (in-flight requests finish).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    view: Arc<dyn DataplaneView>,
    opts: AdminOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(view, opts).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
