//! `stunnerctl` (in-process, its clap command line) against the same real CDS server, stunnerd
//! and credential service: config (table, JSON, watch), status, auth, drain start/cancel.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use proto::admin::{DataplaneState, Status};
use proto::auth::IceConfig;
use proto::config::StunnerConfig;
use serde_json::Value;
use stunner_auth::ctl::{Cli, run};

use crate::Harness;

/// Runs `stunnerctl args...` on the harness runtime; (ok, output).
fn ctl(h: &Harness, args: &[&str]) -> (bool, String) {
    let cli = Cli::try_parse_from(std::iter::once("stunnerctl").chain(args.iter().copied()))
        .expect("command line");
    let mut out = Vec::new();
    let ok = h.rt.block_on(run(cli, &mut out));
    if let Err(e) = &ok {
        eprintln!("stunnerctl {args:?}: {e}");
    }
    (ok.is_ok(), String::from_utf8(out).expect("utf-8"))
}

fn cells(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn config_table_json_and_watch() {
    let mut h = Harness::start(None);
    let cds = h.cds.clone();
    let (ok, table) = ctl(
        &h,
        &[
            "config",
            "gw",
            "-n",
            "default",
            "--cds-server-address",
            &cds,
        ],
    );
    assert!(ok, "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        cells(lines[0]),
        [
            "GATEWAY", "AUTH", "LISTENER", "PROTOCOL", "PUBLIC", "ROUTES"
        ]
    );
    let public = format!("127.0.0.1:{}", h.turn);
    assert_eq!(
        cells(lines[1]),
        [
            "default/gw",
            "ephemeral",
            "udp",
            "TURN-UDP",
            public.as_str(),
            "default/peers"
        ]
    );
    let (ok, json) = ctl(
        &h,
        &[
            "-o",
            "json",
            "config",
            "-n",
            "default",
            "--cds-server-address",
            &cds,
        ],
    );
    assert!(ok, "{json}");
    let configs: Vec<StunnerConfig> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("config"))
        .collect();
    let names: Vec<&str> = configs.iter().map(|c| c.admin.name.as_str()).collect();
    assert_eq!(names, ["default/gw", "default/other"]);
    let (ok, err) = ctl(&h, &["config", "missing", "--cds-server-address", &cds]);
    assert!(!ok, "an unknown Gateway is an error: {err}");

    // --watch: the current configs, then the deletion, as it happens.
    let buf = SharedBuf::default();
    let mut w = buf.clone();
    let args = [
        "stunnerctl",
        "config",
        "-a",
        "--watch",
        "--cds-server-address",
        &cds,
    ]
    .map(str::to_owned);
    std::thread::spawn(move || {
        let cli = Cli::try_parse_from(args).expect("command line");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let _ = rt.block_on(run(cli, &mut w));
    });
    buf.wait_for("default/other", Duration::from_secs(5));
    h.delete_gateway("other");
    let start = Instant::now();
    buf.wait_for("<deleted>", Duration::from_secs(5));
    let text = buf.text();
    let deleted = text
        .lines()
        .find(|l| l.contains("<deleted>"))
        .expect("deleted row");
    assert_eq!(cells(deleted), ["default/other", "<deleted>"]);
    println!(
        "watch printed the deletion after {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
}

#[test]
fn status_auth_and_drain() {
    let h = Harness::start(None);
    let pod = format!("127.0.0.1:{}", h.health);
    let (ok, table) = ctl(&h, &["status", "--pod-address", &pod]);
    assert!(ok, "{table}");
    let row = table.lines().nth(1).expect("row");
    let want_listener = format!("TURN-UDP/{}", h.turn);
    assert_eq!(
        cells(row),
        [pod.as_str(), "READY", "0", want_listener.as_str(), "-"]
    );

    let (ok, json) = ctl(
        &h,
        &[
            "-o",
            "json",
            "status",
            "--pod-address",
            &pod,
            "--pod-address",
            "127.0.0.1:1",
        ],
    );
    assert!(!ok, "an unreachable pod makes the command fail");
    let docs: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let status: Status = serde_json::from_value(docs[0]["status"].clone()).expect("status");
    assert_eq!(status.state, DataplaneState::Ready);
    assert!(docs[1]["error"].as_str().is_some(), "{json}");

    let auth = h.auth.to_string();
    let (ok, json) = ctl(
        &h,
        &[
            "-o",
            "json",
            "auth",
            "gw",
            "-n",
            "default",
            "--username",
            "carol",
            "--auth-server-address",
            &auth,
        ],
    );
    assert!(ok, "{json}");
    let ice: IceConfig = serde_json::from_str(json.trim()).expect("ice");
    assert_eq!(ice.ice_servers.len(), 1);
    assert!(ice.ice_servers[0].username.ends_with(":carol"), "{ice:?}");
    let (ok, table) = ctl(
        &h,
        &[
            "auth",
            "--auth-turn-credential",
            "--ttl",
            "60",
            "--auth-server-address",
            &auth,
        ],
    );
    assert!(ok, "{table}");
    assert_eq!(
        cells(table.lines().next().expect("header")),
        ["USERNAME", "PASSWORD", "TTL", "URIS"]
    );
    assert_eq!(cells(table.lines().nth(1).expect("row"))[2], "60");

    let (ok, out) = ctl(
        &h,
        &[
            "drain",
            "start",
            "--pod-address",
            &pod,
            "--timeout",
            "600",
            "--admin-token",
            crate::ADMIN_TOKEN,
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(cells(out.lines().nth(1).expect("row"))[1], "DRAINING");
    let (_, json) = ctl(&h, &["-o", "json", "status", "--pod-address", &pod]);
    let doc: Value = serde_json::from_str(json.trim()).expect("json");
    assert_eq!(doc["status"]["state"], "DRAINING", "{json}");
    assert!(doc["status"]["drainDeadline"].as_u64().is_some(), "{json}");
    let (ok, out) = ctl(
        &h,
        &[
            "-o",
            "json",
            "drain",
            "cancel",
            "--pod-address",
            &pod,
            "--admin-token",
            crate::ADMIN_TOKEN,
        ],
    );
    assert!(ok, "{out}");
    let r: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(r["state"], "READY", "{out}");
}

/// A `Write` whose bytes another thread reads.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        let b = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&b).into_owned()
    }

    fn wait_for(&self, needle: &str, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("{needle:?} not printed within {limit:?}: {}", self.text());
    }
}

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
