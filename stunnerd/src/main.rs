//! stunnerd command line: flags (each also settable from the environment), tracing, `run()`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stunnerd::cli::{Flags, LogFormat, default_id, hostname};
use tracing_subscriber::{EnvFilter, prelude::*, reload};

fn main() -> ExitCode {
    let flags = Flags::parse();
    let pinned_spec = flags.log_spec();
    let spec = pinned_spec
        .clone()
        .unwrap_or_else(|| proto::config::DEFAULT_LOGLEVEL.to_owned());
    let (filter, handle) = reload::Layer::new(make_filter(&spec));
    let registry = tracing_subscriber::registry().with(filter);
    match flags.log_format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json())
            .init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).init(),
    }
    for warning in flags.ignored() {
        tracing::warn!("upstream flag accepted without effect: {warning}");
    }
    if let Some(uri) = &flags.turn_uri {
        tracing::error!(%uri, "a TURN URI argument (upstream's default config) is not supported; use -c with a config file");
        return ExitCode::from(64);
    }
    let bootstrap_health = match flags.bootstrap_health() {
        Ok(addr) => addr,
        Err(error) => {
            tracing::error!(%error, "bad command line");
            return ExitCode::from(64);
        }
    };
    let set_log_level = pinned_spec.is_none().then(|| {
        Box::new(move |spec: &str| {
            let _ = handle.reload(make_filter(spec));
        }) as stunnerd::LogLevelSetter
    });
    let threads = match flags.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let id = flags
        .id
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| default_id(&|k| std::env::var(k).ok(), hostname()));
    let opts = stunnerd::Options {
        config: Some(flags.origin()),
        watch: flags.watch,
        id: Some(id),
        node: flags.node.clone(),
        threads,
        udp_thread_num: flags.udp_thread_num,
        socket_buffer: flags.socket_buffer,
        stunner_addr: flags.stunner_addr,
        drain_timeout: Duration::from_secs(flags.drain_timeout),
        drain_fail_readiness: flags.drain_fail_readiness(),
        default_lifetime: Duration::from_secs(flags.default_lifetime.max(1)),
        max_lifetime: Duration::from_secs(flags.max_lifetime.max(1)),
        admin_token: flags.admin_token.clone().filter(|t| !t.is_empty()),
        bootstrap_health,
        set_log_level,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(stunnerd::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_bad_configuration() => {
            tracing::error!(%error, "bad configuration");
            ExitCode::from(64)
        }
        Err(error) => {
            tracing::error!(%error, "stunnerd failed");
            ExitCode::FAILURE
        }
    }
}

fn make_filter(spec: &str) -> EnvFilter {
    EnvFilter::try_new(stunnerd::logging::filter_directives(spec))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}
