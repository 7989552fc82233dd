//! The chart's Grafana dashboard and PrometheusRule alerts against a real Prometheus scraping
//! real processes: a `stunnerd` holding a TURN allocation, the `stunner-scaler` answering a
//! KEDA-like client for a healthy ScaledObject (direct source) and a broken one (a Prometheus
//! that is not there), and the `stunner-gateway-operator` (waiting for an API server that never
//! answers, its metrics already served). Targets carry the job and target labels the Prometheus
//! Operator gives the chart's PodMonitor (`<namespace>/<name>`, `namespace`, `pod`) and
//! ServiceMonitors (the Service name). Every PromQL expression must evaluate; every series it
//! names must exist with the label matchers it uses, and every label it aggregates by must be on
//! one of its series; dashboard panels must show data; every alert rule must evaluate healthy,
//! and the scaler alerts must go pending for the broken ScaledObject.
//!
//! Needs `cargo build -p stunnerd -p operator` first, and Debian's `prometheus`.

mod common;
mod real;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use charts::{find, of_kind, template};
use common::{desired, so_ref};
use real::{
    PASS, Proc, Prometheus, Scaler, Stunnerd, USER, free_port, poll, scratch_dir, workspace_bin,
};
use serde_json::Value as Json;
use serde_norway::Value;
use testkit::turn::RawAlloc;

const CHART: &str = "stunner-gateway-operator";
const WAIT: Duration = Duration::from_secs(30);
const POD: &str = "udp-gateway-7c9d8b6f5-x2k4p";

/// The chart's dashboard expressions and its rule groups, and the job names the Prometheus
/// Operator would give its monitors' targets.
struct Monitoring {
    dashboard: Vec<String>,
    rules: Value,
    dataplane_job: String,
    scaler_job: String,
    operator_job: String,
}

fn monitoring() -> Monitoring {
    let docs = template(
        CHART,
        &[
            "--set",
            "serviceMonitor.enabled=true,prometheusRules.enabled=true,grafanaDashboard.enabled=true",
        ],
    )
    .expect("helm template");
    let cm = find(&docs, "ConfigMap", "test-dashboard").expect("dashboard ConfigMap");
    let dash: Json = serde_json::from_str(cm["data"]["stunner.json"].as_str().expect("json"))
        .expect("dashboard JSON");
    let dashboard = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    let rule = of_kind(&docs, "PrometheusRule")[0];
    let pm = of_kind(&docs, "PodMonitor")[0];
    let dataplane_job = format!(
        "{}/{}",
        pm["metadata"]["namespace"].as_str().expect("ns"),
        pm["metadata"]["name"].as_str().expect("name")
    );
    // A ServiceMonitor's job is the name of the Service it selects.
    let service_of = |monitor: &str| -> String {
        let sm = find(&docs, "ServiceMonitor", monitor).expect("ServiceMonitor");
        let sel = sm["spec"]["selector"]["matchLabels"]
            .as_mapping()
            .expect("selector");
        of_kind(&docs, "Service")
            .into_iter()
            .find(|s| {
                sel.iter()
                    .all(|(k, v)| s["metadata"]["labels"].get(k) == Some(v))
            })
            .and_then(|s| s["metadata"]["name"].as_str())
            .expect("selected Service")
            .to_owned()
    };
    Monitoring {
        dashboard,
        rules: serde_norway::to_value(serde_norway::Mapping::from_iter([(
            Value::from("groups"),
            rule["spec"]["groups"].clone(),
        )]))
        .expect("rules"),
        dataplane_job,
        scaler_job: service_of("test-scaler"),
        operator_job: service_of("test-operator"),
    }
}

/// What an expression refers to: series selectors (`name` or `name{matchers}`), and the labels
/// it aggregates by.
#[derive(Debug, Default)]
struct Refs {
    selectors: Vec<String>,
    names: Vec<String>,
    by: Vec<String>,
}

/// Scans a PromQL expression for our series (`stunner_*`, `up`) and `by (...)` labels.
fn refs(expr: &str) -> Refs {
    let b = expr.as_bytes();
    let mut out = Refs::default();
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    while i < b.len() {
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if !(b[i].is_ascii_alphabetic() || b[i] == b'_') || (i > 0 && ident(b[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && ident(b[i]) {
            i += 1;
        }
        let word = &expr[start..i];
        let rest = expr[i..].trim_start();
        if (word == "by" || word == "without") && rest.starts_with('(') {
            let close = rest.find(')').expect("closing )");
            out.by.extend(
                rest[1..close]
                    .split(',')
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty() && l != "le"),
            );
        } else if word.starts_with("stunner_") || word == "up" {
            out.names.push(word.to_owned());
            if expr[i..].starts_with('{') {
                let close = i + expr[i..].find('}').expect("closing }");
                out.selectors.push(expr[start..=close].to_owned());
                i = close + 1;
            } else {
                out.selectors.push(word.to_owned());
            }
        }
    }
    out
}

/// An instant query: the result array, or the error Prometheus gave.
async fn query(http: &reqwest::Client, prom: &Prometheus, q: &str) -> Result<Vec<Json>, String> {
    let url = format!("http://{}/prometheus/api/v1/query", prom.addr);
    let v: Json = http
        .get(url)
        .query(&[("query", q)])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if v["status"] != "success" {
        return Err(format!("{q}: {}", v["error"]));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// Checks one expression: it evaluates, its series exist with its matchers, its `by` labels are
/// on its series; a dashboard expression must also return data.
async fn check(
    http: &reqwest::Client,
    prom: &Prometheus,
    expr: &str,
    needs_data: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let r = refs(expr);
    if r.names.is_empty() {
        problems.push(format!("{expr}: names no stunner series"));
    }
    match query(http, prom, expr).await {
        Ok(res) if needs_data && res.is_empty() => problems.push(format!("{expr}: no data")),
        Ok(_) => {}
        Err(e) => problems.push(e),
    }
    for sel in &r.selectors {
        if query(http, prom, &format!("count({sel})"))
            .await
            .map_or(true, |v| v.is_empty())
        {
            problems.push(format!("{expr}: no series {sel}"));
        }
    }
    let names = r.names.join("|");
    for label in &r.by {
        let q = format!("count by ({label}) ({{__name__=~\"{names}\"}})");
        let has = query(http, prom, &q).await.is_ok_and(|res| {
            res.iter().any(|s| {
                s["metric"][label.as_str()]
                    .as_str()
                    .is_some_and(|v| !v.is_empty())
            })
        });
        if !has {
            problems.push(format!("{expr}: no series of {names} has label {label}"));
        }
    }
    problems
}

fn scrape_config(
    m: &Monitoring,
    stunnerd: SocketAddr,
    scaler: SocketAddr,
    operator: SocketAddr,
) -> String {
    format!(
        r#"global: {{ scrape_interval: 1s, evaluation_interval: 1s }}
rule_files: [rules.yml]
scrape_configs:
  - job_name: "{dp}"
    scrape_timeout: 900ms
    static_configs:
      - targets: ["{stunnerd}"]
        labels: {{ namespace: stunner, pod: "{POD}", container: stunnerd, endpoint: metrics-port }}
  - job_name: "{sc}"
    scrape_timeout: 900ms
    static_configs:
      - targets: ["{scaler}"]
        labels: {{ namespace: stunner, service: "{sc}", endpoint: http }}
  - job_name: "{op}"
    scrape_timeout: 900ms
    static_configs:
      - targets: ["{operator}"]
        labels: {{ namespace: stunner, service: "{op}", endpoint: metrics }}
"#,
        dp = m.dataplane_job,
        sc = m.scaler_job,
        op = m.operator_job,
    )
}

/// The operator binary pointed at an API server that accepts connections and never answers:
/// it keeps waiting for the cluster while its metrics server answers.
fn start_operator(silent_api: &TcpListener) -> (Proc, SocketAddr) {
    let dir = scratch_dir("operator");
    let kubeconfig = dir.join("kubeconfig");
    let api = silent_api.local_addr().expect("addr");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{ name: c, cluster: {{ server: \"http://{api}\" }} }}]\n\
             users: [{{ name: u, user: {{}} }}]\ncontexts: [{{ name: c, context: {{ cluster: c, user: u }} }}]\n\
             current-context: c\n"
        ),
    )
    .expect("kubeconfig");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = Command::new(workspace_bin("stunner-gateway-operator", "operator"));
    cmd.env("KUBECONFIG", &kubeconfig)
        .arg(format!("--cds-listen=127.0.0.1:{}", free_port()))
        .arg(format!("--metrics-listen={metrics}"));
    (Proc::spawn("stunner-gateway-operator", cmd, dir), metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_query_series_that_exist() {
    let m = monitoring();
    assert!(
        m.dashboard.len() >= 10,
        "dashboard panels: {:?}",
        m.dashboard
    );
    proto::tls::provider(); // reqwest takes the process default
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");

    let stunnerd = Stunnerd::start(&http).await;
    let turn = stunnerd.turn;
    let _alloc = tokio::task::spawn_blocking(move || RawAlloc::new(turn, USER, PASS))
        .await
        .expect("allocate");
    let mut scaler = Scaler::start(&http, &[stunnerd.health]).await;
    let silent_api = TcpListener::bind("127.0.0.1:0").expect("bind");
    let (mut operator, op_metrics) = start_operator(&silent_api);
    operator
        .wait_ok(&http, &format!("http://{op_metrics}/healthz"), WAIT)
        .await;

    // A healthy ScaledObject (direct source) and one whose Prometheus is not there.
    let mut client = common::client(scaler.grpc).await;
    let healthy = so_ref(
        "udp-gateway",
        &[
            ("source", "direct"),
            ("gateway", "stunner/udp-gateway"),
            ("targetAllocationsPerPod", "4"),
        ],
    );
    let dead = format!("http://127.0.0.1:{}", free_port());
    let broken = so_ref(
        "broken",
        &[
            ("source", "prometheus"),
            ("serverAddress", dead.as_str()),
            ("gateway", "stunner/udp-gateway"),
            ("targetAllocationsPerPod", "4"),
            ("timeout", "1s"),
        ],
    );
    assert_eq!(desired(&mut client, &healthy).await.expect("healthy"), 1);
    // A backend failure (Unavailable, so KEDA's fallback applies), not a metadata error.
    let err = desired(&mut client, &broken)
        .await
        .expect_err("no Prometheus there");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    let keda = tokio::spawn(async move {
        // KEDA polls every ScaledObject; the broken one keeps failing.
        loop {
            let _ = desired(&mut client, &healthy).await;
            let _ = desired(&mut client, &broken).await;
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    });

    let rules = serde_norway::to_string(&m.rules).expect("rules yaml");
    let prom = Prometheus::start_with(
        &http,
        &scrape_config(&m, stunnerd.metrics, scaler.http, op_metrics),
        &[("rules.yml", &rules)],
    )
    .await;
    poll(WAIT, "all three targets scraped twice", || async {
        let up = query(&http, &prom, "count_over_time(up[1m]) >= 3 and up == 1")
            .await
            .ok()?;
        (up.len() == 3).then_some(())
    })
    .await;

    let mut problems = Vec::new();
    for expr in &m.dashboard {
        problems.extend(check(&http, &prom, expr, true).await);
    }
    let mut alerts = Vec::new();
    for group in m.rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let expr = rule["expr"].as_str().expect("expr");
            alerts.push(rule["alert"].as_str().expect("alert").to_owned());
            problems.extend(check(&http, &prom, expr, false).await);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Prometheus evaluates every rule without error...
    let rules_url = format!("http://{}/prometheus/api/v1/rules", prom.addr);
    let unhealthy = poll(WAIT, "every rule evaluated", || async {
        let v: Json = http.get(&rules_url).send().await.ok()?.json().await.ok()?;
        let rules: Vec<Json> = v["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let evaluated = rules.len() == alerts.len()
            && rules.iter().all(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            });
        evaluated.then(|| {
            rules
                .iter()
                .filter(|r| r["health"] != "ok")
                .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
                .collect::<Vec<_>>()
        })
    })
    .await;
    assert!(unhealthy.is_empty(), "{unhealthy:?}");

    // ...and the scaler alerts go pending for the broken ScaledObject only.
    let alerts_url = format!("http://{}/prometheus/api/v1/alerts", prom.addr);
    poll(WAIT, "scaler alerts pending for stunner/broken", || async {
        let v: Json = http.get(&alerts_url).send().await.ok()?.json().await.ok()?;
        let active: Vec<(String, String)> = v["data"]["alerts"]
            .as_array()?
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    a["labels"]["scaledobject"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        let want = ["StunnerScalerErrors", "StunnerScalerFallbackActive"];
        let ok = want
            .iter()
            .all(|w| active.contains(&((*w).to_owned(), "stunner/broken".to_owned())))
            && !active.iter().any(|(_, so)| so == "stunner/udp-gateway");
        ok.then_some(())
    })
    .await;
    keda.abort();
    scaler.proc.assert_running();
    operator.assert_running();
}

#[test]
fn the_scanner_finds_series_matchers_and_labels() {
    let r = refs(
        r#"sum by (namespace, pod) (rate(stunner_allocations_total{job="a/b", outcome="x"}[5m])) > up"#,
    );
    assert_eq!(r.names, ["stunner_allocations_total", "up"]);
    assert_eq!(
        r.selectors[0],
        r#"stunner_allocations_total{job="a/b", outcome="x"}"#
    );
    assert_eq!(r.by, ["namespace", "pod"]);
    assert!(refs(r#"sum(x{a="stunner_fake"})"#).names.is_empty());
}
