//! The application side of STUNner: what a WebRTC application and its operators call.
//!
//! ```text
//!   operator CDS ──WebSocket watch──▶ follow ──▶ Store (configs by Gateway)
//!                                                   │ snapshot per request
//!   application ──GET /ice?…──▶ server ─▶ query ─▶ issue (pure) ─▶ {"iceServers":[…]}
//!
//!   stunnerctl ──▶ cds (config), stunnerd /status and /drain (status, drain), this service (auth)
//! ```
//!
//! - `cds`: the CDS client (REST and watch), shared with `stunnerctl`.
//! - `store`, `query`, `issue`, `server`, `metrics`: the credential service (`stunner-auth`),
//!   upstream l7mp/stunner-auth-service's API (`proto::auth`).
//! - `ctl`: `stunnerctl`'s commands.

pub mod cds;
pub mod ctl;
pub mod issue;
pub mod metrics;
pub mod query;
pub mod server;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cds::{CdsClient, CdsError, Scope};
use crate::metrics::Metrics;
use crate::server::{AppState, router};
use crate::store::Store;

/// First delay before reconnecting to CDS; doubled up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(500);
/// Longest delay between CDS reconnections.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// How the credential service runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The operator's CDS server.
    pub cds: CdsClient,
    /// Bearer token required on `/` and `/ice`.
    pub token: Option<String>,
    /// Public address used in URIs when a request names none (`STUNNER_PUBLIC_ADDR`).
    pub public_addr: Option<String>,
}

/// Serves the credential API on `listener`, following CDS, until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    opts: ServiceOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut registry = Registry::with_prefix("stunner_auth");
    let metrics = Metrics::register(&mut registry);
    let store = Store::default();
    tokio::spawn(follow(
        opts.cds,
        store.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let state = AppState {
        store,
        metrics,
        registry: Arc::new(registry),
        token: opts.token,
        public_addr: opts.public_addr,
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Keeps `store` equal to the CDS server's configs: watch, list, then apply every push;
/// reconnects with backoff. Configs stay served while disconnected (readiness says so).
pub async fn follow(cds: CdsClient, store: Store, metrics: Metrics, shutdown: CancellationToken) {
    let mut delay = RETRY_MIN;
    loop {
        let error = tokio::select! {
            e = session(&cds, &store, &metrics) => e,
            () = shutdown.cancelled() => return,
        };
        if store.connected() {
            delay = RETRY_MIN;
        }
        store.set_connected(false);
        tracing::warn!(%error, retry_in = ?delay, "CDS watch lost");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
        delay = (delay * 2).min(RETRY_MAX);
    }
}

/// One watch session; ends only with the error that broke it. The listing is taken after the
/// watch opened, so a deletion during the gap arrives on the watch as a marker.
async fn session(cds: &CdsClient, store: &Store, metrics: &Metrics) -> CdsError {
    let mut watch = match cds.watch(&Scope::All).await {
        Ok(w) => w,
        Err(e) => return e,
    };
    match cds.get(&Scope::All).await {
        Ok(list) => store.replace(list),
        Err(e) => return e,
    }
    store.set_connected(true);
    metrics.cds_connects.inc();
    tracing::info!("following CDS");
    loop {
        match watch.next().await {
            Ok(config) => store.apply(config),
            Err(e) => return e,
        }
    }
}
