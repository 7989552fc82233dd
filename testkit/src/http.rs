//! A one-shot HTTP/1.1 client for the health, admin and metrics servers under test: one fresh
//! connection per request (`Connection: close`), the whole answer read to EOF. Not a general
//! HTTP client: no chunked decoding, no redirects, no TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Bound on connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on each read of the answer.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET path` on 127.0.0.1:`port`: (status, body); (0, "") when the server is unreachable or
/// does not answer in time.
pub fn get(port: u16, path: &str) -> (u16, String) {
    request(SocketAddr::from(([127, 0, 0, 1], port)), "GET", path, &[])
}

/// `method path` with the extra `headers` and an empty body on `addr`: (status, body); (0, "")
/// when the server is unreachable or does not answer in time.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(READ_TIMEOUT));
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    parse(&resp)
}

/// (status, body) of a raw HTTP/1.1 answer; status 0 when the status line is unreadable.
fn parse(resp: &str) -> (u16, String) {
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one connection with `answer`; returns its port and the request it read.
    fn serve_once(answer: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut req = Vec::new();
            let mut buf = [0u8; 512];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).expect("read");
                assert_ne!(n, 0, "request cut short");
                req.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer.as_bytes()).expect("write");
            String::from_utf8(req).expect("utf-8")
        });
        (port, t)
    }

    #[test]
    fn get_returns_status_and_body() {
        let (port, t) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready");
        assert_eq!(get(port, "/ready"), (200, "ready".to_owned()));
        assert!(
            t.join()
                .expect("server")
                .starts_with("GET /ready HTTP/1.1\r\n")
        );
    }

    #[test]
    fn request_sends_method_and_headers() {
        let (port, t) = serve_once("HTTP/1.1 401 Unauthorized\r\n\r\n");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let got = request(addr, "POST", "/drain", &[("Authorization", "Bearer x")]);
        assert_eq!(got, (401, String::new()));
        let req = t.join().expect("server");
        assert!(req.starts_with("POST /drain HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nAuthorization: Bearer x\r\n"), "{req}");
    }

    #[test]
    fn unreachable_server_is_status_zero() {
        let port = crate::free_port();
        assert_eq!(get(port, "/"), (0, String::new()));
    }

    #[test]
    fn garbage_answer_is_status_zero() {
        assert_eq!(parse("nonsense"), (0, String::new()));
    }
}
