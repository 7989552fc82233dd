//! The application side, browser-style: aiortc (`webrtc_client.py`, run by the python of the
//! venv `scripts/setup.sh` makes) fetches `/ice` from stunner-auth like a web page, opens a
//! relay-only peer connection through stunnerd to a host-only "media server" peer on loopback
//! and echoes messages over a data channel. stunnerd must hold the client's allocation while
//! the channel is up and free it when the client closes.
//!
//! Needs `.tools/venv` with aiortc: `scripts/setup.sh`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::Harness;

/// Messages the client sends and expects back.
const MESSAGES: usize = 20;
/// The script's own bound (every step), and ours around it (interpreter start and teardown).
const SCRIPT_TIMEOUT_SECS: u64 = 30;
const TEST_TIMEOUT: Duration = Duration::from_secs(45);

/// `.tools/venv/bin/python` of the workspace, with aiortc importable; fails (never skips) with
/// the fix otherwise.
fn venv_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let python = root.join(".tools/venv/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup.sh (it installs aiortc into .tools/venv)",
        python.display()
    );
    let out = Command::new(&python)
        .args(["-c", "import aiortc; print(aiortc.__version__)"])
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "aiortc is not importable from {}: run scripts/setup.sh\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

/// The client process: its stdout lines as they come, its stderr collected at the end.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    seen: Vec<String>,
}

/// A panicking test must not leave the client running.
impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Client {
    fn spawn(python: &Path, ice_url: &str) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/webrtc_client.py");
        let mut child = Command::new(python)
            .arg(&script)
            .arg(ice_url)
            .args(["--username", "webrtc-e2e", "--hold"])
            .args(["--messages", &MESSAGES.to_string()])
            .args(["--timeout", &SCRIPT_TIMEOUT_SECS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn webrtc_client.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
            seen: Vec::new(),
        }
    }

    /// Reads stdout until a line equal to `want` (true) or EOF (false), at most until `deadline`.
    fn read_until(&mut self, want: Option<&str>, deadline: Instant) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = want == Some(line.as_str());
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return false,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "webrtc_client.py still running after {TEST_TIMEOUT:?}: {:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Waits for the exit (killing the process at `deadline`); the exit status and stderr.
    fn finish(mut self, deadline: Instant) -> (std::process::ExitStatus, Vec<String>, String) {
        drop(self.stdin.take());
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        (status, std::mem::take(&mut self.seen), stderr)
    }
}

/// The `<ip>:<port>` after `key=<type> ` in the `selected-pair` line, with the type.
fn endpoint<'a>(line: &'a str, key: &str) -> (&'a str, &'a str) {
    let rest = line
        .split_once(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .1;
    let mut fields = rest.split_whitespace();
    (
        fields.next().expect("candidate type"),
        fields.next().expect("candidate address"),
    )
}

#[test]
fn webrtc_client_relays_a_data_channel_through_stunnerd() {
    let python = venv_python();
    let h = Harness::start(None);
    assert_eq!(h.json_status(), 0, "no allocation before the client");
    let deadline = Instant::now() + TEST_TIMEOUT;
    let url = format!("http://{}/ice?namespace=default&gateway=gw", h.auth);
    let mut client = Client::spawn(&python, &url);

    // While the client holds its connection open after the echoes, stunnerd has its allocation.
    let held = client.read_until(Some("HOLDING"), deadline);
    let allocations_held = held.then(|| h.json_status());
    let _ = client.stdin.as_mut().map(|s| s.write_all(b"\n"));
    client.read_until(None, deadline);
    let (status, out, stderr) = client.finish(deadline);
    let report = format!(
        "exit {status}\nstdout:\n{}\nstderr:\n{stderr}",
        out.join("\n")
    );
    println!("{report}");
    assert!(
        status.success() && out.last().map(String::as_str) == Some("OK"),
        "the WebRTC client failed: {report}"
    );
    assert_eq!(
        allocations_held,
        Some(1),
        "stunnerd holds the client's allocation while the data channel is up: {report}"
    );

    // The ICE server is stunnerd's listener with an ephemeral credential for the asked user.
    let turn = format!("turn:127.0.0.1:{}?transport=udp", h.turn);
    let server = out
        .iter()
        .find(|l| l.starts_with("ice-server "))
        .unwrap_or_else(|| panic!("no ice-server line: {report}"));
    assert!(
        server.contains(&format!("urls=['{turn}']")) && server.ends_with(":webrtc-e2e"),
        "{server}"
    );
    // A's only candidates are relayed addresses on stunnerd (STUNNER_ADDR 127.0.0.1), B's host.
    let candidates_a: Vec<_> = out
        .iter()
        .filter(|l| l.starts_with("candidate A "))
        .collect();
    assert!(!candidates_a.is_empty(), "{report}");
    for c in &candidates_a {
        assert!(c.contains(" 127.0.0.1 ") && c.contains(" typ relay"), "{c}");
    }
    let pair = out
        .iter()
        .find(|l| l.starts_with("selected-pair "))
        .unwrap_or_else(|| panic!("no selected-pair line: {report}"));
    let (local_type, local) = endpoint(pair, "local");
    let (remote_type, remote) = endpoint(pair, "remote");
    assert_eq!((local_type, remote_type), ("relay", "host"), "{pair}");
    assert!(
        local.starts_with("127.0.0.1:"),
        "relayed on stunnerd: {pair}"
    );
    assert_ne!(local, format!("127.0.0.1:{}", h.turn), "{pair}");
    assert!(remote.starts_with("127.0.0.1:"), "{pair}");
    assert!(
        out.contains(&format!("echoed {MESSAGES}/{MESSAGES}")),
        "{report}"
    );

    // Closing the peer connection deletes the allocation (REFRESH with lifetime 0).
    let end = Instant::now() + Duration::from_secs(5);
    while h.json_status() != 0 {
        assert!(
            Instant::now() < end,
            "the closed client's allocation still on stunnerd after 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
