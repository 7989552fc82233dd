//! The query string of `GET /` and `GET /ice` (upstream's `api/stunner.yaml` parameters) turned
//! into an [`issue::Request`](crate::issue::Request); every refusal names the parameter.
//!
//! | parameter            | default  | rule                                                   |
//! |----------------------|----------|--------------------------------------------------------|
//! | `service`            | `turn`   | must be `turn`; required on `/` (as the spec has it)   |
//! | `username`           | empty    | any string                                             |
//! | `ttl`                | 86400    | whole seconds, 1 ..= 10 years                          |
//! | `key`                |          | the API key; checked by the server, not here           |
//! | `namespace`          | all      | non-empty                                              |
//! | `gateway`            | all      | non-empty, needs `namespace`                           |
//! | `listener`           | all      | non-empty, needs `gateway`                             |
//! | `public-addr`        | listener | non-empty; replaces the public address in every URI    |
//! | `iceTransportPolicy` | `all`    | `all`, `public` or `relay` (`/ice` only)               |
//!
//! Unknown parameters are ignored (browsers and proxies add cache-busters).

use proto::auth::{DEFAULT_TTL_SECS, IceTransportPolicy, SERVICE_TURN};

use crate::issue::Request;

/// Longest lifetime accepted: ten years (keeps the expiry far from any overflow).
pub const MAX_TTL_SECS: u64 = 10 * 365 * 86_400;

/// Which endpoint is being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /`: a TURN credential.
    Turn,
    /// `GET /ice`: an ICE configuration.
    Ice,
}

/// A refused query parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query parameter {param:?}: {message}")]
pub struct QueryError {
    /// The parameter at fault.
    pub param: &'static str,
    /// Why, and what is expected.
    pub message: String,
}

fn refuse(param: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        param,
        message: message.into(),
    }
}

/// Parses the decoded query pairs of a request to `endpoint` (the first of repeated keys wins).
pub fn parse(pairs: &[(String, String)], endpoint: Endpoint) -> Result<Request, QueryError> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    match (get("service"), endpoint) {
        (Some(SERVICE_TURN), _) | (None, Endpoint::Ice) => {}
        (None, Endpoint::Turn) => return Err(refuse("service", "required; use service=turn")),
        (Some(other), _) => {
            return Err(refuse(
                "service",
                format!("{other:?} is not supported; use service=turn"),
            ));
        }
    }
    let ttl = match get("ttl") {
        None => DEFAULT_TTL_SECS,
        Some(raw) => parse_ttl(raw)?,
    };
    let namespace = non_empty(get("namespace"), "namespace")?;
    let gateway = non_empty(get("gateway"), "gateway")?;
    let listener = non_empty(get("listener"), "listener")?;
    if gateway.is_some() && namespace.is_none() {
        return Err(refuse("gateway", "needs namespace to be set as well"));
    }
    if listener.is_some() && gateway.is_none() {
        return Err(refuse(
            "listener",
            "needs namespace and gateway to be set as well",
        ));
    }
    let policy = match (get("iceTransportPolicy"), endpoint) {
        (Some(raw), Endpoint::Ice) => IceTransportPolicy::parse(raw).ok_or_else(|| {
            refuse(
                "iceTransportPolicy",
                format!("{raw:?}; expected all, public or relay"),
            )
        })?,
        _ => IceTransportPolicy::default(),
    };
    Ok(Request {
        username: get("username").unwrap_or_default().to_owned(),
        ttl,
        namespace,
        gateway,
        listener,
        public_addr: non_empty(get("public-addr"), "public-addr")?,
        policy,
    })
}

fn parse_ttl(raw: &str) -> Result<u64, QueryError> {
    match raw.parse::<u64>() {
        Ok(t) if (1..=MAX_TTL_SECS).contains(&t) => Ok(t),
        Ok(_) => Err(refuse(
            "ttl",
            format!("{raw} is out of range 1..={MAX_TTL_SECS} seconds"),
        )),
        Err(_) => Err(refuse(
            "ttl",
            format!("{raw:?} is not a whole number of seconds"),
        )),
    }
}

fn non_empty(v: Option<&str>, param: &'static str) -> Result<Option<String>, QueryError> {
    match v {
        Some("") => Err(refuse(param, "must not be empty")),
        v => Ok(v.map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        s.split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn defaults() {
        let r = parse(&q(""), Endpoint::Ice).unwrap();
        assert_eq!(
            (r.ttl, r.username.as_str(), r.policy),
            (86_400, "", IceTransportPolicy::All)
        );
        let r = parse(&q("service=turn&username=u&ttl=5&namespace=n&gateway=g&listener=l&public-addr=1.2.3.4&iceTransportPolicy=relay&cachebust=1"), Endpoint::Ice).unwrap();
        assert_eq!(r.ttl, 5);
        assert_eq!(r.listener.as_deref(), Some("l"));
        assert_eq!(r.public_addr.as_deref(), Some("1.2.3.4"));
        assert_eq!(r.policy, IceTransportPolicy::Relay);
    }

    #[test]
    fn each_refusal_names_its_parameter() {
        for (query, endpoint, param) in [
            ("", Endpoint::Turn, "service"),
            ("service=stun", Endpoint::Ice, "service"),
            ("service=turn&ttl=abc", Endpoint::Turn, "ttl"),
            ("service=turn&ttl=0", Endpoint::Turn, "ttl"),
            ("service=turn&ttl=-5", Endpoint::Turn, "ttl"),
            ("service=turn&ttl=999999999999", Endpoint::Turn, "ttl"),
            ("gateway=g", Endpoint::Ice, "gateway"),
            ("namespace=n&listener=l", Endpoint::Ice, "listener"),
            ("namespace=", Endpoint::Ice, "namespace"),
            ("public-addr=", Endpoint::Ice, "public-addr"),
            (
                "iceTransportPolicy=none",
                Endpoint::Ice,
                "iceTransportPolicy",
            ),
        ] {
            let e = parse(&q(query), endpoint).unwrap_err();
            assert_eq!(e.param, param, "{query}");
            assert!(e.to_string().contains(param), "{e}");
        }
    }
}
