//! `stunner-gateway-operator`: flags, tracing, and the library's `run()`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use operator::compat::{self, UpstreamArgs};
use operator::controller::Options;
use operator::render::{
    CONTROLLER_NAME, DEFAULT_CONFIG_ORIGIN, DEFAULT_LABEL_FILTER, RenderOptions,
};

/// Command-line flags (each also settable from the environment).
#[derive(Parser, Debug)]
#[command(about = "STUNner Kubernetes Gateway API operator", version)]
struct Args {
    /// GatewayClass controllerName to manage (also upstream's
    /// STUNNER_GATEWAY_OPERATOR_CONTROLLER_NAME; default stunner.l7mp.io/gateway-operator).
    #[arg(long, env = "STUNNER_CONTROLLER_NAME")]
    controller_name: Option<String>,
    /// Listen address of the Config Discovery Service.
    #[arg(long, env = "STUNNER_CDS_LISTEN", default_value = "0.0.0.0:13478")]
    cds_listen: SocketAddr,
    /// Listen address of the Prometheus metrics (`/metrics`) and health (`/healthz`, `/readyz`)
    /// server.
    #[arg(long, env = "STUNNER_METRICS_LISTEN", default_value = operator::metrics::DEFAULT_LISTEN)]
    metrics_listen: SocketAddr,
    /// CDS URL dataplane pods are told to fetch their config from (STUNNER_CONFIG_ORIGIN).
    #[arg(long, env = "STUNNER_CDS_SERVER_ADDRESS", default_value = DEFAULT_CONFIG_ORIGIN)]
    cds_server_address: String,
    /// stunnerd image used when a Dataplane names none.
    #[arg(
        long,
        env = "STUNNER_DATAPLANE_IMAGE",
        default_value = "l7mp/stunnerd:latest"
    )]
    dataplane_image: String,
    /// Use a route backend in another namespace only when a ReferenceGrant there permits it
    /// (Gateway API semantics; upstream STUNner allows cross-namespace backends without one).
    #[arg(long, env = "STUNNER_REQUIRE_BACKEND_GRANTS")]
    require_backend_grants: bool,
    /// Coalescing delay between a cluster change and the render, in milliseconds.
    #[arg(long, env = "STUNNER_THROTTLE_MS", default_value_t = 250)]
    throttle_ms: u64,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "stunner-system")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "STUNNER_LEASE_NAME",
        default_value = "stunner-gateway-operator-leader"
    )]
    lease_name: String,
    /// This replica's identity in the Lease (defaults to the pod name).
    #[arg(long, env = "HOSTNAME", default_value = "stunner-gateway-operator")]
    identity: String,
    /// Lease duration in seconds.
    #[arg(long, env = "STUNNER_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,
    /// Seconds between two API discoveries of optional APIs (KEDA's keda.sh/v1alpha1).
    #[arg(long, env = "STUNNER_API_DISCOVERY_SECONDS", default_value_t = 30)]
    api_discovery_seconds: u64,
    /// Log filter (tracing EnvFilter syntax; default info, or upstream's --zap-log-level).
    #[arg(long, env = "RUST_LOG")]
    log: Option<String>,
    /// Upstream's flags and environment.
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Log line format: human-readable text, or one JSON object per line.
    #[arg(long, env = "STUNNER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What upstream's flags and environment change in `args`, or why they are invalid.
fn apply_upstream(args: &mut Args) -> Result<(bool, Vec<String>), String> {
    let up = &args.upstream;
    if let Some(listen) = up.cds_listen().map_err(|e| e.to_string())? {
        args.cds_listen = listen;
    }
    if let Some(t) = up.throttle().map_err(|e| e.to_string())? {
        args.throttle_ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
    }
    let managed = up.managed_dataplane().map_err(|e| e.to_string())?;
    if let Ok(pod) = std::env::var(compat::ADDRESS_ENV)
        && !pod.trim().is_empty()
    {
        args.cds_server_address = compat::pod_config_origin(&pod, args.cds_listen.port());
    }
    if args.controller_name.is_none() {
        args.controller_name = std::env::var("STUNNER_GATEWAY_OPERATOR_CONTROLLER_NAME").ok();
    }
    if args.log.is_none() {
        args.log = up.log_filter();
    }
    Ok((managed, up.ignored()))
}

fn main() -> ExitCode {
    proto::tls::provider();
    let mut args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(64);
        }
    };
    let (managed_dataplane, ignored) = match apply_upstream(&mut args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            return ExitCode::from(64);
        }
    };
    let controller_name = args
        .controller_name
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| CONTROLLER_NAME.to_owned());
    if args.lease_seconds < 3 || args.api_discovery_seconds == 0 {
        eprintln!(
            "invalid configuration: --lease-seconds must be >= 3 and --api-discovery-seconds >= 1"
        );
        return ExitCode::from(64);
    }
    let log = args.log.clone().unwrap_or_else(|| "info".to_owned());
    let logs = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(&log));
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    for what in ignored {
        tracing::warn!("upstream flag accepted without effect: {what}");
    }
    if !managed_dataplane {
        tracing::info!("legacy dataplane mode: configs are served over CDS, no dataplane is run");
    }
    let label_filter = compat::label_filter(
        std::env::var(compat::LABEL_FILTER_ENV).ok().as_deref(),
        &DEFAULT_LABEL_FILTER,
    );
    tracing::info!(filter = ?label_filter, "Gateway label propagation filter");
    let opts = operator::RunOptions {
        cds_listen: args.cds_listen,
        metrics_listen: args.metrics_listen,
        controller: Options {
            render: RenderOptions {
                controller_name,
                config_origin: args.cds_server_address,
                default_image: args.dataplane_image,
                require_backend_grants: args.require_backend_grants,
                label_filter,
                managed_dataplane,
                ..RenderOptions::default()
            },
            throttle: Duration::from_millis(args.throttle_ms),
            lease_namespace: args.lease_namespace,
            lease_name: args.lease_name,
            identity: args.identity,
            lease_duration: Duration::from_secs(args.lease_seconds),
            api_discovery: Duration::from_secs(args.api_discovery_seconds),
        },
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(operator::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stunner-gateway-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}
