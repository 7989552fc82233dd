//! Decoding a parsed YAML/JSON tree into the typed config, tracking the field path for errors.
//! Lenient like upstream's Go decoder (unknown keys ignored, `null` = absent) and a little more:
//! scalars are accepted for string fields and numeric strings for integer fields, because
//! environment expansion turns `port: $STUNNER_PORT` into a string.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde_json::{Map, Value};

use super::{
    AdminConfig, AuthConfig, AuthType, ClusterConfig, ClusterProtocol, ClusterType, ConfigError,
    ListenerConfig, ListenerProtocol, Result, StunnerConfig,
};

/// Lowercases every object key recursively (keys are matched case-insensitively, as Go's
/// encoding/json does). On a clash after lowercasing the later key wins, as in Go.
pub(crate) fn lowercase_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.to_lowercase(), lowercase_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

/// Decodes a key-lowercased tree.
pub(crate) fn decode_config(root: Value) -> Result<StunnerConfig> {
    let empty = Map::new();
    let top = Fields::new(object(&root, "", &empty)?, "");
    Ok(StunnerConfig {
        version: top.string("version")?,
        admin: decode_admin(&top.child("admin")?)?,
        auth: decode_auth(&top.child("auth")?)?,
        listeners: top.list("listeners", decode_listener)?,
        clusters: top.list("clusters", decode_cluster)?,
    })
}

fn decode_admin(f: &Fields<'_>) -> Result<AdminConfig> {
    Ok(AdminConfig {
        name: f.string("name")?,
        loglevel: f.string("loglevel")?,
        metrics_endpoint: f.string("metrics_endpoint")?,
        healthcheck_endpoint: f.opt_string("healthcheck_endpoint")?,
        // Upstream clamps a negative quota to 0 (unlimited).
        user_quota: f
            .int(
                "user_quota",
                i64::MIN..=i64::from(u32::MAX),
                "must be at most 4294967295",
            )?
            .max(0) as u32,
    })
}

fn decode_auth(f: &Fields<'_>) -> Result<AuthConfig> {
    Ok(AuthConfig {
        auth_type: f.choice("type", AuthType::parse, AuthType::unknown)?,
        realm: f.string("realm")?,
        credentials: f.string_map("credentials")?,
    })
}

fn decode_listener(f: &Fields<'_>) -> Result<ListenerConfig> {
    Ok(ListenerConfig {
        name: f.string("name")?,
        protocol: f.choice(
            "protocol",
            ListenerProtocol::parse,
            ListenerProtocol::unknown,
        )?,
        public_address: f.string("public_address")?,
        public_port: f.int("public_port", 0..=65535, "must be 0-65535")? as u16,
        address: f.string("address")?,
        port: f.int("port", 0..=65535, "must be 1-65535")? as u16,
        cert: f.string("cert")?,
        key: f.string("key")?,
        routes: f.strings("routes")?,
    })
}

fn decode_cluster(f: &Fields<'_>) -> Result<ClusterConfig> {
    Ok(ClusterConfig {
        name: f.string("name")?,
        cluster_type: f.choice("type", ClusterType::parse, ClusterType::unknown)?,
        protocol: f.choice("protocol", ClusterProtocol::parse, ClusterProtocol::unknown)?,
        endpoints: f.strings("endpoints")?,
    })
}

fn object<'a>(
    value: &'a Value,
    path: &str,
    empty: &'a Map<String, Value>,
) -> Result<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(empty),
        _ => Err(ConfigError::field(display_path(path), "must be an object")),
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

/// Scalar to string: strings verbatim, numbers and booleans in their canonical text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An object being decoded, with its path for error messages.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    empty: Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>, path: &str) -> Self {
        Self {
            map,
            path: path.to_owned(),
            empty: Map::new(),
        }
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`, with `null` treated as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn child(&self, key: &str) -> Result<Fields<'_>> {
        let path = self.at(key);
        let map = match self.get(key) {
            Some(v) => object(v, &path, &self.empty)?,
            None => &self.empty,
        };
        Ok(Fields::new(map, &path))
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .map(|v| scalar(v).ok_or_else(|| ConfigError::field(self.at(key), "must be a string")))
            .transpose()
    }

    fn string(&self, key: &str) -> Result<String> {
        Ok(self.opt_string(key)?.unwrap_or_default())
    }

    /// An integer field in `range`; absent or empty = 0.
    fn int(&self, key: &str, range: RangeInclusive<i64>, msg: &str) -> Result<i64> {
        let Some(v) = self.get(key) else { return Ok(0) };
        let n = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) if s.trim().is_empty() => Some(0),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let n = n.ok_or_else(|| ConfigError::field(self.at(key), "must be an integer"))?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::field(self.at(key), msg))
        }
    }

    /// An enum field; absent or empty = the type's default.
    fn choice<T: Default>(
        &self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        unknown: fn(&str) -> String,
    ) -> Result<T> {
        match self.string(key)? {
            s if s.trim().is_empty() => Ok(T::default()),
            s => parse(&s).ok_or_else(|| ConfigError::field(self.at(key), unknown(&s))),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = v else {
            return Err(ConfigError::field(
                self.at(key),
                "must be a list of strings",
            ));
        };
        let at = |i| format!("{}[{i}]", self.at(key));
        items
            .iter()
            .enumerate()
            .map(|(i, v)| scalar(v).ok_or_else(|| ConfigError::field(at(i), "must be a string")))
            .collect()
    }

    fn string_map(&self, key: &str) -> Result<BTreeMap<String, String>> {
        let path = self.at(key);
        let Some(v) = self.get(key) else {
            return Ok(BTreeMap::new());
        };
        let map = object(v, &path, &self.empty)?;
        map.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match scalar(v) {
                Some(s) => Ok((k.clone(), s)),
                None => Err(ConfigError::field(
                    format!("{path}.{k}"),
                    "must be a string",
                )),
            })
            .collect()
    }

    fn list<T>(&self, key: &str, decode: fn(&Fields<'_>) -> Result<T>) -> Result<Vec<T>> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = v else {
            return Err(ConfigError::field(self.at(key), "must be a list"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{}[{i}]", self.at(key));
                let empty = Map::new();
                decode(&Fields::new(object(item, &path, &empty)?, &path))
            })
            .collect()
    }
}
