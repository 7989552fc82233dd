//! `loadtest bench --quick` end to end: both servers measured, a median for every row of the
//! flows table (including the TURN over TLS and DTLS rows) and of a small audio call mix, and the
//! figures that cannot be zero when both servers really relayed and allocated are not.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const SERVERS: [&str; 2] = ["stunnerd", "coturn"];

/// Runs `loadtest bench --quick <extra>` and returns (stdout, JSON report).
fn bench(dir: &Path, name: &str, extra: &[&str]) -> (String, Value) {
    let json = dir.join(format!("{name}.json"));
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["bench", "--quick", "--json"])
        .arg(&json)
        .args(extra)
        .arg("--stunnerd-bin")
        .arg(common::stunnerd_bin())
        .arg("--workdir")
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench {extra:?} failed: {stderr}");
    eprintln!("bench --quick {extra:?} took {:?}", start.elapsed());
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), report)
}

/// The row whose metric starts with `prefix`.
fn row<'a>(rows: &'a [Value], prefix: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["metric"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no row {prefix:?}"))
}

fn median(row: &Value, server: &str) -> f64 {
    row["values"][server]["median"]
        .as_f64()
        .unwrap_or_else(|| panic!("row {} lacks {server}: {row}", row["metric"]))
}

fn assert_positive(rows: &[Value], prefix: &str) {
    let r = row(rows, prefix);
    for server in SERVERS {
        assert!(median(r, server) > 0.0, "{}: {server} is 0", r["metric"]);
    }
}

#[test]
fn slow_bench_quick_produces_rows_for_both_servers() {
    if common::stunnerd_missing() {
        return;
    }
    let dir = common::workdir("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let start = Instant::now();
    let (stdout, report) = bench(&dir, "flows", &[]);
    assert!(
        stdout.contains("| metric | unit | stunnerd | coturn | stunnerd/coturn |"),
        "{stdout}"
    );
    let rows = report["configs"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 14);
    for r in rows {
        for server in SERVERS {
            median(r, server);
        }
    }
    for prefix in [
        "server CPU-s per million relayed packets",
        "relayed packets/s in the window",
        "max relay rate at ≤0.1% loss, 100 B",
        "allocation rate",
    ] {
        assert_positive(rows, prefix);
    }
    // TURN over TLS and DTLS: 4 rows each, both servers, CPU per packet > 0.
    let secure = report["secure"]["rows"].as_array().unwrap();
    assert_eq!(secure.len(), 8, "{}", report["secure"]);
    for prefix in [
        "TLS: server CPU-s per million",
        "DTLS: server CPU-s per million",
    ] {
        assert_positive(secure, prefix);
    }
    assert!(stdout.contains("TURN over TLS and DTLS"), "{stdout}");

    // A small audio call mix: every figure measured over the steady window of both servers.
    let args = [
        "--profile",
        "audio",
        "--allocations",
        "200",
        "--window",
        "2",
    ];
    let (stdout, report) = bench(&dir, "audio", &args);
    assert!(
        stdout.contains("audio: 200 allocations × 50 pkt/s × 160 B"),
        "{stdout}"
    );
    let rows = report["mixes"][0]["rows"].as_array().unwrap();
    for prefix in [
        "server CPU-s per million relayed packets",
        "relayed packets/s in the window",
        "RTT p50",
        "server RSS",
        "generator CPU-s per wall-second",
    ] {
        assert_positive(rows, prefix);
    }
    for server in SERVERS {
        let w = &report["mixes"][0]["raw"][server][0];
        assert_eq!(w["ready"].as_u64(), Some(200), "{server}: {w}");
        // 200 calls × 50 pkt/s, echoed: about 20,000 relayed packets/s.
        let pps = w["relayed_pps"].as_f64().unwrap();
        assert!(pps > 10_000.0, "{server} relayed only {pps} pkt/s");
    }
    assert!(
        start.elapsed() < Duration::from_secs(240),
        "quick bench took {:?}",
        start.elapsed()
    );
}
