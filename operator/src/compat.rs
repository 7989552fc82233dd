//! Upstream stunner-gateway-operator's command line and `STUNNER_GATEWAY_OPERATOR_*` environment,
//! so an upstream operator Deployment (or Helm values rendered for it) starts this operator
//! unchanged. Each flag keeps upstream's meaning where it has one here; the rest are accepted and
//! named in a start-up warning ([`UpstreamArgs::ignored`]).
//!
//! | upstream | here |
//! |---|---|
//! | `--controller-name`, `STUNNER_GATEWAY_OPERATOR_CONTROLLER_NAME` | same |
//! | `--config-discovery-address` (`:13478`) | the CDS listen address |
//! | `STUNNER_GATEWAY_OPERATOR_ADDRESS` (pod IP) | dataplanes get `http://<it>:<CDS port>` |
//! | `--dataplane-mode`, `STUNNER_GATEWAY_OPERATOR_DATAPLANE_MODE` | `managed`; `legacy` runs no dataplane |
//! | `--throttle-timeout` (Go duration) | the render coalescing delay |
//! | `STUNNER_GATEWAY_OPERATOR_LABEL_FILTER` | Gateway label keys not copied to Deployments |
//! | `--endpoint-discovery`, `--enable-finalizer`, `--leader-elect`, `--metrics-bind-address`, `--health-probe-bind-address`, `--pprof-bind-address`, `--disable-endpontslice-controller`, `--zap-*` | accepted; see [`UpstreamArgs::ignored`] |

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Args};

/// Upstream's environment variable of the label filter.
pub const LABEL_FILTER_ENV: &str = "STUNNER_GATEWAY_OPERATOR_LABEL_FILTER";
/// Upstream's environment variable of the operator's pod address.
pub const ADDRESS_ENV: &str = "STUNNER_GATEWAY_OPERATOR_ADDRESS";

/// Upstream's flags (help heading "Upstream compatibility").
#[derive(Args, Debug, Default, Clone)]
#[command(next_help_heading = "Upstream stunner-gateway-operator compatibility")]
pub struct UpstreamArgs {
    /// Upstream's CDS server endpoint (`:13478`): the CDS listen address (overrides --cds-listen).
    #[arg(long = "config-discovery-address")]
    pub config_discovery_address: Option<String>,
    /// `managed` (default) or `legacy` (no dataplane Deployments; stunnerd run by the user).
    #[arg(
        long = "dataplane-mode",
        env = "STUNNER_GATEWAY_OPERATOR_DATAPLANE_MODE"
    )]
    pub dataplane_mode: Option<String>,
    /// Delay between a change and the render, as a Go duration (`250ms`); overrides --throttle-ms.
    #[arg(long = "throttle-timeout")]
    pub throttle_timeout: Option<String>,
    /// Endpoint discovery of route backends. Always on here (EndpointSlices); `false` is ignored.
    #[arg(long = "endpoint-discovery", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub endpoint_discovery: Option<bool>,
    /// Clean up on exit (upstream default false). Not implemented: ignored.
    #[arg(long = "enable-finalizer", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub enable_finalizer: Option<bool>,
    /// Leader election. Always on here (a Lease); the flag is ignored.
    #[arg(long = "leader-elect", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// Upstream's controller-runtime metrics address. Ignored (no operator metrics server here).
    #[arg(long = "metrics-bind-address")]
    pub metrics_bind_address: Option<String>,
    /// Upstream's health-probe address. Ignored (probes use the CDS port).
    #[arg(long = "health-probe-bind-address")]
    pub health_probe_bind_address: Option<String>,
    /// Upstream's pprof address. Ignored.
    #[arg(
        long = "pprof-bind-address",
        env = "STUNNER_GATEWAY_OPERATOR_PPROF_BIND_ADDRESS"
    )]
    pub pprof_bind_address: Option<String>,
    /// Fall back to Endpoints instead of EndpointSlices. Ignored (EndpointSlices always).
    #[arg(long = "disable-endpontslice-controller", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub disable_endpointslice_controller: Option<bool>,
    /// Upstream's zap logger: development mode. Ignored (use --log).
    #[arg(long = "zap-devel", action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub zap_devel: Option<bool>,
    /// Upstream's zap encoder (`json`, `console`). Ignored.
    #[arg(long = "zap-encoder")]
    pub zap_encoder: Option<String>,
    /// Upstream's zap level (`debug`, `info`, `error`, or a number). Used as the log level
    /// when --log/RUST_LOG is not given.
    #[arg(long = "zap-log-level")]
    pub zap_log_level: Option<String>,
    /// Upstream's zap stack-trace level. Ignored.
    #[arg(long = "zap-stacktrace-level")]
    pub zap_stacktrace_level: Option<String>,
    /// Upstream's zap time encoding. Ignored.
    #[arg(long = "zap-time-encoding")]
    pub zap_time_encoding: Option<String>,
}

/// A bad upstream flag value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompatError {
    /// `--config-discovery-address` is not `[host]:port`.
    #[error("--config-discovery-address {0:?}: expected [host]:port")]
    CdsAddress(String),
    /// `--throttle-timeout` is not a Go duration.
    #[error("--throttle-timeout {0:?}: expected a duration such as 250ms or 1s")]
    Throttle(String),
    /// `--dataplane-mode` is neither `managed` nor `legacy`.
    #[error("--dataplane-mode {0:?}: expected managed or legacy")]
    Mode(String),
}

impl UpstreamArgs {
    /// The CDS listen address `--config-discovery-address` asks for (an empty host is every
    /// interface).
    pub fn cds_listen(&self) -> Result<Option<SocketAddr>, CompatError> {
        let Some(raw) = self.config_discovery_address.as_deref() else {
            return Ok(None);
        };
        let bad = || CompatError::CdsAddress(raw.to_owned());
        let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = if host.is_empty() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            host.parse().map_err(|_| bad())?
        };
        Ok(Some(SocketAddr::new(ip, port)))
    }

    /// Whether dataplanes are managed (`--dataplane-mode`, default managed).
    pub fn managed_dataplane(&self) -> Result<bool, CompatError> {
        match self.dataplane_mode.as_deref().map(str::to_ascii_lowercase) {
            None => Ok(true),
            Some(m) if m == "managed" || m.is_empty() => Ok(true),
            Some(m) if m == "legacy" => Ok(false),
            Some(m) => Err(CompatError::Mode(m)),
        }
    }

    /// The render delay `--throttle-timeout` asks for.
    pub fn throttle(&self) -> Result<Option<Duration>, CompatError> {
        self.throttle_timeout
            .as_deref()
            .map(|t| parse_go_duration(t).ok_or_else(|| CompatError::Throttle(t.to_owned())))
            .transpose()
    }

    /// An `EnvFilter` directive from `--zap-log-level`.
    pub fn log_filter(&self) -> Option<String> {
        let level = self.zap_log_level.as_deref()?.to_ascii_lowercase();
        Some(match level.as_str() {
            "debug" | "info" | "error" | "warn" => level,
            "panic" | "dpanic" | "fatal" => "error".into(),
            // zap: larger numbers are more verbose (-v levels).
            n if n.parse::<u32>().is_ok_and(|v| v > 1) => "trace".into(),
            n if n.parse::<u32>().is_ok() => "debug".into(),
            _ => "info".into(),
        })
    }

    /// One line per given flag that changes nothing here.
    pub fn ignored(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut note = |given: bool, what: &str| {
            if given {
                out.push(what.to_owned());
            }
        };
        note(
            self.endpoint_discovery == Some(false),
            "--endpoint-discovery=false: endpoint discovery is always on",
        );
        note(
            self.enable_finalizer == Some(true),
            "--enable-finalizer: no clean-up on exit (not implemented)",
        );
        note(
            self.leader_elect == Some(false),
            "--leader-elect=false: leader election is always on",
        );
        note(
            self.metrics_bind_address.is_some(),
            "--metrics-bind-address: no operator metrics server",
        );
        note(
            self.health_probe_bind_address.is_some(),
            "--health-probe-bind-address: probes use the CDS port",
        );
        note(
            self.pprof_bind_address.as_deref().is_some_and(|a| a != "0"),
            "--pprof-bind-address: no pprof",
        );
        note(
            self.disable_endpointslice_controller == Some(true),
            "--disable-endpontslice-controller: EndpointSlices are always used",
        );
        let zap = [
            self.zap_devel.is_some(),
            self.zap_encoder.is_some(),
            self.zap_stacktrace_level.is_some(),
            self.zap_time_encoding.is_some(),
        ];
        note(
            zap.contains(&true),
            "--zap-* (but --zap-log-level): logging is configured with --log",
        );
        out
    }
}

/// Upstream's label filter from its environment variable: unset → `default`; set → the
/// comma-separated keys (set and empty disables filtering).
pub fn label_filter(env: Option<&str>, default: &[&str]) -> Vec<String> {
    match env {
        None => default.iter().map(|s| (*s).to_owned()).collect(),
        Some(raw) => raw
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// The CDS URL dataplanes get when upstream's `STUNNER_GATEWAY_OPERATOR_ADDRESS` (the operator's
/// pod IP) is set: that host with the CDS port, as upstream's `cdsServerURI`.
pub fn pod_config_origin(pod_addr: &str, cds_port: u16) -> String {
    let host = pod_addr.trim();
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("http://[{host}]:{cds_port}")
    } else {
        format!("http://{host}:{cds_port}")
    }
}

/// A Go `time.Duration` string: a sequence of decimal numbers with units `ns`, `us`/`µs`, `ms`,
/// `s`, `m`, `h` (`1m30s`, `250ms`, `1.5s`); a bare `0` is zero.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let s = text.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    (!s.is_empty()).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpstreamArgs,
    }

    fn parse(args: &[&str]) -> UpstreamArgs {
        Cli::try_parse_from(std::iter::once("op").chain(args.iter().copied()))
            .unwrap()
            .up
    }

    /// The args upstream's Helm chart passes to its operator container.
    #[test]
    fn upstream_chart_args_parse() {
        let a = parse(&[
            "--health-probe-bind-address=:8081",
            "--metrics-bind-address=127.0.0.1:8080",
            "--leader-elect",
            "--zap-log-level=info",
            "--dataplane-mode=managed",
            "--endpoint-discovery=true",
            "--throttle-timeout=250ms",
            "--config-discovery-address=:13478",
        ]);
        assert_eq!(
            a.cds_listen().unwrap(),
            Some("0.0.0.0:13478".parse().unwrap())
        );
        assert_eq!(a.throttle().unwrap(), Some(Duration::from_millis(250)));
        assert!(a.managed_dataplane().unwrap());
        assert_eq!(a.log_filter().as_deref(), Some("info"));
        assert_eq!(a.ignored().len(), 2, "{:?}", a.ignored());
    }

    #[test]
    fn legacy_mode_and_bad_values() {
        assert!(
            !parse(&["--dataplane-mode=legacy"])
                .managed_dataplane()
                .unwrap()
        );
        assert!(parse(&["--dataplane-mode=x"]).managed_dataplane().is_err());
        assert!(parse(&["--throttle-timeout=fast"]).throttle().is_err());
        assert!(
            parse(&["--config-discovery-address=13478"])
                .cds_listen()
                .is_err()
        );
        let off = parse(&["--endpoint-discovery=false", "--enable-finalizer"]);
        assert_eq!(off.ignored().len(), 2);
    }

    #[test]
    fn go_durations() {
        for (text, ms) in [
            ("250ms", 250),
            ("1s", 1000),
            ("1m30s", 90_000),
            ("1.5s", 1500),
            ("0", 0),
        ] {
            assert_eq!(
                parse_go_duration(text),
                Some(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in ["", "5", "1x", "ms"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    /// Upstream `main.go`: unset → the default filter; set → replaces it; set empty → none.
    #[test]
    fn label_filter_env() {
        let default = ["a", "b"];
        assert_eq!(label_filter(None, &default), ["a", "b"]);
        assert_eq!(label_filter(Some(" x , y,"), &default), ["x", "y"]);
        assert!(label_filter(Some(""), &default).is_empty());
    }

    #[test]
    fn pod_address_origin() {
        assert_eq!(
            pod_config_origin("10.0.0.7", 13478),
            "http://10.0.0.7:13478"
        );
        assert_eq!(
            pod_config_origin("fd00::7", 13478),
            "http://[fd00::7]:13478"
        );
    }
}
