//! Access rule of the state-changing admin endpoints: a bearer token (compared in constant time) is
//! required; without a configured token they are off. Loopback is not trusted: behind a sidecar
//! proxy or `kubectl port-forward` every caller is loopback. The probes (`/live`, `/ready`) and
//! `/status` are read-only and open.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode, header};

/// Why a caller may not use a drain endpoint: the status and the message to answer.
pub(super) type Denied = (StatusCode, String);

/// Decides whether `peer` sending `headers` may call a drain endpoint.
pub(super) fn authorize(
    peer: SocketAddr,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), Denied> {
    let Some(expected) = token else {
        let msg = format!(
            "state-changing admin endpoints are off (caller {}): start stunnerd with --admin-token \
             (STUNNER_ADMIN_TOKEN) and send 'Authorization: Bearer <token>'",
            peer.ip()
        );
        return Err((StatusCode::FORBIDDEN, msg));
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "missing 'Authorization: Bearer <token>' header".into(),
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err((StatusCode::FORBIDDEN, "invalid admin token".into())),
        None => Err((
            StatusCode::UNAUTHORIZED,
            "Authorization header must be 'Bearer <token>'".into(),
        )),
    }
}

/// Equality whose running time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn nobody_without_token_not_even_loopback() {
        let none = HeaderMap::new();
        for p in [
            "127.0.0.1:5",
            "[::1]:5",
            "[::ffff:127.0.0.1]:5",
            "10.0.0.9:5",
        ] {
            let err = authorize(peer(p), &none, None).unwrap_err();
            assert_eq!(err.0, StatusCode::FORBIDDEN, "{p}");
            assert!(err.1.contains("--admin-token"));
        }
    }

    #[test]
    fn token_required_from_everyone_when_configured() {
        let t = Some("s3cret");
        let code = |p: &str, h: &HeaderMap| authorize(peer(p), h, t).err().map(|e| e.0);
        assert_eq!(
            code("127.0.0.1:1", &HeaderMap::new()),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            code("127.0.0.1:1", &bearer("Basic abc")),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            code("10.0.0.9:1", &bearer("Bearer wrong")),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            code("10.0.0.9:1", &bearer("Bearer s3cre")),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(code("10.0.0.9:1", &bearer("Bearer s3cret")), None);
    }
}
