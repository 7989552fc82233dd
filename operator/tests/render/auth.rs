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

#[test]
fn inline_auth_table() {
    // (spec, type, credentials)
    let cases: [(&str, AuthType, Creds); 7] = [
        (
            "{ userName: u, password: p }",
            AuthType::Static,
            &[("password", "p"), ("username", "u")],
        ),
        (
            "{ authType: plaintext, userName: u, password: p }",
            AuthType::Static,
            &[("password", "p"), ("username", "u")],
        ),
        (
            "{ authType: static, userName: u, password: p }",
            AuthType::Static,
            &[("password", "p"), ("username", "u")],
        ),
        (
            "{ authType: longterm, sharedSecret: s3cr3t }",
            AuthType::Ephemeral,
            &[("secret", "s3cr3t")],
        ),
        (
            "{ authType: ephemeral, sharedSecret: s3cr3t }",
            AuthType::Ephemeral,
            &[("secret", "s3cr3t")],
        ),
        (
            "{ authType: timewindowed, sharedSecret: s3cr3t }",
            AuthType::Ephemeral,
            &[("secret", "s3cr3t")],
        ),
        (
            "{ authType: ephemeral, sharedSecret: s, userName: ignored, password: ignored }",
            AuthType::Ephemeral,
            &[("secret", "s")],
        ),
    ];
    for (spec, t, creds) in cases {
        let r = run(&base_with(&conf(spec)));
        let a = &config(&r, "stunner/udp-gateway").auth;
        assert_eq!(a.auth_type, t, "{spec}");
        let got: Vec<(&str, &str)> = a
            .credentials
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, creds, "{spec}");
    }
}

#[test]
fn invalid_inline_auth_table() {
    for spec in [
        "{ authType: plaintext, userName: u }",
        "{ authType: plaintext, password: p }",
        "{ authType: plaintext }",
        "{ authType: longterm }",
        "{ authType: longterm, userName: u, password: p }",
        "{ authType: kerberos, userName: u, password: p }",
        "{ authType: static, userName: '', password: p }",
    ] {
        let r = run(&base_with(&conf(spec)));
        assert!(r.configs.is_empty(), "{spec}");
        assert_eq!(
            gw_cond(&r, "stunner/udp-gateway", "Programmed"),
            no("Invalid"),
            "{spec}"
        );
        assert_eq!(
            gw_cond(&r, "stunner/udp-gateway", "Accepted"),
            ok("Accepted"),
            "{spec}"
        );
        assert_eq!(r.services.len(), 1, "{spec}: Service kept");
    }
}

#[test]
fn realm_table() {
    for (spec, realm) in [
        ("{ userName: u, password: p }", "stunner.l7mp.io"),
        (
            "{ realm: example.com, userName: u, password: p }",
            "example.com",
        ),
        ("{ realm: '', userName: u, password: p }", "stunner.l7mp.io"),
    ] {
        assert_eq!(
            config(&run(&base_with(&conf(spec))), "stunner/udp-gateway")
                .auth
                .realm,
            realm,
            "{spec}"
        );
    }
}

#[test]
fn auth_ref_table() {
    // (authRef, secret namespace, secret data, type, creds)
    let cases: [(&str, &str, &str, AuthType, Creds); 7] = [
        (
            "{ name: auth-secret }",
            "stunner",
            "{ type: static, username: su, password: sp }",
            AuthType::Static,
            &[("password", "sp"), ("username", "su")],
        ),
        (
            "{ name: auth-secret, namespace: stunner }",
            "stunner",
            "{ type: plaintext, username: su, password: sp }",
            AuthType::Static,
            &[("password", "sp"), ("username", "su")],
        ),
        (
            "{ name: auth-secret, namespace: other }",
            "other",
            "{ type: static, username: su, password: sp }",
            AuthType::Static,
            &[("password", "sp"), ("username", "su")],
        ),
        (
            "{ name: auth-secret, kind: Secret, group: '' }",
            "stunner",
            "{ type: ephemeral, secret: shh }",
            AuthType::Ephemeral,
            &[("secret", "shh")],
        ),
        (
            "{ name: auth-secret }",
            "stunner",
            "{ type: longterm, sharedSecret: shh }",
            AuthType::Ephemeral,
            &[("secret", "shh")],
        ),
        (
            "{ name: auth-secret, group: v1 }",
            "stunner",
            "{ type: timewindowed, secret: shh }",
            AuthType::Ephemeral,
            &[("secret", "shh")],
        ),
        (
            "{ name: auth-secret }",
            "stunner",
            "{ type: \"static\\n\", username: \"su\\n\", password: sp }",
            AuthType::Static,
            &[("password", "sp"), ("username", "su")],
        ),
    ];
    for (r#ref, ns, data, t, creds) in cases {
        let spec = format!(
            "{{ authType: plaintext, userName: inline, password: inline, authRef: {ref} }}"
        );
        let s = base_with(&format!("{}---\n{}", conf(&spec), secret(ns, data)));
        let r = run(&s);
        let a = &config(&r, "stunner/udp-gateway").auth;
        assert_eq!(a.auth_type, t, "{ref} {data}");
        let got: Vec<(&str, &str)> = a
            .credentials
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, creds, "{ref} {data}");
    }
}

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

#[test]
fn invalid_auth_ref_table() {
    let cases = [
        (
            "{ name: missing }",
            "{ type: static, username: u, password: p }",
        ),
        (
            "{ name: auth-secret, kind: ConfigMap }",
            "{ type: static, username: u, password: p }",
        ),
        (
            "{ name: auth-secret, group: example.com }",
            "{ type: static, username: u, password: p }",
        ),
        ("{ name: auth-secret }", "{ username: u, password: p }"),
        ("{ name: auth-secret }", "{ type: static, username: u }"),
        (
            "{ name: auth-secret }",
            "{ type: ephemeral, username: u, password: p }",
        ),
        ("{ name: auth-secret }", "{ type: magic, secret: s }"),
        (
            "{ name: auth-secret, namespace: elsewhere }",
            "{ type: static, username: u, password: p }",
        ),
    ];
    for (r#ref, data) in cases {
        let spec = format!("{{ userName: inline, password: inline, authRef: {ref} }}");
        let r = run(&base_with(&format!(
            "{}---\n{}",
            conf(&spec),
            secret("stunner", data)
        )));
        assert!(
            r.configs.is_empty(),
            "{ref} {data}: inline credentials must not be used"
        );
        assert_eq!(
            gw_cond(&r, "stunner/udp-gateway", "Programmed"),
            no("Invalid"),
            "{ref} {data}"
        );
    }
}
