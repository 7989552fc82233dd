//! Environment expansion of config strings, as upstream's `os.ExpandEnv`: `$VAR` and `${VAR}` are
//! replaced by the variable's value (empty when unset). Unlike upstream, expansion is applied to
//! parsed string values rather than to the raw text, so a variable can never inject YAML structure;
//! numeric fields accept numeric strings, so `port: $STUNNER_PORT` still works. Values under
//! `auth.credentials` are never expanded (a password may contain `$`).

use serde_json::Value;

/// Default listener port that `STUNNER_PORT` falls back to, as upstream.
const DEFAULT_PORT: &str = "3478";

/// Looks a variable up in the process environment. `STUNNER_PORT`, when unset or not numeric,
/// falls back to `STUNNER_PUBLIC_PORT` and then to 3478, exactly as upstream stunnerd does.
pub fn os_lookup(name: &str) -> Option<String> {
    let value = std::env::var(name).ok();
    if name != "STUNNER_PORT" || value.as_deref().is_some_and(is_port_number) {
        return value;
    }
    let public = std::env::var("STUNNER_PUBLIC_PORT")
        .ok()
        .filter(|p| is_port_number(p));
    Some(public.unwrap_or_else(|| DEFAULT_PORT.to_owned()))
}

fn is_port_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Expands `$VAR` and `${VAR}` in `input`. Unset variables expand to the empty string; a `$` not
/// followed by a name (or an unterminated `${`) is kept literally.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    expand_only(input, lookup, &|_| true)
}

/// [`expand`] for the variables `expands` admits only; a reference to any other variable is kept
/// exactly as written (and never looked up).
pub(crate) fn expand_only(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    expands: &dyn Fn(&str) -> bool,
) -> String {
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while let Some(off) = input[i..].find('$') {
        let dollar = i + off;
        out.push_str(&input[i..dollar]);
        let (name, next) = variable_at(input, dollar + 1);
        match name {
            Some(name) if expands(name) => out.push_str(&lookup(name).unwrap_or_default()),
            Some(_) => out.push_str(&input[dollar..next]),
            None => out.push('$'),
        }
        i = next;
    }
    out.push_str(&input[i..]);
    out
}

/// Reads a variable reference starting right after a `$`; returns its name (if any) and the index
/// where scanning resumes.
fn variable_at(input: &str, start: usize) -> (Option<&str>, usize) {
    let rest = &input[start..];
    if let Some(braced) = rest.strip_prefix('{') {
        return match braced.find('}') {
            Some(end) if end > 0 && braced[..end].bytes().all(is_name_byte) => {
                (Some(&braced[..end]), start + end + 2)
            }
            _ => (None, start),
        };
    }
    let len = rest.bytes().take_while(|b| is_name_byte(*b)).count();
    if len == 0 {
        (None, start)
    } else {
        (Some(&rest[..len]), start + len)
    }
}

/// A variable lookup and which variables it may expand (the others stay as written).
pub(crate) struct Env<'a> {
    /// The value of a variable (`None`: unset, expands to nothing).
    pub(crate) lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Whether a variable is expanded at all.
    pub(crate) expands: &'a dyn Fn(&str) -> bool,
}

/// Expands every string in a (key-lowercased) config tree except under `auth.credentials`.
pub(crate) fn expand_tree(root: &mut Value, lookup: &Env<'_>) {
    let Value::Object(top) = root else { return };
    for (key, value) in top.iter_mut() {
        if key == "auth" {
            if let Value::Object(auth) = value {
                auth.iter_mut()
                    .filter(|(k, _)| *k != "credentials")
                    .for_each(|(_, v)| expand_value(v, lookup));
            }
        } else {
            expand_value(value, lookup);
        }
    }
}

fn expand_value(value: &mut Value, lookup: &Env<'_>) {
    match value {
        Value::String(s) if s.contains('$') => *s = expand_only(s, lookup.lookup, lookup.expands),
        Value::Array(items) => items.iter_mut().for_each(|v| expand_value(v, lookup)),
        Value::Object(map) => map.values_mut().for_each(|v| expand_value(v, lookup)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms_and_keeps_stray_dollars() {
        assert_eq!(expand("$A-${A}", &env), "alpha-alpha");
        assert_eq!(expand("x$UNSET.y", &env), "x.y");
        assert_eq!(expand("cost $ 5 and ${", &env), "cost $ 5 and ${");
        assert_eq!(expand("${bad-name}", &env), "${bad-name}");
        assert_eq!(expand("é$A€", &env), "éalpha€");
        assert_eq!(expand("$", &env), "$");
        assert_eq!(expand("$EMPTY", &env), "");
    }

    #[test]
    fn references_outside_the_admitted_set_stay_as_written() {
        let only_a = |n: &str| n == "A";
        assert_eq!(
            expand_only("$A ${B} $B-x $UNSET", &env, &only_a),
            "alpha ${B} $B-x $UNSET"
        );
        let looked_up = std::cell::RefCell::new(Vec::new());
        let spy = |n: &str| {
            looked_up.borrow_mut().push(n.to_owned());
            env(n)
        };
        let _ = expand_only("$A $SECRET ${SECRET}", &spy, &only_a);
        assert_eq!(*looked_up.borrow(), ["A"], "nothing else is read");
    }

    #[test]
    fn credentials_are_not_expanded() {
        let mut v = serde_json::json!({
            "auth": {"realm": "$A", "credentials": {"password": "$A"}},
            "listeners": [{"address": "${A}"}]
        });
        expand_tree(
            &mut v,
            &Env {
                lookup: &env,
                expands: &|_| true,
            },
        );
        assert_eq!(v["auth"]["realm"], "alpha");
        assert_eq!(v["auth"]["credentials"]["password"], "$A");
        assert_eq!(v["listeners"][0]["address"], "alpha");
    }
}
