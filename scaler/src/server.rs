//! Wiring: one metrics registry, the per-ScaledObject registry, the gRPC server (KEDA service +
//! standard gRPC health, optional TLS) and the HTTP server (`/metrics`, `/healthz`, `/readyz`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use proto::keda::external_scaler_server::ExternalScalerServer;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};

use crate::cache::Scalers;
use crate::grpc::ExternalScalerService;
use crate::metrics::ScalerMetrics;
use crate::source::{PromAuth, PromSettings, SourceDeps};

/// Server TLS files (PEM) for KEDA's `caCert` / `tlsClientCert` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
    /// CA that client certificates must chain to (mutual TLS) when set.
    pub client_ca: Option<PathBuf>,
}

/// Everything `run` needs, as given by the binary's flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// gRPC TLS, off when `None`.
    pub tls: Option<TlsFiles>,
    /// How long a decision is cached per ScaledObject.
    pub cache_interval: Duration,
    /// A ScaledObject KEDA has not asked about for this long is forgotten (cache, series, steering).
    pub forget_after: Duration,
    /// stunnerd health endpoints (`host:port`) for the direct source without Kubernetes.
    pub static_endpoints: Vec<String>,
    /// File listing stunnerd health endpoints, one per line, re-read on every refresh.
    pub static_endpoints_file: Option<PathBuf>,
    /// Whether to connect to the Kubernetes API (in-cluster or kubeconfig).
    pub kubernetes: bool,
    /// Prometheus credentials.
    pub prom_auth: Option<PromAuth>,
    /// Extra CA bundle (PEM) for the Prometheus server.
    pub prom_ca_file: Option<PathBuf>,
}

/// The assembled scaler: share it between the gRPC and HTTP servers.
#[derive(Debug, Clone)]
pub struct App {
    /// The per-ScaledObject registry.
    pub scalers: Arc<Scalers>,
    /// The scaler's metrics.
    pub metrics: ScalerMetrics,
    registry: Arc<Registry>,
    ready: Arc<AtomicBool>,
}

impl App {
    /// Builds the registry and metrics; decisions are cached for `interval`.
    pub fn new(deps: SourceDeps, interval: Duration) -> Self {
        let mut registry = Registry::with_prefix("stunner_scaler");
        let metrics = ScalerMetrics::register(&mut registry);
        let scalers = Arc::new(Scalers::new(deps, interval, metrics.clone()));
        Self {
            scalers,
            metrics,
            registry: Arc::new(registry),
            ready: Arc::default(),
        }
    }

    /// The KEDA gRPC service.
    pub fn service(&self) -> ExternalScalerService {
        ExternalScalerService::new(self.scalers.clone(), self.metrics.clone())
    }

    /// Serves gRPC (KEDA service + health) on `listener` until `shutdown` completes.
    pub async fn serve_grpc(
        &self,
        listener: TcpListener,
        tls: Option<ServerTlsConfig>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<ExternalScalerServer<ExternalScalerService>>()
            .await;
        let mut builder = Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).context("gRPC TLS configuration")?;
        }
        self.ready.store(true, Ordering::Release);
        builder
            .add_service(health_service)
            .add_service(ExternalScalerServer::new(self.service()))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
            .await
            .context("gRPC server")
    }

    /// `/metrics`, `/healthz` (process alive), `/readyz` (gRPC server serving) and `/steering`
    /// (the last steered scale-in decision per ScaledObject, JSON).
    pub fn http_router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz_handler))
            .route("/steering", get(steering_handler))
            .with_state(self.clone())
    }
}

async fn metrics_handler(State(app): State<App>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &app.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn steering_handler(State(app): State<App>) -> impl IntoResponse {
    axum::Json(app.scalers.steering_records())
}

async fn readyz_handler(State(app): State<App>) -> impl IntoResponse {
    if app.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Reads the TLS files into tonic's configuration.
pub fn load_tls(files: &TlsFiles) -> anyhow::Result<ServerTlsConfig> {
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut tls =
        ServerTlsConfig::new().identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?));
    if let Some(ca) = &files.client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(tls)
}

/// Source dependencies from the options: Kubernetes client (when asked and available),
/// static endpoints, Prometheus credentials and CA bundle.
pub async fn source_deps(opts: &Options) -> anyhow::Result<SourceDeps> {
    let mut prom = PromSettings {
        auth: opts.prom_auth.clone(),
        ..Default::default()
    };
    if let Some(path) = &opts.prom_ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        prom.ca_bundle = reqwest::Certificate::from_pem_bundle(&pem)
            .context("parsing the Prometheus CA bundle")?;
    }
    let kube = if opts.kubernetes {
        match kube::Client::try_default().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "no Kubernetes access: direct pod discovery and drain steering disabled");
                None
            }
        }
    } else {
        None
    };
    Ok(SourceDeps {
        kube,
        static_endpoints: opts.static_endpoints.clone(),
        static_endpoints_file: opts.static_endpoints_file.clone(),
        prom,
    })
}

/// Every quarter of `idle` (at most a minute), forgets the ScaledObjects idle that long.
async fn forget_idle_loop(scalers: Arc<Scalers>, idle: Duration) {
    let mut tick =
        tokio::time::interval((idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        scalers.forget_idle(idle);
    }
}

/// Runs the scaler until `shutdown` completes (then both servers stop).
pub async fn run(
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = opts.tls.as_ref().map(load_tls).transpose()?;
    let app = App::new(source_deps(&opts).await?, opts.cache_interval);
    let grpc = TcpListener::bind(opts.grpc_addr)
        .await
        .with_context(|| format!("binding {}", opts.grpc_addr))?;
    let http = TcpListener::bind(opts.http_addr)
        .await
        .with_context(|| format!("binding {}", opts.http_addr))?;
    tracing::info!(grpc = %opts.grpc_addr, http = %opts.http_addr, tls = tls.is_some(), "stunner-scaler listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let router = app.http_router();
    let http_task = tokio::spawn(
        axum::serve(http, router)
            .with_graceful_shutdown(wait(stop_rx.clone()))
            .into_future(),
    );
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    tokio::spawn(forget_idle_loop(app.scalers.clone(), opts.forget_after));
    app.serve_grpc(grpc, tls, wait(stop_rx)).await?;
    http_task
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    Ok(())
}
