//! stunnerd's command line: our flags plus every flag of upstream STUNner's `cmd/stunnerd`, so a
//! Dataplane written for upstream (`-w`, `-u 16`, `--log-format=json`, `--force-ready-status`,
//! kubeconfig and `--cds-server-*` flags, ...) starts here unchanged. Flags that have a meaning
//! here keep upstream's; the few that have none are accepted, listed in `--help` under
//! "Accepted for upstream compatibility", and named in a warning at start-up.
//!
//! Config origin, as upstream's `pkg/config/client` parses it: an origin without a scheme is a CDS
//! address (`IP:port`, `host:port/path`, `:port`), `file://path` is a file, `k8s` asks for the CDS
//! Service; the default is upstream's `:13478` (the local CDS port). One deliberate difference:
//! a plain path (`/etc/stunnerd.conf`, `./x.yaml`, no `host:port` form) is read as a file, where
//! upstream would try it as an HTTP URL with an empty host and fail.

use clap::{ArgAction, Parser, ValueEnum};

/// Upstream's default config origin (`DefaultConfigDiscoveryAddress`).
pub const DEFAULT_CONFIG_ORIGIN: &str = ":13478";
/// Upstream's CDS port (`DefaultConfigDiscoveryPort`).
pub const DEFAULT_CDS_PORT: u16 = 13478;
/// Namespace assumed for `-c k8s` without `--cds-server-namespace` (the README's install).
pub const DEFAULT_CDS_NAMESPACE: &str = "stunner";
/// Name of the CDS Service the chart installs with release name `stunner` (`<release>-cds`).
pub const CDS_SERVICE_NAME: &str = "stunner-cds";

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// STUNner dataplane: a TURN server for Kubernetes media gateways.
#[derive(Parser, Debug)]
#[command(name = "stunnerd", version, about)]
pub struct Flags {
    /// Config origin: IP:port or http(s)/ws(s) URL of the CDS server, "k8s" to use the CDS
    /// Service, file://<path> or a path. Default ":13478" (the local CDS port), as upstream.
    #[arg(short = 'c', long = "config", env = "STUNNER_CONFIG_ORIGIN")]
    pub config: Option<String>,
    /// Watch the config origin and apply changes live.
    #[arg(short = 'w', long = "watch", env = "STUNNER_CONFIG_WATCH", action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", default_value = "false", require_equals = true)]
    pub watch: bool,
    /// Log level, upstream syntax `all:INFO,turn:DEBUG`; overrides the config's admin.loglevel.
    #[arg(short = 'l', long = "log", env = "STUNNER_LOGLEVEL")]
    pub log: Option<String>,
    /// Log output format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Verbose logging, the same as `-l all:DEBUG` (`-l` wins).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value = "false", require_equals = true)]
    pub verbose: bool,
    /// SO_REUSEPORT sockets per UDP listener (0 = one per worker thread).
    #[arg(
        short = 'u',
        long = "udp-thread-num",
        env = "STUNNER_UDP_THREAD_NUM",
        default_value_t = 0
    )]
    pub udp_thread_num: usize,
    /// Worker threads (0 = number of CPUs).
    #[arg(long = "threads", env = "STUNNER_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Dataplane id `namespace/name` for CDS (default: STUNNER_NAMESPACE/STUNNER_NAME, else
    /// `default/stunnerd-<hostname>` as upstream).
    #[arg(short = 'i', long = "id", env = "STUNNER_ID")]
    pub id: Option<String>,
    /// Node name sent to CDS.
    #[arg(long = "node", env = "STUNNER_NODENAME")]
    pub node: Option<String>,
    /// Pod IP: relay address for listeners whose address is 0.0.0.0.
    #[arg(long = "stunner-addr", env = "STUNNER_ADDR")]
    pub stunner_addr: Option<std::net::IpAddr>,
    /// SO_RCVBUF/SO_SNDBUF of listener and relay sockets, bytes (0 = kernel default).
    #[arg(long = "socket-buffer", env = "STUNNER_SOCKET_BUFFER", default_value_t = 4 << 20)]
    pub socket_buffer: usize,
    /// Seconds a SIGTERM drain waits for allocations to go before exiting anyway.
    #[arg(
        long = "drain-timeout",
        env = "STUNNER_DRAIN_TIMEOUT",
        default_value_t = 3600
    )]
    pub drain_timeout: u64,
    /// Allocation lifetime granted when the client asks for less, seconds.
    #[arg(
        long = "default-lifetime",
        env = "STUNNER_DEFAULT_LIFETIME",
        default_value_t = 600
    )]
    pub default_lifetime: u64,
    /// Longest allocation lifetime granted, seconds.
    #[arg(
        long = "max-lifetime",
        env = "STUNNER_MAX_LIFETIME",
        default_value_t = 3600
    )]
    pub max_lifetime: u64,
    /// Fail /ready while draining (cuts live UDP flows in Kubernetes; off by default).
    #[arg(long = "drain-fail-readiness", env = "STUNNER_DRAIN_FAIL_READINESS")]
    pub drain_fail_readiness: bool,
    /// Keep /ready passing during graceful shutdown (upstream's workaround; our default already,
    /// and it overrides --drain-fail-readiness).
    #[arg(long = "force-ready-status", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value = "false", require_equals = true)]
    pub force_ready_status: bool,
    /// Health server address from start-up until a config names its own (as upstream, which
    /// boots from a zero config with the default `http://:8086`); empty: none until then.
    #[arg(
        long = "health-address",
        env = "STUNNER_HEALTHCHECK_ADDRESS",
        default_value = "0.0.0.0:8086"
    )]
    pub health_address: String,
    /// Bearer token required by POST/DELETE /drain (without it they answer loopback only).
    #[arg(
        long = "admin-token",
        env = "STUNNER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// CDS server address for `-c k8s` (upstream env CDS_SERVER_ADDR).
    #[arg(long = "cds-server-address", env = "CDS_SERVER_ADDR")]
    pub cds_server_address: Option<String>,
    /// Namespace of the CDS Service for `-c k8s` (upstream env CDS_SERVER_NAMESPACE).
    #[arg(long = "cds-server-namespace", env = "CDS_SERVER_NAMESPACE")]
    pub cds_server_namespace: Option<String>,
    /// CDS port for `-c k8s` (upstream env CDS_SERVER_PORT).
    #[arg(long = "cds-server-port", env = "CDS_SERVER_PORT", default_value_t = DEFAULT_CDS_PORT)]
    pub cds_server_port: u16,

    /// Upstream: suppress side effects (testing). Ignored here: stunnerd always runs for real.
    #[arg(short = 'd', long = "dry-run", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value = "false", require_equals = true,
          help_heading = "Accepted for upstream compatibility (ignored)")]
    pub dry_run: bool,
    /// Kubernetes client flags of upstream's `-c k8s` discovery (kubeconfig, context, ...).
    /// Ignored: upstream finds the operator pod labelled
    /// `stunner.l7mp.io/config-discovery-service=enabled` through the API server; here `-c k8s`
    /// uses `--cds-server-address`, else the chart's CDS Service by its cluster DNS name
    /// (`stunner-cds.<--cds-server-namespace, default stunner>.svc`).
    #[command(flatten)]
    pub kube: KubeFlags,

    /// Upstream's positional TURN URI (`turn://user:pass@addr:port`) for a default config.
    /// Not supported here: write a config file instead.
    #[arg(value_name = "TURN_URI", hide = true)]
    pub turn_uri: Option<String>,
}

/// The kubeconfig flags upstream's stunnerd takes (k8s.io/cli-runtime `ConfigFlags`).
#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "Accepted for upstream compatibility (ignored)")]
pub struct KubeFlags {
    /// Path to a kubeconfig file.
    #[arg(long = "kubeconfig")]
    pub kubeconfig: Option<String>,
    /// Default cache directory.
    #[arg(long = "cache-dir")]
    pub cache_dir: Option<String>,
    /// Path to a certificate authority file.
    #[arg(long = "certificate-authority")]
    pub certificate_authority: Option<String>,
    /// Path to a client certificate file.
    #[arg(long = "client-certificate")]
    pub client_certificate: Option<String>,
    /// Path to a client key file.
    #[arg(long = "client-key")]
    pub client_key: Option<String>,
    /// Bearer token for the API server.
    #[arg(long = "token", hide_env_values = true)]
    pub token: Option<String>,
    /// Username to impersonate.
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// Group to impersonate (repeatable).
    #[arg(long = "as-group")]
    pub as_group: Vec<String>,
    /// UID to impersonate.
    #[arg(long = "as-uid")]
    pub as_uid: Option<String>,
    /// Username for basic authentication.
    #[arg(long = "username")]
    pub username: Option<String>,
    /// Password for basic authentication.
    #[arg(long = "password")]
    pub password: Option<String>,
    /// Kubeconfig cluster to use.
    #[arg(long = "cluster")]
    pub cluster: Option<String>,
    /// Kubeconfig user to use.
    #[arg(long = "user")]
    pub user: Option<String>,
    /// Namespace scope.
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// Kubeconfig context to use.
    #[arg(long = "context")]
    pub context: Option<String>,
    /// Address and port of the API server.
    #[arg(short = 's', long = "server")]
    pub server: Option<String>,
    /// Server name for certificate validation.
    #[arg(long = "tls-server-name")]
    pub tls_server_name: Option<String>,
    /// Skip the API server's certificate check.
    #[arg(long = "insecure-skip-tls-verify", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value = "false", require_equals = true)]
    pub insecure_skip_tls_verify: bool,
    /// Timeout of a single API request.
    #[arg(long = "request-timeout")]
    pub request_timeout: Option<String>,
    /// Disable response compression.
    #[arg(long = "disable-compression", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value = "false", require_equals = true)]
    pub disable_compression: bool,
}

impl KubeFlags {
    /// Names of the kube flags that were given.
    fn given(&self) -> Vec<&'static str> {
        let set = [
            ("--kubeconfig", self.kubeconfig.is_some()),
            ("--cache-dir", self.cache_dir.is_some()),
            (
                "--certificate-authority",
                self.certificate_authority.is_some(),
            ),
            ("--client-certificate", self.client_certificate.is_some()),
            ("--client-key", self.client_key.is_some()),
            ("--token", self.token.is_some()),
            ("--as", self.as_user.is_some()),
            ("--as-group", !self.as_group.is_empty()),
            ("--as-uid", self.as_uid.is_some()),
            ("--username", self.username.is_some()),
            ("--password", self.password.is_some()),
            ("--cluster", self.cluster.is_some()),
            ("--user", self.user.is_some()),
            ("--namespace", self.namespace.is_some()),
            ("--context", self.context.is_some()),
            ("--server", self.server.is_some()),
            ("--tls-server-name", self.tls_server_name.is_some()),
            ("--insecure-skip-tls-verify", self.insecure_skip_tls_verify),
            ("--request-timeout", self.request_timeout.is_some()),
            ("--disable-compression", self.disable_compression),
        ];
        set.into_iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n)
            .collect()
    }
}

impl Flags {
    /// The log level spec: `-l`, else `-v` (`all:DEBUG`); None leaves it to the config.
    pub fn log_spec(&self) -> Option<String> {
        self.log
            .clone()
            .or_else(|| self.verbose.then(|| "all:DEBUG".to_owned()))
    }

    /// The config origin to load or watch: `-c`/`STUNNER_CONFIG_ORIGIN`, else upstream's default
    /// `:13478`; `k8s` becomes the CDS Service's address.
    pub fn origin(&self) -> String {
        let origin = self
            .config
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_CONFIG_ORIGIN.to_owned());
        if origin.trim() != "k8s" {
            return normalize_origin(&origin);
        }
        if let Some(addr) = self.cds_server_address.clone().filter(|a| !a.is_empty()) {
            return normalize_origin(&with_port(&addr, self.cds_server_port));
        }
        let ns = self
            .cds_server_namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_CDS_NAMESPACE.to_owned());
        format!(
            "http://{CDS_SERVICE_NAME}.{ns}.svc:{}",
            self.cds_server_port
        )
    }

    /// The start-up health server address (`--health-address`); `Ok(None)` when empty.
    pub fn bootstrap_health(&self) -> Result<Option<std::net::SocketAddr>, String> {
        let raw = self.health_address.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse()
            .map(Some)
            .map_err(|_| format!("--health-address {raw:?}: expected IP:port"))
    }

    /// Whether drains keep /ready passing (`--force-ready-status` wins).
    pub fn drain_fail_readiness(&self) -> bool {
        self.drain_fail_readiness && !self.force_ready_status
    }

    /// One line per given flag that has no effect here.
    pub fn ignored(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.dry_run {
            out.push("-d/--dry-run: ignored, stunnerd always runs for real".to_owned());
        }
        for flag in self.kube.given() {
            out.push(format!(
                "{flag}: ignored, -c k8s resolves the CDS Service by DNS name"
            ));
        }
        out
    }
}

/// `addr` with `port` appended unless it has one; a URL is left as it is.
fn with_port(addr: &str, port: u16) -> String {
    if addr.contains("://") {
        return addr.to_owned();
    }
    if addr.parse::<std::net::Ipv6Addr>().is_ok() {
        return format!("[{addr}]:{port}");
    }
    let has_port = addr
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if has_port {
        addr.to_owned()
    } else {
        format!("{addr}:{port}")
    }
}

/// An origin as the config source reads it. Upstream's rule (`getURI`: no scheme means
/// `http://`) for anything of the form `[host]:port[/path]`, an empty host being this machine;
/// URLs unchanged; anything else is a file path (the deliberate difference, see the module doc).
pub fn normalize_origin(origin: &str) -> String {
    let origin = origin.trim();
    if origin.contains("://") {
        return origin.to_owned();
    }
    let (authority, path) = match origin.find('/') {
        Some(i) => origin.split_at(i),
        None => (origin, ""),
    };
    let Some((host, port)) = authority.rsplit_once(':') else {
        return origin.to_owned();
    };
    if port.parse::<u16>().is_err() || !is_host(host) {
        return origin.to_owned();
    }
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    format!("http://{host}:{port}{path}")
}

/// An IPv4 address or DNS name (possibly empty), or a bracketed IPv6 address.
fn is_host(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
}

/// Upstream's default dataplane id: `STUNNER_NAMESPACE/STUNNER_NAME` when both are set, else
/// `default/stunnerd-<hostname>`.
pub fn default_id(env: &dyn Fn(&str) -> Option<String>, hostname: Option<String>) -> String {
    if let (Some(ns), Some(name)) = (env("STUNNER_NAMESPACE"), env("STUNNER_NAME")) {
        return format!("{ns}/{name}");
    }
    let host = hostname
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    format!("default/stunnerd-{host}")
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`).
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
}
