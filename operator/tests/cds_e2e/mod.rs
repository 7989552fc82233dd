//! Helpers of the CDS end-to-end test: free loopback ports, a real stunnerd process watching a
//! CDS server (killed on drop, its log printed when the test fails), and a tiny HTTP/1.1 client
//! for the health server. Every wait is bounded.

pub(crate) mod turn;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use proto::admin::Status;

/// A loopback port free for both UDP and TCP right now (bind, then release).
pub(crate) fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The stunnerd binary next to this test executable (`target/<profile>/stunnerd`).
fn stunnerd_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(format!("stunnerd{}", std::env::consts::EXE_SUFFIX)))
        .expect("target dir");
    assert!(
        bin.is_file(),
        "{} missing: build it first: cargo build -p stunnerd",
        bin.display()
    );
    bin
}

/// A running stunnerd watching `cds` as Gateway `id`; killed on drop.
pub(crate) struct Stunnerd {
    child: Child,
    log: PathBuf,
    health: u16,
}

impl Stunnerd {
    /// Spawns `stunnerd -w -c http://<cds> --id <id>` with pod IP `STUNNER_ADDR=127.0.0.1` (the
    /// rendered listeners bind `$STUNNER_ADDR`); its health server comes from the config at
    /// `health`.
    pub(crate) fn spawn(cds: SocketAddr, id: &str, health: u16) -> Self {
        let log = std::env::temp_dir().join(format!("cds-stunnerd-{}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(stunnerd_bin())
            .args(["-w", "-c", &format!("http://{cds}"), "--id", id])
            .args(["-l", "all:WARN"])
            .env("NO_COLOR", "1")
            .env("STUNNER_ADDR", "127.0.0.1")
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn stunnerd");
        Self { child, log, health }
    }

    /// Waits (at most `limit`) until `/ready` answers 200.
    pub(crate) fn wait_ready(&self, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if get(self.health, "/ready").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("stunnerd not ready within {limit:?}");
    }

    /// The current `/status`, if the health server answers with one.
    pub(crate) fn status(&self) -> Option<Status> {
        let (code, body) = get(self.health, "/status");
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }
}

impl Drop for Stunnerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("stunnerd log:\n{text}");
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `GET path` on 127.0.0.1:`port` over a fresh connection: (status, body); (0, "") when the
/// server is unreachable or does not answer in time.
pub(crate) fn get(port: u16, path: &str) -> (u16, String) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut resp = String::new();
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )?;
        s.read_to_string(&mut resp)
    });
    let code = resp.split(' ').nth(1).and_then(|c| c.parse().ok());
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (code.unwrap_or(0), body.to_owned())
}
