//! The operator process: serve metrics and health, connect to the cluster, serve CDS, run the
//! controller, stop on SIGTERM/SIGINT.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use prometheus_client::registry::Registry;

use crate::cds::{self, ConfigStore};
use crate::controller::{self, Options};
use crate::metrics::{self, Metrics};

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Controller settings.
    pub controller: Options,
    /// Address the CDS server listens on.
    pub cds_listen: SocketAddr,
    /// Address the metrics and health server listens on.
    pub metrics_listen: SocketAddr,
}

/// Runs the operator until a termination signal.
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    let store = ConfigStore::new();
    let shutdown = CancellationToken::new();
    let mut registry = Registry::with_prefix("stunner_operator");
    let m = Metrics::register(&mut registry);
    let app = metrics::router(registry, m.clone(), store.clone());
    let metrics_listener = TcpListener::bind(opts.metrics_listen).await?;
    let metrics_server = tokio::spawn(metrics::serve(metrics_listener, app, shutdown.clone()));
    tracing::info!(addr = %opts.metrics_listen, "metrics and health server listening");
    let client = kube::Client::try_default().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot load a Kubernetes client configuration (kubeconfig or in-cluster): {e}"
        )
    })?;
    let listener = TcpListener::bind(opts.cds_listen).await?;
    tracing::info!(addr = %opts.cds_listen, "CDS server listening");
    let server = tokio::spawn(cds::serve(listener, store.clone(), shutdown.clone()));
    let signals = tokio::spawn(stop_on_signal(shutdown.clone()));
    let result = controller::run(client, opts.controller, store, m, shutdown.clone()).await;
    shutdown.cancel();
    signals.abort();
    let limit = std::time::Duration::from_secs(5);
    let _ = tokio::time::timeout(limit, server).await;
    let _ = tokio::time::timeout(limit, metrics_server).await;
    result
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
