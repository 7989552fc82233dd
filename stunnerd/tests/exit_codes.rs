//! Exit codes of a stunnerd that cannot start: 64 (`EX_USAGE`) only for what the user fixes in the
//! configuration (a malformed config, origin or id), 1 for failures that may pass on a retry (an
//! unreachable config discovery server). Every run is bounded.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, scratch};

/// Runs stunnerd with `args` (no health server) and returns its exit code.
fn exit_code(args: &[&str]) -> i32 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stunnerd"))
        .args(args)
        .args(["--health-address", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stunnerd");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stunnerd {args:?} still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn invalid_config_exits_64() {
    let path = scratch("bad.yaml");
    std::fs::write(
        &path,
        "version: v1\nlisteners:\n  - name: x\n    port: notaport\n",
    )
    .unwrap();
    assert_eq!(exit_code(&["-c", path.to_str().unwrap()]), 64);
}

#[test]
fn unsupported_origin_exits_64() {
    assert_eq!(exit_code(&["-c", "ftp://cds:13478", "--id", "ns/gw"]), 64);
}

#[test]
fn unreachable_config_server_exits_1() {
    let origin = format!("http://127.0.0.1:{}", free_port());
    assert_eq!(exit_code(&["-c", &origin, "--id", "ns/gw"]), 1);
}
