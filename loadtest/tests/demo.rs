//! The short local autoscaling demo end to end: real stunnerd processes, the real scaler in
//! `direct` mode, ramping calls. Our policy (drain steering + graceful drain) must drop no call
//! and never bounce; the naive one (random victim, killed at once) must drop some, which shows the
//! demo measures what it claims to.

mod common;

use std::process::Command;

#[test]
fn slow_short_demo_drops_nothing_with_our_policy_and_something_with_the_naive_one() {
    if common::stunnerd_missing() {
        return;
    }
    let scaler = common::stunnerd_bin().with_file_name("stunner-scaler");
    assert!(
        scaler.exists(),
        "{} not built: run `cargo build -p scaler` first",
        scaler.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["demo", "--short", "--json"])
        .arg("--stunnerd-bin")
        .arg(common::stunnerd_bin())
        .arg("--scaler-bin")
        .arg(&scaler)
        .output()
        .expect("run loadtest demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout.lines().last().expect("JSON report line");
    let report: serde_json::Value = serde_json::from_str(json).expect("JSON report");
    let (ours, naive) = (&report["runs"][0], &report["runs"][1]);
    assert_eq!(ours["policy"], "steered");
    assert_eq!(ours["calls_dropped"], 0, "{stdout}");
    assert_eq!(ours["bounces"], 0, "{stdout}");
    assert!(ours["calls_connected"].as_u64().unwrap() >= 50, "{stdout}");
    assert!(
        ours["scale_ins"].as_u64().unwrap() >= 1,
        "no scale-in happened:\n{stdout}"
    );
    assert!(ours["peak_replicas"].as_u64().unwrap() >= 3, "{stdout}");
    assert_eq!(naive["policy"], "naive");
    assert!(
        naive["calls_dropped"].as_u64().unwrap() > 0,
        "naive policy dropped nothing:\n{stdout}"
    );
}

/// `--profile large`: the ramp to 3,000 calls on the KEDA/HPA model at cluster scale. Ours
/// reaches 30 pods, drops no call, never bounces and returns to one pod; the previous report
/// (the desired count as is) stalls above the load, and the naive set-up drops calls.
#[test]
fn slow_large_profile_reaches_thirty_pods_and_back_with_no_drop() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["demo", "--profile", "large", "--json"])
        .output()
        .expect("run loadtest demo --profile large");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "large demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout.lines().last().expect("JSON report line");
    let report: serde_json::Value = serde_json::from_str(json).expect("JSON report");
    let run = |name: &str| {
        report["runs"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == name))
            .unwrap_or_else(|| panic!("no {name} run:\n{stdout}"))
            .clone()
    };
    let (ours, as_is, naive) = (run("ours"), run("desired as is"), run("naive"));
    assert!(ours["peak_replicas"].as_u64().unwrap() >= 30, "{stdout}");
    assert!(ours["secs_to_peak"].is_u64(), "{stdout}");
    assert_eq!(
        (&ours["dropped_calls"], &ours["bounces"]),
        (&0.into(), &0.into()),
        "{stdout}"
    );
    assert_eq!(ours["final_replicas"], 1, "{stdout}");
    assert!(
        as_is["final_replicas"].as_u64().unwrap() > 1,
        "the old report stalls:\n{stdout}"
    );
    assert!(naive["dropped_calls"].as_u64().unwrap() > 0, "{stdout}");
}
