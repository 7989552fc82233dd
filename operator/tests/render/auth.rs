//! Auth: inline static/ephemeral credentials with aliases, realm, authRef Secrets.

use crate::fixtures::*;
use proto::config::AuthType;

/// Expected credentials, sorted by key.
type Creds = &'static [(&'static str, &'static str)];

fn conf(spec: &str) -> String {
    format!(
        "apiVersion: stunner.l7mp.io/v1\nkind: GatewayConfig\nmetadata: {{ name: stunner-gatewayconfig, namespace: stunner }}\nspec: {spec}\n"
    )
}

fn secret(ns: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: auth-secret, namespace: {ns} }}\ntype: Opaque\nstringData: {data}\n"
    )
}

/// The rendered auth type and credentials (sorted by key).
fn auth_of(r: &operator::render::Rendered) -> (AuthType, Vec<(String, String)>) {
    let a = &config(r, "stunner/udp-gateway").auth;
    let creds = a
        .credentials
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (a.auth_type, creds)
}

fn pairs(creds: Creds) -> Vec<(String, String)> {
    creds
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

const STATIC_UP: Creds = &[("password", "p"), ("username", "u")];
const EPHEMERAL: Creds = &[("secret", "s3cr3t")];

/// Inline GatewayConfig auth `spec` renders as type `t` with `creds`.
fn inline_auth(spec: &str, t: AuthType, creds: Creds) {
    let r = run(&base_with(&conf(spec)));
    assert_eq!(auth_of(&r), (t, pairs(creds)));
}

cases! { inline_auth {
    inline_default_type_is_static: ("{ userName: u, password: p }", AuthType::Static, STATIC_UP),
    inline_plaintext_alias: ("{ authType: plaintext, userName: u, password: p }", AuthType::Static, STATIC_UP),
    inline_static: ("{ authType: static, userName: u, password: p }", AuthType::Static, STATIC_UP),
    inline_longterm_alias: ("{ authType: longterm, sharedSecret: s3cr3t }", AuthType::Ephemeral, EPHEMERAL),
    inline_ephemeral: ("{ authType: ephemeral, sharedSecret: s3cr3t }", AuthType::Ephemeral, EPHEMERAL),
    inline_timewindowed_alias: ("{ authType: timewindowed, sharedSecret: s3cr3t }", AuthType::Ephemeral, EPHEMERAL),
    inline_ephemeral_ignores_user_password: (
        "{ authType: ephemeral, sharedSecret: s3cr3t, userName: ignored, password: ignored }",
        AuthType::Ephemeral, EPHEMERAL),
}}

/// Inline auth `spec` is invalid: no config, Gateway accepted but not programmed, Service kept.
fn invalid_inline_auth(spec: &str) {
    let r = run(&base_with(&conf(spec)));
    assert!(r.configs.is_empty());
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        no("Invalid")
    );
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Accepted"),
        ok("Accepted")
    );
    assert_eq!(r.services.len(), 1, "Service kept");
}

cases! { invalid_inline_auth {
    static_without_password: ("{ authType: plaintext, userName: u }"),
    static_without_username: ("{ authType: plaintext, password: p }"),
    static_without_credentials: ("{ authType: plaintext }"),
    ephemeral_without_secret: ("{ authType: longterm }"),
    ephemeral_with_only_user_password: ("{ authType: longterm, userName: u, password: p }"),
    unknown_auth_type: ("{ authType: kerberos, userName: u, password: p }"),
    static_with_empty_username: ("{ authType: static, userName: '', password: p }"),
}}

fn realm(spec: &str, want: &str) {
    let r = run(&base_with(&conf(spec)));
    assert_eq!(config(&r, "stunner/udp-gateway").auth.realm, want);
}

cases! { realm {
    realm_default: ("{ userName: u, password: p }", "stunner.l7mp.io"),
    realm_custom: ("{ realm: example.com, userName: u, password: p }", "example.com"),
    realm_empty_defaults: ("{ realm: '', userName: u, password: p }", "stunner.l7mp.io"),
}}

const SECRET_UP: Creds = &[("password", "sp"), ("username", "su")];
const SECRET_SHH: Creds = &[("secret", "shh")];

/// `authRef: reference` to a Secret in `ns` holding `data` wins over inline credentials.
fn auth_ref(reference: &str, ns: &str, data: &str, t: AuthType, creds: Creds) {
    let spec = format!(
        "{{ authType: plaintext, userName: inline, password: inline, authRef: {reference} }}"
    );
    let r = run(&base_with(&format!(
        "{}---\n{}",
        conf(&spec),
        secret(ns, data)
    )));
    assert_eq!(auth_of(&r), (t, pairs(creds)));
}

cases! { auth_ref {
    auth_ref_static: ("{ name: auth-secret }", "stunner",
        "{ type: static, username: su, password: sp }", AuthType::Static, SECRET_UP),
    auth_ref_plaintext_with_namespace: ("{ name: auth-secret, namespace: stunner }", "stunner",
        "{ type: plaintext, username: su, password: sp }", AuthType::Static, SECRET_UP),
    auth_ref_other_namespace: ("{ name: auth-secret, namespace: other }", "other",
        "{ type: static, username: su, password: sp }", AuthType::Static, SECRET_UP),
    auth_ref_explicit_core_secret_ephemeral: ("{ name: auth-secret, kind: Secret, group: '' }", "stunner",
        "{ type: ephemeral, secret: shh }", AuthType::Ephemeral, SECRET_SHH),
    auth_ref_longterm_shared_secret_key: ("{ name: auth-secret }", "stunner",
        "{ type: longterm, sharedSecret: shh }", AuthType::Ephemeral, SECRET_SHH),
    auth_ref_group_v1_timewindowed: ("{ name: auth-secret, group: v1 }", "stunner",
        "{ type: timewindowed, secret: shh }", AuthType::Ephemeral, SECRET_SHH),
    auth_ref_values_trimmed: ("{ name: auth-secret }", "stunner",
        "{ type: \"static\\n\", username: \"su\\n\", password: sp }", AuthType::Static, SECRET_UP),
    // upstream `auth_render.go` `getAuthType`: no `type` key means the default, static
    auth_ref_secret_without_type_is_static: ("{ name: auth-secret }", "stunner",
        "{ username: su, password: sp }", AuthType::Static, SECRET_UP),
}}

#[test]
fn auth_ref_binary_data_decoded() {
    let s = base_with(&format!(
        "{}---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: auth-secret, namespace: stunner }}\ndata: {{ type: c3RhdGlj, username: dXNlcg==, password: cGFzcw== }}\n",
        conf("{ authRef: { name: auth-secret } }")
    ));
    let r = run(&s);
    let a = &config(&r, "stunner/udp-gateway").auth;
    assert_eq!(
        (a.credential("username"), a.credential("password")),
        (Some("user"), Some("pass"))
    );
}

/// An unusable authRef (`reference` to a Secret in `stunner` holding `data`) invalidates the
/// Gateway instead of falling back to the inline credentials.
fn invalid_auth_ref(reference: &str, data: &str) {
    let spec = format!("{{ userName: inline, password: inline, authRef: {reference} }}");
    let r = run(&base_with(&format!(
        "{}---\n{}",
        conf(&spec),
        secret("stunner", data)
    )));
    assert!(r.configs.is_empty(), "inline credentials must not be used");
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        no("Invalid")
    );
}

const UP: &str = "{ type: static, username: u, password: p }";

cases! { invalid_auth_ref {
    auth_ref_missing_secret: ("{ name: missing }", UP),
    auth_ref_to_configmap: ("{ name: auth-secret, kind: ConfigMap }", UP),
    auth_ref_foreign_group: ("{ name: auth-secret, group: example.com }", UP),
    auth_ref_static_without_password: ("{ name: auth-secret }", "{ type: static, username: u }"),
    auth_ref_ephemeral_without_secret: ("{ name: auth-secret }", "{ type: ephemeral, username: u, password: p }"),
    auth_ref_unknown_type: ("{ name: auth-secret }", "{ type: magic, secret: s }"),
    auth_ref_wrong_namespace: ("{ name: auth-secret, namespace: elsewhere }", UP),
}}
