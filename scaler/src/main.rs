//! `stunner-scaler`: flags, tracing, then [`scaler::run`]. Exit code 64 on a bad configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use scaler::source::{PromAuth, Secret};
use scaler::{Options, TlsFiles};

/// KEDA external scaler for STUNner: scales dataplanes on TURN allocations without dropping calls.
/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Parser)]
#[command(name = "stunner-scaler", version)]
struct Cli {
    /// gRPC listen address (KEDA external scaler + gRPC health).
    #[arg(long, env = "STUNNER_SCALER_GRPC_ADDR", default_value = "0.0.0.0:9090")]
    grpc_addr: SocketAddr,
    /// HTTP listen address (/metrics, /healthz, /readyz, /steering).
    #[arg(long, env = "STUNNER_SCALER_HTTP_ADDR", default_value = "0.0.0.0:8081")]
    http_addr: SocketAddr,
    /// gRPC server certificate (PEM); enables TLS together with --tls-key.
    #[arg(long, env = "STUNNER_SCALER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// gRPC server private key (PEM).
    #[arg(long, env = "STUNNER_SCALER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that KEDA's client certificate must chain to (mutual TLS).
    #[arg(long, env = "STUNNER_SCALER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Seconds a decision is cached per ScaledObject (at most one upstream query per interval).
    #[arg(long, env = "STUNNER_SCALER_CACHE_INTERVAL", default_value = "5", value_parser = parse_secs)]
    cache_interval: Duration,
    /// Seconds after which a ScaledObject KEDA no longer asks about (deleted, or moved to another
    /// scaler) is forgotten: its cached decision, its stunner_scaler_* series and /steering record.
    #[arg(long, env = "STUNNER_SCALER_FORGET_AFTER", default_value = "900", value_parser = parse_secs)]
    forget_after: Duration,
    /// stunnerd health servers (host:port, comma-separated) for the direct source without Kubernetes.
    #[arg(long, env = "STUNNER_SCALER_STATIC_ENDPOINTS", value_delimiter = ',')]
    static_endpoints: Vec<String>,
    /// File of stunnerd health servers (host:port per line, `#` comments), re-read on every refresh.
    #[arg(long, env = "STUNNER_SCALER_STATIC_ENDPOINTS_FILE")]
    static_endpoints_file: Option<PathBuf>,
    /// Do not connect to the Kubernetes API (no pod discovery, no drain steering).
    #[arg(long, env = "STUNNER_SCALER_NO_KUBERNETES")]
    no_kubernetes: bool,
    /// File holding a bearer token for the Prometheus API.
    #[arg(
        long,
        env = "STUNNER_SCALER_PROMETHEUS_BEARER_TOKEN_FILE",
        group = "prom_auth"
    )]
    prometheus_bearer_token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token for the Prometheus API.
    #[arg(
        long,
        env = "STUNNER_SCALER_PROMETHEUS_BEARER_TOKEN_ENV",
        group = "prom_auth"
    )]
    prometheus_bearer_token_env: Option<String>,
    /// Basic-auth user for the Prometheus API (password from the file or env flag).
    #[arg(
        long,
        env = "STUNNER_SCALER_PROMETHEUS_BASIC_AUTH_USER",
        group = "prom_auth"
    )]
    prometheus_basic_auth_user: Option<String>,
    /// File holding the basic-auth password.
    #[arg(
        long,
        env = "STUNNER_SCALER_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE",
        requires = "prometheus_basic_auth_user"
    )]
    prometheus_basic_auth_password_file: Option<PathBuf>,
    /// Environment variable holding the basic-auth password.
    #[arg(
        long,
        env = "STUNNER_SCALER_PROMETHEUS_BASIC_AUTH_PASSWORD_ENV",
        requires = "prometheus_basic_auth_user"
    )]
    prometheus_basic_auth_password_env: Option<String>,
    /// Extra CA bundle (PEM) trusted for https Prometheus servers.
    #[arg(long, env = "STUNNER_SCALER_PROMETHEUS_CA_FILE")]
    prometheus_ca_file: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax, e.g. `info,scaler=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
    /// Log line format: human-readable text, or one JSON object per line.
    #[arg(long, env = "STUNNER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn parse_secs(raw: &str) -> Result<Duration, String> {
    match raw.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("expected seconds in (0, 86400), got `{raw}`")),
    }
}

impl Cli {
    fn prom_auth(&self) -> Result<Option<PromAuth>, String> {
        if let Some(path) = &self.prometheus_bearer_token_file {
            return Ok(Some(PromAuth::Bearer(Secret::File(path.clone()))));
        }
        if let Some(var) = &self.prometheus_bearer_token_env {
            return Ok(Some(PromAuth::Bearer(Secret::Env(var.clone()))));
        }
        let Some(username) = self.prometheus_basic_auth_user.clone() else {
            return Ok(None);
        };
        let password =
            match (
                &self.prometheus_basic_auth_password_file,
                &self.prometheus_basic_auth_password_env,
            ) {
                (Some(f), None) => Secret::File(f.clone()),
                (None, Some(v)) => Secret::Env(v.clone()),
                _ => return Err(
                    "basic auth needs exactly one of --prometheus-basic-auth-password-{file,env}"
                        .into(),
                ),
            };
        Ok(Some(PromAuth::Basic { username, password }))
    }

    fn options(&self) -> Result<Options, String> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        };
        Ok(Options {
            grpc_addr: self.grpc_addr,
            http_addr: self.http_addr,
            tls,
            cache_interval: self.cache_interval,
            forget_after: self.forget_after,
            static_endpoints: self
                .static_endpoints
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            static_endpoints_file: self.static_endpoints_file.clone(),
            kubernetes: !self.no_kubernetes,
            prom_auth: self.prom_auth()?,
            prom_ca_file: self.prometheus_ca_file.clone(),
        })
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> ExitCode {
    proto::tls::provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(64);
        }
    };
    let logs =
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log));
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let opts = match cli.options() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::from(64);
        }
    };
    if let Some(tls) = &opts.tls
        && let Err(e) = scaler::server::load_tls(tls)
    {
        tracing::error!(error = ?e, "bad TLS configuration");
        return ExitCode::from(64);
    }
    match scaler::run(opts, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "stunner-scaler failed");
            ExitCode::FAILURE
        }
    }
}
