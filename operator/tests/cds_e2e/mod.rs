//! Helpers of the CDS end-to-end test: a real stunnerd process watching a CDS server (killed on
//! drop, its log printed when the test fails), polled over `testkit`'s HTTP client. Every wait is
//! bounded.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use proto::admin::Status;
use testkit::http::get;

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
