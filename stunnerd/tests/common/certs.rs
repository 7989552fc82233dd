//! TLS test helpers: self-signed certificates from the `openssl` CLI (base64 PEM, as the config
//! wants them), certificate fingerprints as served and as configured, and a uclient verdict that
//! tolerates uclient's own TLS version probing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::{Stunnerd, Uclient, plus, scratch, uclient, uclient_args};

/// A fresh self-signed P-256 certificate and key, both base64 PEM as the config wants them.
pub fn self_signed() -> (String, String) {
    let (cert, key) = (scratch("cert.pem"), scratch("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl CLI");
    assert!(status.success(), "openssl req failed");
    let b64 = |p: &Path| {
        let pem = std::fs::read(p).expect("read pem");
        let _ = std::fs::remove_file(p);
        base64::engine::general_purpose::STANDARD.encode(pem)
    };
    (b64(&cert), b64(&key))
}

/// SHA-256 fingerprint of the certificate served on 127.0.0.1:`port` (via `openssl s_client`).
pub fn served_fingerprint(port: u16) -> String {
    served_fingerprint_with(port, "")
}

/// [`served_fingerprint`] with extra `s_client` flags (e.g. a protocol version).
pub fn served_fingerprint_with(port: u16, flags: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "timeout 5 openssl s_client {flags} -connect 127.0.0.1:{port} </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256"
        ))
        .output()
        .expect("openssl s_client");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn fingerprint_of(cert_b64: &str) -> String {
    let pem = scratch("fp.pem");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cert_b64)
        .expect("b64");
    std::fs::write(&pem, bytes).expect("write");
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&pem)
        .output()
        .expect("openssl x509");
    let _ = std::fs::remove_file(&pem);
    let fp = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(fp.contains("Fingerprint="), "openssl x509: {fp}");
    fp
}

/// Zero loss and no error but uclient's own TLS version probing: it picks a random one of its
/// SSLv23/TLSv1/TLSv1.1/TLSv1.2 (DTLSv1/DTLSv1.2) contexts per connection and retries when the server (TLS 1.2 and 1.3
/// only) refuses TLSv1 or TLSv1.1.
pub fn assert_clean_tls(run: &Uclient, what: &str) {
    assert_eq!(run.lost, Some(0), "{what}: lost packets\n{}", run.output);
    let errors = run
        .output
        .lines()
        .filter(|l| {
            l.contains("error")
                && !l.contains("alert handshake failure")
                && !l.contains("alert protocol version")
        })
        .count();
    assert_eq!(errors, 0, "{what}: errors\n{}", run.output);
}

/// Certificate rotation under load: while a uclient relays through the UDP listener of `sd` (a `-w`
/// stunnerd) to the echo peer on `peer_port`, the config file is rewritten by `config_with(cert,
/// key)` with a fresh certificate; `served()` (the fingerprint a new client sees) must show it
/// within 10 s, the UDP run must lose nothing, and only the listener named `rotated` restarts.
pub fn rotate_under_udp_load(
    sd: &Stunnerd,
    peer_port: u16,
    config_with: impl Fn(&str, &str) -> String,
    served: impl Fn() -> String,
    rotated: &str,
) {
    let turn = sd.ports.turn;
    // A live UDP allocation relaying for ~6 s across the rotation.
    let live = std::thread::spawn(move || {
        let args = plus(
            uclient_args(peer_port, 300),
            &["-c", "-m", "1", "-l", "120"],
        );
        uclient(turn, &args, Duration::from_secs(40))
    });
    std::thread::sleep(Duration::from_secs(2));
    let (cert, key) = self_signed();
    std::fs::write(&sd.config, config_with(&cert, &key)).expect("rewrite config");
    let want = fingerprint_of(&cert);
    let deadline = Instant::now() + Duration::from_secs(10);
    while served() != want {
        assert!(Instant::now() < deadline, "new cert not served");
        std::thread::sleep(Duration::from_millis(200));
    }
    let run = live.join().expect("uclient thread");
    assert_clean_tls(&run, "udp across rotation");
    assert!(
        run.output.contains("Total lost packets 0"),
        "{}",
        run.output
    );
    let log = sd.log_text();
    let started = |name: &str| {
        log.matches(&format!("listener started listener={name} "))
            .count()
    };
    assert_eq!(started("udp"), 1, "the UDP listener was not restarted");
    assert_eq!(started(rotated), 2, "{rotated} restarted once");
}
