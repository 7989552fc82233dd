//! The `stunner-gateway-operator` binary against a kubeconfig written to a temp dir: it starts
//! (preflight, reflectors, leader election, CDS) against a stand-in API server and stops cleanly
//! on SIGTERM, also while the API server accepts and never answers; it fails with a clear message
//! when the API server is unreachable (a closed port),
//! when the CRDs are missing (the stand-in answers 404 to every list), or without any client
//! configuration. The stand-in is a loopback HTTP/1.1 server, one thread per connection; every
//! wait is bounded and the process is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const VERSION: &str = r#"{"major":"1","minor":"31","gitVersion":"v1.31.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#;
const EMPTY_LIST: &str =
    r#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":[]}"#;
const NO_RESOURCES: &str =
    r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"","resources":[]}"#;
const NO_GROUPS: &str = r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#;

/// How the stand-in API server behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cluster {
    /// Answers `/version`, 404 to everything else: no CRDs installed.
    NoCrds,
    /// Every list is empty, watches stay open with no events, API discovery finds no optional
    /// API, the Lease is created.
    Empty,
}

/// The stand-in API server: its port and the request lines it saw.
struct ApiServer {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ApiServer {
    fn start(cluster: Cluster) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(conn, cluster, &log));
            }
        });
        Self { port, seen }
    }

    /// Whether a request line containing every one of `parts` came in.
    fn saw(&self, parts: &[&str]) -> bool {
        self.seen
            .lock()
            .expect("log")
            .iter()
            .any(|l| parts.iter().all(|p| l.contains(p)))
    }
}

/// Serves the requests of one connection until the client closes it.
fn serve(conn: TcpStream, cluster: Cluster, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut out = conn;
    while let Some((line, body_len)) = read_head(&mut reader) {
        let mut body = vec![0; body_len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().expect("log").push(line.clone());
        let mut parts = line.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if cluster == Cluster::Empty && target.contains("watch=true") {
            // an open watch with no events, until the client goes away
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
            let _ = reader.read(&mut [0; 1]);
            return;
        }
        let (code, answer) = respond(cluster, method, target, &body);
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(&answer).is_err() {
            return;
        }
    }
}

/// The request line and Content-Length of the next request; None at the end of the connection.
fn read_head(reader: &mut impl BufRead) -> Option<(String, usize)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut len = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok().filter(|n| *n > 0)?;
        if h.trim().is_empty() {
            return Some((line.trim().to_owned(), len));
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
}

fn respond(cluster: Cluster, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let path = target.split('?').next().unwrap_or("");
    let ok = |s: &str| (200, s.as_bytes().to_vec());
    match (cluster, method, path) {
        (_, "GET", "/version") => ok(VERSION),
        (Cluster::Empty, "GET", "/apis") => ok(NO_GROUPS),
        (Cluster::Empty, "GET", p) if p.starts_with("/apis/") && p.split('/').count() == 4 => {
            ok(NO_RESOURCES)
        }
        (Cluster::Empty, "POST", p) if p.ends_with("/leases") => (201, body.to_vec()),
        (Cluster::Empty, "GET", p) if !p.contains("/leases/") => ok(EMPTY_LIST),
        _ => (404, NOT_FOUND.as_bytes().to_vec()),
    }
}

/// A kubeconfig pointing at `http://127.0.0.1:<port>` in a fresh temp dir.
fn kubeconfig(port: u16) -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("operator-bin-{}-{seq}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: test\n  user:\n    token: t\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// A running operator binary, killed on drop.
struct Operator {
    child: Child,
    log: PathBuf,
}

impl Operator {
    fn spawn(kubeconfig: &Path, cds_port: u16) -> Self {
        let log = kubeconfig.with_file_name("operator.log");
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_stunner-gateway-operator"))
            .args(["--cds-listen", &format!("127.0.0.1:{cds_port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{}", closed_port())])
            .args(["--lease-namespace", "stunner-system", "--identity", "test"])
            .env_clear()
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", kubeconfig.parent().expect("dir"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn the operator");
        Self { child, log }
    }

    /// Waits for the exit (at most [`LIMIT`]); returns the status and everything it printed.
    fn wait(&mut self) -> (ExitStatus, String) {
        let end = Instant::now() + LIMIT;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return (st, self.output());
            }
            assert!(
                Instant::now() < end,
                "no exit within {LIMIT:?}: {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the output contains `text` (at most [`LIMIT`]).
    fn wait_for_output(&self, text: &str) {
        let end = Instant::now() + LIMIT;
        while !self.output().contains(text) {
            assert!(
                Instant::now() < end,
                "no {text:?} within {LIMIT:?}: {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.log.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A loopback port nobody listens on right now.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs the operator with `kubeconfig` until it exits, asserting a failure whose output (the
/// one error line) says `why`.
fn assert_fails_saying(kubeconfig: &Path, why: &str) {
    let (st, out) = Operator::spawn(kubeconfig, closed_port()).wait();
    assert!(!st.success(), "{out}");
    assert!(out.contains(why), "want {why:?} in: {out}");
}

#[test]
fn unreachable_api_server_is_reported() {
    let config = kubeconfig(closed_port());
    assert_fails_saying(&config, "cannot reach the Kubernetes API server");
}

#[test]
fn missing_crds_are_reported() {
    let api = ApiServer::start(Cluster::NoCrds);
    let why = "CRD gateways.gateway.networking.k8s.io is not installed: install the Gateway API";
    assert_fails_saying(&kubeconfig(api.port), why);
    assert!(api.saw(&["GET /version"]));
}

#[test]
fn missing_client_configuration_is_reported() {
    let missing = kubeconfig(closed_port()).with_file_name("absent");
    let why = "cannot load a Kubernetes client configuration (kubeconfig or in-cluster)";
    assert_fails_saying(&missing, why);
}

#[test]
fn starts_against_a_kubeconfig_and_stops_on_sigterm() {
    let api = ApiServer::start(Cluster::Empty);
    let cds = closed_port();
    let mut op = Operator::spawn(&kubeconfig(api.port), cds);
    op.wait_for_output("preflight ok");
    let end = Instant::now() + LIMIT;
    let watch = [
        "GET /apis/gateway.networking.k8s.io/v1/gateways?",
        "watch=true",
    ];
    let lease = ["POST /apis/coordination.k8s.io/v1/namespaces/stunner-system/leases"];
    while !(api.saw(&watch) && api.saw(&lease)) {
        assert!(
            Instant::now() < end,
            "reflectors or election did not start: {:?}\n{}",
            api.seen.lock().map(|l| l.clone()),
            op.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // caches listed, Lease taken: the leader renders (an empty cluster) and applies nothing
    op.wait_for_output("render applied");
    assert!(
        TcpStream::connect(("127.0.0.1", cds)).is_ok(),
        "CDS listening"
    );
    let pid = op.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let (st, out) = op.wait();
    assert!(st.success(), "clean exit on SIGTERM: {st:?}\n{out}");
    assert!(out.contains("shutting down"), "{out}");
}

#[test]
fn stops_on_sigterm_while_the_api_server_never_answers() {
    // Accepts connections (the kernel's backlog) and never reads or answers them.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let mut op = Operator::spawn(&kubeconfig(port), closed_port());
    op.wait_for_output("CDS server listening");
    std::thread::sleep(Duration::from_millis(300)); // inside the preflight's GET /version
    let pid = op.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let (st, out) = op.wait();
    assert!(st.success(), "clean exit on SIGTERM: {st:?}\n{out}");
    assert!(!out.contains("preflight ok"), "{out}");
    drop(silent);
}
