//! `relay-io` end to end, briefly: every mode moves a few thousand datagrams over a few dozen
//! loopback sockets and must deliver every one it sent; a uring mode may instead be skipped, but
//! only with the reason printed (io_uring refused here, e.g. by a seccomp profile).

use std::process::Command;

use serde_json::Value;

const PACKETS: u64 = 3000;

/// Runs relay-io with small settings plus `extra`; returns its JSON lines and its log.
fn relay_io(batches: &str, extra: &[&str]) -> (Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relay-io"))
        .args(["--sockets", "64", "--batches", batches, "--reps", "1"])
        .args(["--packets", &PACKETS.to_string(), "--rate", "100000"])
        .args(["--timeout-secs", "20", "--json"])
        .args(extra)
        .output()
        .expect("run relay-io");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "relay-io failed:\n{log}");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (lines, log)
}

/// The runs of `mode`, or None (with the reason printed) when it was skipped.
fn runs_of<'a>(lines: &'a [Value], mode: &str) -> Option<Vec<&'a Value>> {
    let runs: Vec<&Value> = lines.iter().filter(|l| l["mode"] == mode).collect();
    if let Some(reason) = runs.iter().find_map(|l| l.get("skipped")) {
        println!("{mode} skipped: {reason}");
        return None;
    }
    Some(runs)
}

fn assert_all_delivered(mode: &str, runs: &[&Value], expected_runs: usize, log: &str) {
    assert_eq!(
        runs.len(),
        expected_runs,
        "{mode}: one run per batch size\n{log}"
    );
    for r in runs {
        assert_eq!(r["sent"], PACKETS, "{mode} sent: {r}\n{log}");
        assert_eq!(
            r["received"], r["sent"],
            "{mode} lost datagrams: {r}\n{log}"
        );
        assert!(
            r["syscalls"].as_u64() > Some(0),
            "{mode} counted no syscall: {r}"
        );
    }
}

#[test]
fn every_mode_delivers_every_datagram_or_says_why_it_is_skipped() {
    let (lines, log) = relay_io("8,32", &[]);
    for mode in ["sendto", "uring-send", "epoll-recvmmsg", "uring-multishot"] {
        match runs_of(&lines, mode) {
            Some(runs) => assert_all_delivered(mode, &runs, 2, &log),
            None => assert!(mode.starts_with("uring"), "{mode} must never be skipped"),
        }
    }
    let uring_ran = runs_of(&lines, "uring-send").is_some();
    assert_eq!(uring_ran, log.contains("io_uring available"), "{log}");
}

#[test]
fn without_io_uring_the_fallback_runs_and_the_log_says_so() {
    let (lines, log) = relay_io("8", &["--no-uring"]);
    assert!(
        log.contains("io_uring unavailable: disabled by --no-uring"),
        "{log}"
    );
    for mode in ["sendto", "epoll-recvmmsg"] {
        let runs = runs_of(&lines, mode).expect("the fallback modes run");
        assert_all_delivered(mode, &runs, 1, &log);
    }
    assert!(runs_of(&lines, "uring-send").is_none());
    assert!(runs_of(&lines, "uring-multishot").is_none());
}
