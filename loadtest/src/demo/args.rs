//! The `loadtest demo` command line and its entry point.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::DemoConfig;
use crate::{Error, Result};

/// Which load a demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProfileName {
    /// Real stunnerd pods and calls on loopback (a few hundred calls, up to 8 pods).
    #[default]
    Standard,
    /// 3,000 calls at 100 per pod (30+ pods) and back to 0, on the simulated dataplane of
    /// `scaler::model` in virtual time (about a second).
    Large,
}

/// Flags of `loadtest demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The load: `standard` (real processes) or `large` (the model at cluster scale).
    #[arg(long, value_enum, default_value_t, env = "STUNNER_DEMO_PROFILE")]
    pub profile: ProfileName,
    /// The short run for CI (about a minute per policy, fewer calls).
    #[arg(long, env = "STUNNER_DEMO_SHORT")]
    pub short: bool,
    /// Run only our policy, not the naive comparison.
    #[arg(long, env = "STUNNER_DEMO_NO_COMPARE")]
    pub no_compare: bool,
    /// stunnerd binary (default: next to this executable).
    #[arg(long, env = "STUNNERD_BIN")]
    pub stunnerd_bin: Option<PathBuf>,
    /// stunner-scaler binary (default: next to this executable).
    #[arg(long, env = "STUNNER_SCALER_BIN")]
    pub scaler_bin: Option<PathBuf>,
    /// Peak concurrent calls (default 400, 60 with --short).
    #[arg(long, env = "STUNNER_DEMO_PEAK_CALLS")]
    pub peak_calls: Option<u32>,
    /// targetAllocationsPerPod (default 80, 15 with --short).
    #[arg(long, env = "STUNNER_DEMO_TARGET")]
    pub target_per_pod: Option<u32>,
    /// Length of one ramp segment in seconds (the ramp is 15 segments; default 8, 3 with --short).
    #[arg(long, env = "STUNNER_DEMO_UNIT_SECS")]
    pub unit_secs: Option<u64>,
    /// Print the final report as JSON on the last line too.
    #[arg(long)]
    pub json: bool,
}

impl DemoArgs {
    /// The demo settings these flags ask for.
    pub fn to_config(&self) -> Result<DemoConfig> {
        let mut cfg = DemoConfig::new(
            binary(&self.stunnerd_bin, "stunnerd")?,
            binary(&self.scaler_bin, "stunner-scaler")?,
            self.short,
        );
        cfg.compare = !self.no_compare;
        if let Some(n) = self.peak_calls {
            cfg.peak_calls = n;
        }
        if let Some(n) = self.target_per_pod {
            if n == 0 {
                return Err(Error::Config("--target-per-pod must be at least 1".into()));
            }
            cfg.target_per_pod = n;
        }
        if let Some(s) = self.unit_secs {
            cfg.unit = Duration::from_secs(s.max(1));
        }
        Ok(cfg)
    }
}

/// `path` if given, else `name` in this executable's folder.
fn binary(path: &Option<PathBuf>, name: &str) -> Result<PathBuf> {
    if let Some(p) = path {
        return Ok(p.clone());
    }
    let exe =
        std::env::current_exe().map_err(|e| Error::io("locate the loadtest executable", e))?;
    Ok(exe.parent().unwrap_or(Path::new(".")).join(name))
}

/// Runs the demo and prints its final report; fails when our policy dropped a call.
pub fn run_demo(args: &DemoArgs) -> Result<()> {
    if args.profile == ProfileName::Large {
        return run_large(args);
    }
    let cfg = args.to_config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the tokio runtime", e))?;
    let report = rt.block_on(super::run(&cfg))?;
    println!("\n== final report\n{}", report.table());
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    }
    match report.runs.first() {
        Some(ours) if ours.calls_dropped > 0 || ours.bounces > 0 => Err(Error::Turn(format!(
            "our policy dropped {} calls and bounced {} times",
            ours.calls_dropped, ours.bounces
        ))),
        _ => Ok(()),
    }
}

/// The large profile: the model at cluster scale; fails when our set-up dropped a call,
/// bounced, or never reached the peak size.
fn run_large(args: &DemoArgs) -> Result<()> {
    let mut cfg = super::large::LargeConfig::default();
    if let Some(n) = args.peak_calls {
        cfg.peak_calls = n;
    }
    if let Some(n) = args.target_per_pod {
        if n == 0 {
            return Err(Error::Config("--target-per-pod must be at least 1".into()));
        }
        cfg.target_per_pod = n;
    }
    if let Some(s) = args.unit_secs {
        cfg.unit = Duration::from_secs(s.max(1));
    }
    cfg.max_replicas = cfg
        .max_replicas
        .max(2 * cfg.peak_calls.div_ceil(cfg.target_per_pod));
    println!(
        "== large profile: ramp to {} calls at {} per pod and back to 0 (segments of {:?}), on the \
         KEDA/HPA model with a simulated dataplane, in 15 s HPA syncs",
        cfg.peak_calls, cfg.target_per_pod, cfg.unit
    );
    let report = super::large::run(&cfg);
    println!("\n== final report\n{}", report.table());
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    }
    match report.runs.first() {
        Some(ours) if ours.dropped_calls > 0 || ours.bounces > 0 || ours.secs_to_peak.is_none() => {
            Err(Error::Turn(format!(
                "our set-up dropped {} calls, bounced {} times, reached the peak: {}",
                ours.dropped_calls,
                ours.bounces,
                ours.secs_to_peak.is_some()
            )))
        }
        _ => Ok(()),
    }
}
