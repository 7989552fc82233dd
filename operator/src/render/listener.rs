//! Gateway listeners: protocol aliases (`UDP` → `TURN-UDP`, ...), conflicts (two listeners on the
//! same port and transport: the later one loses), TLS certificates from Secrets for TURN-TLS and
//! TURN-DTLS (a Secret in another namespace only with a ReferenceGrant), and the route kinds a
//! listener allows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gateway_api::gateways::{Gateway, GatewayListeners, GatewayListenersTlsMode};
use k8s_openapi::api::core::v1::Secret;
use proto::config::ListenerProtocol;

use super::grants;
use super::status::Reason;
use crate::crd::GROUP;
use crate::store::{ObjectKey, Snapshot};

/// Gateway API group.
pub(crate) const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Why a listener's certificate reference did not resolve: a `ResolvedRefs` reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefError {
    /// Condition reason (`InvalidCertificateRef` or `RefNotPermitted`).
    pub(crate) reason: Reason,
    /// Human-readable message.
    pub(crate) message: String,
}

impl RefError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            reason: Reason::InvalidCertificateRef,
            message: message.into(),
        }
    }
}

/// What the renderer decided about one listener.
#[derive(Clone, Debug)]
pub(crate) struct ListenerPlan<'a> {
    /// The listener as written in the Gateway.
    pub(crate) spec: &'a GatewayListeners,
    /// Namespace of the Gateway (for `allowedRoutes.namespaces.from: Same`).
    pub(crate) gateway_ns: &'a str,
    /// Normalised protocol, `None` when unsupported.
    pub(crate) protocol: Option<ListenerProtocol>,
    /// Same port and transport as an earlier listener.
    pub(crate) conflicted: bool,
    /// Base64 PEM cert and key for TLS/DTLS; `Err` says why they could not be resolved.
    pub(crate) tls: Result<Option<(String, String)>, RefError>,
    /// `allowedRoutes.kinds` admits UDPRoutes.
    pub(crate) kinds_ok: bool,
}

impl ListenerPlan<'_> {
    /// Accepted: supported protocol and no conflict.
    pub(crate) fn accepted(&self) -> bool {
        self.protocol.is_some() && !self.conflicted
    }

    /// Routes may attach (accepted and UDPRoutes allowed).
    pub(crate) fn attachable(&self) -> bool {
        self.accepted() && self.kinds_ok
    }

    /// Goes into the stunnerd config: attachable and references resolved.
    pub(crate) fn renderable(&self) -> bool {
        self.attachable() && self.tls.is_ok()
    }
}

/// Plans every listener of a Gateway, in spec order.
pub(crate) fn plan<'a>(snap: &Snapshot, gw: &'a Gateway) -> Vec<ListenerPlan<'a>> {
    let ns = gw.metadata.namespace.as_deref().unwrap_or_default();
    let mut out: Vec<ListenerPlan<'a>> = Vec::with_capacity(gw.spec.listeners.len());
    for l in &gw.spec.listeners {
        let protocol = ListenerProtocol::parse(&l.protocol);
        let conflicted = protocol.is_some_and(|p| {
            out.iter().any(|prev| {
                prev.accepted()
                    && prev.spec.port == l.port
                    && prev.protocol.map(service_protocol) == Some(service_protocol(p))
            })
        });
        let tls = match protocol {
            Some(p) if p.is_tls() => certificate(snap, ns, l).map(Some),
            _ => Ok(None),
        };
        out.push(ListenerPlan {
            spec: l,
            gateway_ns: ns,
            protocol,
            conflicted,
            tls,
            kinds_ok: kinds_ok(l),
        });
    }
    out
}

/// The Service (and transport) protocol of a listener protocol.
pub(crate) fn service_protocol(p: ListenerProtocol) -> &'static str {
    if p.is_datagram() { "UDP" } else { "TCP" }
}

fn kinds_ok(l: &GatewayListeners) -> bool {
    let Some(kinds) = l
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_ref())
        .filter(|k| !k.is_empty())
    else {
        return true;
    };
    kinds.iter().any(|k| {
        k.kind == "UDPRoute" && matches!(k.group.as_deref(), None | Some(GATEWAY_GROUP | GROUP))
    })
}

/// The first usable certificate Secret of a TLS listener.
fn certificate(
    snap: &Snapshot,
    ns: &str,
    l: &GatewayListeners,
) -> Result<(String, String), RefError> {
    let tls = l
        .tls
        .as_ref()
        .ok_or_else(|| RefError::invalid("TLS listener without a tls section"))?;
    if matches!(tls.mode, Some(GatewayListenersTlsMode::Passthrough)) {
        return Err(RefError::invalid("TLS mode Passthrough is not supported"));
    }
    let refs = tls.certificate_refs.as_deref().unwrap_or_default();
    let mut last = RefError::invalid("no certificateRefs");
    for r in refs {
        if !matches!(r.group.as_deref(), None | Some(""))
            || !matches!(r.kind.as_deref(), None | Some("Secret"))
        {
            last = RefError::invalid(format!("certificateRef {} is not a Secret", r.name));
            continue;
        }
        let key = ObjectKey::new(r.namespace.as_deref().unwrap_or(ns), &r.name);
        match secret(snap, ns, &key) {
            Ok(pair) => return Ok(pair),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Cert and key of the Secret `key`, referenced from a Gateway in `gw_ns`.
fn secret(snap: &Snapshot, gw_ns: &str, key: &ObjectKey) -> Result<(String, String), RefError> {
    let from = grants::Referrer {
        group: GATEWAY_GROUP,
        kind: "Gateway",
        namespace: gw_ns,
    };
    let to = grants::Target {
        group: "",
        kind: "Secret",
        key,
    };
    if !grants::permitted(snap, from, to) {
        return Err(RefError {
            reason: Reason::RefNotPermitted,
            message: format!(
                "no ReferenceGrant in {} permits Secret {key}",
                key.namespace
            ),
        });
    }
    match snap.secrets.get(key).map(|s| cert_and_key(s)) {
        Some(Some(pair)) => Ok(pair),
        Some(None) => Err(RefError::invalid(format!(
            "Secret {key} has no tls.crt/tls.key"
        ))),
        None => Err(RefError::invalid(format!("Secret {key} not found"))),
    }
}

fn cert_and_key(s: &Secret) -> Option<(String, String)> {
    let data = s.data.as_ref()?;
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| data.get(*n))
            .map(|b| STANDARD.encode(&b.0))
    };
    Some((
        find(&["tls.crt", "crt", "cert"])?,
        find(&["tls.key", "key"])?,
    ))
}
