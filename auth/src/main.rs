//! `stunner-auth`: the ICE/TURN credential service (upstream l7mp/stunner-auth-service's API).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use stunner_auth::ServiceOptions;
use stunner_auth::cds::CdsClient;
use tokio_util::sync::CancellationToken;

/// Hands out TURN credentials and ICE configurations for the STUNner Gateways the operator's CDS
/// server knows.
#[derive(Debug, Parser)]
#[command(name = "stunner-auth", version)]
struct Args {
    /// Address and port to serve the API, probes and metrics on.
    #[arg(long, env = "STUNNER_AUTH_LISTEN", default_value = "0.0.0.0:8088")]
    listen: SocketAddr,
    /// The operator's CDS server: host:port or http://host:port.
    #[arg(long = "cds-server-address", env = "CDS_SERVER_ADDR")]
    cds: String,
    /// Require `Authorization: Bearer <token>` (or `?key=<token>`) on / and /ice.
    #[arg(long, env = "STUNNER_AUTH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Public address written into URIs when a request names none (upstream's
    /// STUNNER_PUBLIC_ADDR).
    #[arg(long, env = "STUNNER_PUBLIC_ADDR")]
    public_addr: Option<String>,
    /// Log filter (tracing syntax).
    #[arg(short, long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .init();
    let cds = match CdsClient::new(&args.cds) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::from(64);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, listen = %args.listen, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    tracing::info!(listen = %args.listen, cds = %args.cds, "serving credentials");
    let opts = ServiceOptions {
        cds,
        token: args.token.filter(|t| !t.is_empty()),
        public_addr: args.public_addr.filter(|a| !a.is_empty()),
    };
    match stunner_auth::serve(listener, opts, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn on_signal(shutdown: CancellationToken) {
    let kind = tokio::signal::unix::SignalKind::terminate();
    let Ok(mut term) = tokio::signal::unix::signal(kind) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    shutdown.cancel();
}
