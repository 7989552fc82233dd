//! The workspace's one rustls crypto provider: ring. Every TLS endpoint (stunnerd's TURN-TLS and
//! DTLS listeners, the scaler's gRPC server, the HTTP clients of the scaler, the auth service and
//! `stunnerctl`, the load generator) speaks with it, and no other provider is compiled in, so the
//! cipher suites and the certificate checks are the same everywhere.
//!
//! rustls picks its only compiled-in provider by itself; reqwest (built without a provider of its
//! own) asks for the process default instead, so anything that builds a reqwest client calls
//! [`provider`] first.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The process-wide default provider, installed (ring) on first use.
pub fn provider() -> Arc<CryptoProvider> {
    if let Some(p) = CryptoProvider::get_default() {
        return p.clone();
    }
    // Losing a race to another thread installing the same provider is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_is_ring_with_aead_suites_only() {
        let p = super::provider();
        assert!(!p.cipher_suites.is_empty());
        assert!(p.cipher_suites.iter().all(|s| {
            let name = format!("{:?}", s.suite());
            name.contains("GCM") || name.contains("CHACHA20")
        }));
        assert!(
            std::sync::Arc::ptr_eq(&p, &super::provider()),
            "installed once"
        );
    }
}
