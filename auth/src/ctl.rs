//! `stunnerctl`: inspect a STUNner deployment from the command line (upstream's `config`,
//! `status` and `auth`, plus our `drain`), reaching the operator's CDS, the dataplane pods'
//! health/admin servers and the credential service at explicit addresses (a
//! `kubectl port-forward` gives them from outside the cluster).
//!
//! ```text
//!   config [GATEWAY] [-n NS | -a] [--watch]   CDS  GET/watch /api/v1/configs[/NS[/GATEWAY]]
//!   status --pod-address HOST:PORT ...        pod  GET /status
//!   auth [GATEWAY] [-n NS] [--username U]     auth GET /ice (or / with --auth-turn-credential)
//!   drain start|cancel --pod-address ...      pod  POST|DELETE /drain (bearer --admin-token)
//! ```
//!
//! Output: `-o table` (default, one row per listener or pod), `-o json` (one JSON document per
//! line, what scripts parse), `-o yaml`.

use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use proto::admin::{DrainResponse, ErrorResponse, Status};
use proto::auth::{IceConfig, TurnCredential, split_listener_name};
use proto::config::StunnerConfig;
use serde::Serialize;

use crate::cds::{CdsClient, CdsError, Scope, encode};

/// Time limit of one HTTP call to a pod or the credential service.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Talking to CDS failed.
    #[error(transparent)]
    Cds(#[from] CdsError),
    /// An HTTP call to a pod or the credential service failed.
    #[error("{url}: {message}")]
    Http {
        /// The URL called.
        url: String,
        /// What happened.
        message: String,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(String),
    /// The command line is incomplete.
    #[error("{0}")]
    Usage(String),
}

/// Result of the commands.
pub type Result<T, E = CtlError> = std::result::Result<T, E>;

/// Inspect STUNner gateways: dataplane configs, pod status, credentials, drains.
#[derive(Debug, Parser)]
#[command(name = "stunnerctl", version)]
pub struct Cli {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// One JSON document per line.
    Json,
    /// YAML documents.
    Yaml,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dataplane configs of Gateways, as the operator's CDS serves them.
    Config(ConfigArgs),
    /// Status of dataplane pods (state, allocations, drain) from their `/status`.
    Status(PodArgs),
    /// A TURN credential or an ICE configuration from the credential service.
    Auth(AuthArgs),
    /// Start or cancel a dataplane pod's graceful drain through its admin API.
    Drain(DrainArgs),
}

/// `stunnerctl config`.
#[derive(Debug, Parser)]
pub struct ConfigArgs {
    /// Gateway name (all Gateways of the namespace when absent).
    pub gateway: Option<String>,
    /// Namespace of the Gateways.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'a', long)]
    pub all_namespaces: bool,
    /// Keep printing every change (deletions as `<deleted>`) until interrupted.
    #[arg(short, long)]
    pub watch: bool,
    /// The operator's CDS server (`kubectl -n stunner port-forward svc/stunner-cds 13478`).
    #[arg(
        long = "cds-server-address",
        env = "CDS_SERVER_ADDR",
        default_value = "127.0.0.1:13478"
    )]
    pub cds: String,
}

/// Pods to ask.
#[derive(Debug, Parser)]
pub struct PodArgs {
    /// `host:port` of a pod's health/admin server (default port 8086); repeat for more pods.
    #[arg(long = "pod-address", required = true)]
    pub pods: Vec<String>,
}

/// `stunnerctl auth`.
#[derive(Debug, Parser)]
pub struct AuthArgs {
    /// Only this Gateway (needs `-n`).
    pub gateway: Option<String>,
    /// Only Gateways in this namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// User id of an ephemeral credential.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Credential lifetime in seconds (the service's default, one day, when absent).
    #[arg(long)]
    pub ttl: Option<u64>,
    /// Ask `GET /` (a TURN credential) instead of `GET /ice`.
    #[arg(long = "auth-turn-credential")]
    pub turn: bool,
    /// The credential service.
    #[arg(
        long = "auth-server-address",
        env = "STUNNER_AUTH_ADDR",
        default_value = "127.0.0.1:8088"
    )]
    pub server: String,
    /// Its bearer token, when it asks for one.
    #[arg(long, env = "STUNNER_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `stunnerctl drain`.
#[derive(Debug, Parser)]
pub struct DrainArgs {
    /// `start` or `cancel`.
    #[arg(value_enum)]
    pub action: DrainAction,
    /// The pods.
    #[command(flatten)]
    pub pods: PodArgs,
    /// Drain deadline in seconds (stunnerd's `--drain-timeout` when absent).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// stunnerd's `--admin-token` (required unless the pod is reached on loopback).
    #[arg(long, env = "STUNNER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

/// What `drain` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DrainAction {
    /// `POST /drain`.
    Start,
    /// `DELETE /drain`.
    Cancel,
}

/// Runs `cli`, writing to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    let o = cli.output;
    match cli.command {
        Command::Config(a) => config(a, o, out).await,
        Command::Status(a) => status(a, o, out).await,
        Command::Auth(a) => auth(a, o, out).await,
        Command::Drain(a) => drain(a, o, out).await,
    }
}

// ---- config ----

async fn config(a: ConfigArgs, o: Output, out: &mut dyn Write) -> Result<()> {
    let cds = CdsClient::new(&a.cds)?;
    let scope = match (a.all_namespaces, a.gateway) {
        (true, _) => Scope::All,
        (false, Some(gw)) => Scope::Gateway(a.namespace, gw),
        (false, None) => Scope::Namespace(a.namespace),
    };
    if o == Output::Table {
        row(out, &CONFIG_HEADER)?;
    }
    if !a.watch {
        for c in cds.get(&scope).await? {
            print_config(&c, o, out)?;
        }
        return Ok(());
    }
    let mut watch = cds.watch(&scope).await?;
    loop {
        let c = watch.next().await?;
        print_config(&c, o, out)?;
        out.flush().map_err(output)?;
    }
}

const CONFIG_HEADER: [&str; 6] = [
    "GATEWAY", "AUTH", "LISTENER", "PROTOCOL", "PUBLIC", "ROUTES",
];

fn print_config(c: &StunnerConfig, o: Output, out: &mut dyn Write) -> Result<()> {
    if o != Output::Table {
        return emit(c, o, out);
    }
    if c.is_deleted() {
        return row(out, &[&c.admin.name, "<deleted>", "", "", "", ""]);
    }
    if c.listeners.is_empty() {
        return row(
            out,
            &[&c.admin.name, c.auth.auth_type.as_str(), "-", "", "", ""],
        );
    }
    for l in &c.listeners {
        let name = split_listener_name(&l.name).map_or(l.name.as_str(), |(_, _, n)| n);
        let public = if l.public_address.is_empty() {
            "<pending>".to_owned()
        } else {
            format!("{}:{}", l.public_address, l.public_port)
        };
        row(
            out,
            &[
                &c.admin.name,
                c.auth.auth_type.as_str(),
                name,
                l.protocol.as_str(),
                &public,
                &l.routes.join(","),
            ],
        )?;
    }
    Ok(())
}

// ---- status ----

/// One pod's answer, as `-o json` prints it.
#[derive(Debug, Serialize)]
struct PodStatus<'a> {
    pod: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn status(a: PodArgs, o: Output, out: &mut dyn Write) -> Result<()> {
    let http = client()?;
    if o == Output::Table {
        row(
            out,
            &["POD", "STATE", "ALLOCATIONS", "LISTENERS", "DRAIN-DEADLINE"],
        )?;
    }
    let mut failed = 0;
    for pod in &a.pods {
        let url = format!("http://{}/status", with_port(pod, 8086));
        let answer = call::<Status>(http.get(&url), &url).await;
        failed += usize::from(answer.is_err());
        let (status, error) = match answer {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        if o != Output::Table {
            emit(&PodStatus { pod, status, error }, o, out)?;
            continue;
        }
        match (status, error) {
            (Some(s), _) => {
                let deadline = s
                    .drain_deadline
                    .map(|d| d.to_string())
                    .unwrap_or("-".into());
                let listeners: Vec<String> = s
                    .listeners
                    .iter()
                    .map(|l| format!("{}/{}", l.protocol, l.port))
                    .collect();
                row(
                    out,
                    &[
                        pod,
                        s.state.as_str(),
                        &s.allocation_count.to_string(),
                        &listeners.join(","),
                        &deadline,
                    ],
                )?;
            }
            (None, e) => row(out, &[pod, "UNREACHABLE", "-", "-", &e.unwrap_or_default()])?,
        }
    }
    if failed > 0 {
        return Err(CtlError::Usage(format!(
            "{failed} of {} pods did not answer",
            a.pods.len()
        )));
    }
    Ok(())
}

// ---- auth ----

async fn auth(a: AuthArgs, o: Output, out: &mut dyn Write) -> Result<()> {
    if a.gateway.is_some() && a.namespace.is_none() {
        return Err(CtlError::Usage(
            "a gateway needs its namespace: -n <namespace>".into(),
        ));
    }
    let path = if a.turn { "/" } else { "/ice" };
    let mut query = vec![("service", "turn".to_owned())];
    let opt = [
        ("namespace", a.namespace),
        ("gateway", a.gateway),
        ("username", a.username),
        ("ttl", a.ttl.map(|t| t.to_string())),
    ];
    query.extend(opt.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    let base = a.server.trim_end_matches('/');
    let base = if base.contains("://") {
        base.to_owned()
    } else {
        format!("http://{base}")
    };
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let url = format!("{base}{path}?{}", query.join("&"));
    let mut req = client()?.get(&url);
    if let Some(t) = &a.token {
        req = req.bearer_auth(t);
    }
    if a.turn {
        let c: TurnCredential = call(req, &url).await?;
        if o != Output::Table {
            return emit(&c, o, out);
        }
        row(out, &["USERNAME", "PASSWORD", "TTL", "URIS"])?;
        return row(
            out,
            &[
                &c.username,
                &c.password,
                &c.ttl.to_string(),
                &c.uris.join(","),
            ],
        );
    }
    let ice: IceConfig = call(req, &url).await?;
    if o != Output::Table {
        return emit(&ice, o, out);
    }
    row(out, &["USERNAME", "CREDENTIAL", "URLS"])?;
    for s in &ice.ice_servers {
        row(out, &[&s.username, &s.credential, &s.urls.join(",")])?;
    }
    writeln!(out, "iceTransportPolicy: {}", ice.ice_transport_policy).map_err(output)
}

// ---- drain ----

async fn drain(a: DrainArgs, o: Output, out: &mut dyn Write) -> Result<()> {
    let http = client()?;
    if o == Output::Table {
        row(out, &["POD", "STATE", "ALLOCATIONS", "MESSAGE"])?;
    }
    for pod in &a.pods.pods {
        let mut url = format!("http://{}/drain", with_port(pod, 8086));
        if let (DrainAction::Start, Some(t)) = (a.action, a.timeout) {
            url.push_str(&format!("?timeout={t}"));
        }
        let mut req = match a.action {
            DrainAction::Start => http.post(&url),
            DrainAction::Cancel => http.delete(&url),
        };
        if let Some(t) = &a.admin_token {
            req = req.bearer_auth(t);
        }
        let r: DrainResponse = call(req, &url).await?;
        if o != Output::Table {
            emit(&r, o, out)?;
            continue;
        }
        row(
            out,
            &[
                pod,
                r.state.as_str(),
                &r.allocation_count.to_string(),
                &r.message,
            ],
        )?;
    }
    Ok(())
}

// ---- plumbing ----

fn client() -> Result<reqwest::Client> {
    proto::tls::provider(); // reqwest takes the process default
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| CtlError::Usage(format!("HTTP client: {e}")))
}

/// Sends `req` and decodes a 2xx JSON answer; any other answer is an error with its text
/// (stunnerd's `{"error": ...}` bodies unwrapped).
async fn call<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    url: &str,
) -> Result<T> {
    let fail = |message: String| CtlError::Http {
        url: url.to_owned(),
        message,
    };
    let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
    let code = resp.status();
    let body = resp.text().await.map_err(|e| fail(e.to_string()))?;
    if !code.is_success() {
        let text = serde_json::from_str::<ErrorResponse>(&body)
            .map_or_else(|_| body.trim().to_owned(), |e| e.error);
        return Err(fail(format!("{code}: {text}")));
    }
    serde_json::from_str(&body).map_err(|e| fail(format!("unexpected answer: {e}")))
}

/// `addr` with `port` appended when it has none.
fn with_port(addr: &str, port: u16) -> String {
    let has_port = match addr.rfind(']') {
        Some(end) => addr[end..].contains(':'),
        None => addr.contains(':'),
    };
    if has_port {
        addr.to_owned()
    } else {
        format!("{addr}:{port}")
    }
}

fn output(e: std::io::Error) -> CtlError {
    CtlError::Output(e.to_string())
}

fn emit<T: Serialize>(v: &T, o: Output, out: &mut dyn Write) -> Result<()> {
    let text = match o {
        Output::Yaml => serde_norway::to_string(v)
            .map(|y| format!("---\n{y}"))
            .map_err(|e| CtlError::Output(e.to_string()))?,
        _ => serde_json::to_string(v)
            .map(|j| format!("{j}\n"))
            .map_err(|e| CtlError::Output(e.to_string()))?,
    };
    out.write_all(text.as_bytes()).map_err(output)
}

/// Column widths of table rows (wide enough for typical names; longer cells just push on).
const WIDTHS: [usize; 6] = [24, 12, 16, 12, 24, 0];

fn row(out: &mut dyn Write, cells: &[&str]) -> Result<()> {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        let w = WIDTHS.get(i).copied().unwrap_or(0);
        if i + 1 == cells.len() {
            line.push_str(c);
        } else {
            line.push_str(&format!("{c:<w$} "));
        }
    }
    writeln!(out, "{}", line.trim_end()).map_err(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_parse() {
        let cli = Cli::try_parse_from([
            "stunnerctl",
            "-o",
            "json",
            "config",
            "gw",
            "-n",
            "media",
            "--watch",
            "--cds-server-address",
            "10.0.0.1:13478",
        ])
        .unwrap();
        assert_eq!(cli.output, Output::Json);
        let Command::Config(c) = cli.command else {
            panic!("config")
        };
        assert_eq!(
            (c.gateway.as_deref(), c.namespace.as_str(), c.watch),
            (Some("gw"), "media", true)
        );
        let cli = Cli::try_parse_from([
            "stunnerctl",
            "drain",
            "start",
            "--pod-address",
            "10.0.0.2",
            "--timeout",
            "60",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Drain(DrainArgs {
                action: DrainAction::Start,
                timeout: Some(60),
                ..
            })
        ));
        assert!(
            Cli::try_parse_from(["stunnerctl", "status"]).is_err(),
            "status needs a pod"
        );
        assert_eq!(with_port("10.0.0.2", 8086), "10.0.0.2:8086");
        assert_eq!(with_port("[::1]:9", 8086), "[::1]:9");
    }

    #[test]
    fn config_table_has_one_row_per_listener() {
        let mut c = StunnerConfig::default();
        c.admin.name = "ns/gw".into();
        c.listeners.push(proto::config::ListenerConfig {
            name: "ns/gw/udp".into(),
            public_address: "1.2.3.4".into(),
            public_port: 3478,
            routes: vec!["ns/media".into()],
            ..Default::default()
        });
        let mut out = Vec::new();
        print_config(&c, Output::Table, &mut out).unwrap();
        print_config(&StunnerConfig::deleted("ns/old"), Output::Table, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            [
                "ns/gw",
                "static",
                "udp",
                "TURN-UDP",
                "1.2.3.4:3478",
                "ns/media"
            ]
        );
        assert_eq!(lines[1], ["ns/old", "<deleted>"]);
    }
}
