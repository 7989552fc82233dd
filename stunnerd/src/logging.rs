//! Upstream's log-level syntax (`all:INFO,turn:DEBUG`) translated into a `tracing` filter.

/// Translates `all:LEVEL,scope:LEVEL,...` into an `EnvFilter` directive string. `all` sets the
/// default; known upstream scopes map to our modules, other scopes to `stunnerd::<scope>`.
/// A plain tracing directive (no `:`) is passed through. The `dtls` crate's per-handshake warnings
/// (one per unknown ClientHello extension: a log flood any client can trigger) are kept at ERROR
/// unless the spec names `dtls` itself.
pub fn filter_directives(spec: &str) -> String {
    let mut out = Vec::new();
    if !spec.to_ascii_lowercase().contains("dtls") {
        out.push("dtls=error".to_owned());
    }
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((scope, level)) = part.rsplit_once(':') else {
            out.push(part.to_ascii_lowercase());
            continue;
        };
        let level = match level.trim().to_ascii_lowercase().as_str() {
            "disable" | "off" => "off".to_owned(),
            "warning" => "warn".to_owned(),
            other => other.to_owned(),
        };
        let target = match scope.trim().to_ascii_lowercase().as_str() {
            "all" | "*" => None,
            "turn" | "stun" => Some("stunnerd::engine".to_owned()),
            "stunner" | "stunnerd" => Some("stunnerd".to_owned()),
            "config" | "cds" | "cds-client" => Some("stunnerd::config_source".to_owned()),
            "admin" | "health" => Some("stunnerd::admin".to_owned()),
            "dtls" => Some("dtls".to_owned()),
            other => Some(format!("stunnerd::{}", other.replace('-', "_"))),
        };
        out.push(match target {
            Some(t) => format!("{t}={level}"),
            None => level,
        });
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::filter_directives;

    #[test]
    fn upstream_syntax() {
        assert_eq!(filter_directives("all:INFO"), "dtls=error,info");
        assert_eq!(
            filter_directives("all:WARN,turn:DEBUG"),
            "dtls=error,warn,stunnerd::engine=debug"
        );
        assert_eq!(filter_directives("all:DISABLE"), "dtls=error,off");
        assert_eq!(filter_directives("debug"), "dtls=error,debug");
        assert_eq!(filter_directives("all:INFO,dtls:WARN"), "info,dtls=warn");
    }
}
