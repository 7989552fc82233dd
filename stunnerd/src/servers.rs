//! The HTTP servers whose endpoints come from the config: health/admin (`admin.healthcheck_endpoint`)
//! and metrics (`admin.metrics_endpoint`). Each is (re)started when its endpoint changes.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use proto::config::StunnerConfig;
use tokio::task::JoinHandle;

use crate::admin::{self, AdminOptions, DataplaneView};

/// Running servers and the endpoints they serve.
pub(crate) struct HttpServers {
    pub(crate) view: Arc<dyn DataplaneView>,
    pub(crate) admin_opts: AdminOptions,
    pub(crate) registry: Arc<Registry>,
    health: Option<(SocketAddr, JoinHandle<()>)>,
    metrics: Option<(SocketAddr, String, JoinHandle<()>)>,
}

impl HttpServers {
    pub(crate) fn new(
        view: Arc<dyn DataplaneView>,
        admin_opts: AdminOptions,
        registry: Arc<Registry>,
    ) -> Self {
        Self {
            view,
            admin_opts,
            registry,
            health: None,
            metrics: None,
        }
    }

    /// Starts the health server on `addr` unless it already serves there.
    pub(crate) async fn health_at(&mut self, addr: Option<SocketAddr>) {
        if self.health.as_ref().map(|h| h.0) == addr {
            return;
        }
        if let Some((_, task)) = self.health.take() {
            // Wait for the aborted server to drop its listener: the new address may hold the
            // same port (`127.0.0.1:P` → `0.0.0.0:P`), which is only free once it is gone.
            task.abort();
            let _ = task.await;
        }
        let Some(addr) = addr else { return };
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let (view, opts) = (self.view.clone(), self.admin_opts.clone());
                let task = tokio::spawn(async move {
                    if let Err(error) = admin::serve(listener, view, opts).await {
                        tracing::error!(%error, "health server failed");
                    }
                });
                tracing::info!(%addr, "health/admin server listening");
                self.health = Some((addr, task));
            }
            Err(error) => tracing::warn!(%addr, %error, "cannot bind the health/admin server"),
        }
    }

    /// Starts the metrics server on `endpoint` unless it already serves there.
    pub(crate) async fn metrics_at(&mut self, endpoint: Option<(SocketAddr, String)>) {
        if self.metrics.as_ref().map(|m| (m.0, m.1.clone())) == endpoint {
            return;
        }
        if let Some((_, _, task)) = self.metrics.take() {
            task.abort();
            let _ = task.await;
        }
        let Some((addr, path)) = endpoint else { return };
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let (registry, p) = (self.registry.clone(), path.clone());
                let task = tokio::spawn(async move {
                    if let Err(error) = crate::metrics::serve(listener, p, registry).await {
                        tracing::error!(%error, "metrics server failed");
                    }
                });
                tracing::info!(%addr, %path, "metrics server listening");
                self.metrics = Some((addr, path, task));
            }
            Err(error) => tracing::warn!(%addr, %error, "cannot bind the metrics server"),
        }
    }

    /// Follows the endpoints of `cfg`.
    pub(crate) async fn follow(&mut self, cfg: &StunnerConfig) {
        match cfg.admin.healthcheck_addr() {
            Ok(ep) => self.health_at(ep.map(|e| e.addr)).await,
            Err(error) => tracing::warn!(%error, "bad healthcheck endpoint"),
        }
        match cfg.admin.metrics_addr() {
            Ok(ep) => self.metrics_at(ep.map(|e| (e.addr, e.path))).await,
            Err(error) => tracing::warn!(%error, "bad metrics endpoint"),
        }
    }
}
