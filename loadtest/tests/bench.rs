//! `loadtest bench --quick` end to end: both servers, JSON with a value for every row, including
//! the TURN over TLS and DTLS rows.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn bench_quick_produces_rows_for_both_servers() {
    if common::stunnerd_missing() {
        return;
    }
    let dir = common::workdir("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["bench", "--quick", "--json"])
        .arg(&json)
        .arg("--stunnerd-bin")
        .arg(common::stunnerd_bin())
        .arg("--workdir")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(240),
        "quick bench took {:?}",
        start.elapsed()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| metric | unit | stunnerd | coturn | stunnerd/coturn |"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["configs"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    for row in rows {
        for server in ["stunnerd", "coturn"] {
            let v = row["values"][server].as_f64();
            assert!(v.is_some(), "row {} lacks {server}: {row}", row["metric"]);
        }
    }
    // TURN over TLS and DTLS: 4 rows each, both servers, relayed packets per CPU-second > 0.
    let secure = report["secure"]["rows"].as_array().unwrap();
    assert_eq!(secure.len(), 8, "{}", report["secure"]);
    for (i, row) in secure.iter().enumerate() {
        for server in ["stunnerd", "coturn"] {
            let v = row["values"][server].as_f64();
            assert!(v.is_some(), "row {} lacks {server}: {row}", row["metric"]);
            if i % 4 == 1 {
                assert!(v.unwrap() > 0.0, "{}: {server} is 0", row["metric"]);
            }
        }
    }
    assert!(
        stdout.contains("TURN over TLS and DTLS"),
        "the secure table is printed: {stdout}"
    );
    // Things that cannot be zero if both servers really relayed and allocated.
    for (i, server) in [
        (2, "stunnerd"),
        (2, "coturn"),
        (5, "stunnerd"),
        (5, "coturn"),
    ] {
        assert!(
            rows[i]["values"][server].as_f64().unwrap() > 0.0,
            "{}: {server} is 0",
            rows[i]["metric"]
        );
    }
}
