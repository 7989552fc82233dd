//! A minimal HTTP/1.0 GET over loopback, enough to read stunnerd's `/ready` and `/status` and the
//! scaler's `/steering` without pulling an HTTP client into the load generator.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Error, Result};

/// Largest response body read.
const MAX_RESPONSE: u64 = 1 << 20;

/// `GET path` on `addr`; returns the status code and the body (2 s timeout).
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let fut = async {
        let mut stream = TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE).read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .map_err(|_| {
            Error::io(
                format_args!("GET http://{addr}{path}"),
                std::io::ErrorKind::TimedOut.into(),
            )
        })?
        .map_err(|e| Error::io(format_args!("GET http://{addr}{path}"), e))?;
    parse_response(&raw)
        .ok_or_else(|| Error::Turn(format!("GET http://{addr}{path}: malformed HTTP response")))
}

/// Splits a raw HTTP response into status code and body.
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\nno";
        assert_eq!(parse_response(raw), Some((503, "no".to_string())));
        assert_eq!(parse_response(b"garbage"), None);
        assert_eq!(parse_response(b"HTTP/1.1 abc\r\n\r\n"), None);
    }
}
