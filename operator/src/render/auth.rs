//! `auth`: realm and credentials from the GatewayConfig, or from the Secret its `authRef` names
//! (which then overrides every inline credential; sources are never mixed).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use proto::config::{AuthConfig, AuthType, DEFAULT_REALM};

use crate::crd::{GatewayConfig, SecretObjectReference};
use crate::store::{ObjectKey, Snapshot};

/// Renders the auth section; `Err` says why the credentials are unusable.
pub(crate) fn render(snap: &Snapshot, conf: &GatewayConfig) -> Result<AuthConfig, String> {
    let realm = conf
        .spec
        .realm
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_REALM.into());
    let (auth_type, credentials) = match &conf.spec.auth_ref {
        Some(r) => from_secret(
            snap,
            r,
            conf.metadata.namespace.as_deref().unwrap_or_default(),
        )?,
        None => inline(conf)?,
    };
    Ok(AuthConfig {
        auth_type,
        realm,
        credentials,
    })
}

fn inline(conf: &GatewayConfig) -> Result<(AuthType, BTreeMap<String, String>), String> {
    let raw = conf.spec.auth_type.as_deref().unwrap_or("plaintext");
    let t = AuthType::parse(raw).ok_or_else(|| format!("invalid authType {raw:?}"))?;
    let s = &conf.spec;
    credentials(
        t,
        s.username.as_deref(),
        s.password.as_deref(),
        s.shared_secret.as_deref(),
    )
}

fn from_secret(
    snap: &Snapshot,
    r: &SecretObjectReference,
    default_ns: &str,
) -> Result<(AuthType, BTreeMap<String, String>), String> {
    if !matches!(r.group.as_deref(), None | Some("" | "v1"))
        || !matches!(r.kind.as_deref(), None | Some("Secret"))
    {
        return Err(format!(
            "authRef must point to a core Secret, got {:?}/{:?}",
            r.group, r.kind
        ));
    }
    let key = ObjectKey::new(r.namespace.as_deref().unwrap_or(default_ns), &r.name);
    let secret = snap
        .secrets
        .get(&key)
        .ok_or_else(|| format!("authRef Secret {key} not found"))?;
    let get = |k: &str| secret_value(secret, k);
    // As upstream (`getAuthType`): a Secret without `type` means the default, static.
    let raw = get("type").unwrap_or_else(|| "static".to_owned());
    let t = AuthType::parse(&raw)
        .ok_or_else(|| format!("invalid auth type {raw:?} in Secret {key}"))?;
    let shared = get("secret").or_else(|| get("sharedSecret"));
    credentials(
        t,
        get("username").as_deref(),
        get("password").as_deref(),
        shared.as_deref(),
    )
}

fn credentials(
    t: AuthType,
    username: Option<&str>,
    password: Option<&str>,
    secret: Option<&str>,
) -> Result<(AuthType, BTreeMap<String, String>), String> {
    let mut creds = BTreeMap::new();
    match t {
        AuthType::Static => {
            let (Some(u), Some(p)) = (
                username.filter(|u| !u.is_empty()),
                password.filter(|p| !p.is_empty()),
            ) else {
                return Err("static authentication requires a username and a password".into());
            };
            creds.insert("username".into(), u.into());
            creds.insert("password".into(), p.into());
        }
        AuthType::Ephemeral => {
            let Some(s) = secret.filter(|s| !s.is_empty()) else {
                return Err("ephemeral authentication requires a shared secret".into());
            };
            creds.insert("secret".into(), s.into());
        }
        AuthType::None => {}
    }
    Ok((t, creds))
}

/// A Secret field from `data` (decoded bytes) or `stringData`, trimmed of a trailing newline.
pub(crate) fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    let value = from_data.or_else(|| {
        secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned()
    })?;
    Some(value.trim_end_matches(['\n', '\r']).to_owned())
}
