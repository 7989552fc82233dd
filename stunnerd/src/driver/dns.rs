//! STRICT_DNS resolution off the control loop: a task that resolves the cluster names it is given
//! (at once when they change, then every [`REFRESH`]) and publishes the answers. The control loop
//! only reads the latest answers, so a slow or dead DNS server can delay neither a config change
//! nor SIGTERM. A failed lookup drops the name's previous answer (fail closed: a name that stops
//! resolving admits no peer).
//!
//! ```text
//!   Dataplane::apply ──names (watch)──▶ resolver task ──lookup_host (≤ LOOKUP_TIMEOUT each)
//!   Dataplane::dns_changed ◀──answers (watch)──┘   └─ again every REFRESH or when names change
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::watch;

/// How often names are resolved again.
pub(crate) const REFRESH: Duration = Duration::from_secs(5);
/// Longest wait for one name's answer.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolved names and their (sorted, deduplicated) IPs; a name whose lookup failed is absent.
pub(crate) type Answers = BTreeMap<String, Vec<IpAddr>>;

/// The control plane's end of the resolver task (which stops when this is dropped).
#[derive(Debug)]
pub(crate) struct Resolver {
    names: watch::Sender<Vec<String>>,
    answers: watch::Receiver<Answers>,
}

impl Resolver {
    /// Starts the resolver task on the current runtime.
    pub(crate) fn start() -> Self {
        let (names, names_rx) = watch::channel(Vec::new());
        let (answers_tx, answers) = watch::channel(Answers::new());
        tokio::spawn(run(names_rx, answers_tx));
        Self { names, answers }
    }

    /// Sets the names to resolve (resolved at once when they changed).
    pub(crate) fn set_names(&self, mut names: Vec<String>) {
        names.sort();
        names.dedup();
        self.names.send_if_modified(|cur| {
            let changed = *cur != names;
            *cur = names;
            changed
        });
    }

    /// The latest answers.
    pub(crate) fn answers(&self) -> Answers {
        self.answers.borrow().clone()
    }

    /// Waits until the answers change (pending forever once the task is gone).
    pub(crate) async fn changed(&mut self) {
        if self.answers.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn run(mut names: watch::Receiver<Vec<String>>, answers: watch::Sender<Answers>) {
    loop {
        let current = names.borrow_and_update().clone();
        let got = resolve_all(&current).await;
        answers.send_if_modified(|cur| {
            let changed = *cur != got;
            *cur = got;
            changed
        });
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            changed = names.changed() => if changed.is_err() { return },
        }
    }
}

async fn resolve_all(names: &[String]) -> Answers {
    let lookups = names.iter().map(|name| async move {
        let lookup =
            tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0)));
        match lookup.await {
            Ok(Ok(addrs)) => {
                let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                ips.sort();
                ips.dedup();
                Some((name.clone(), ips))
            }
            Ok(Err(error)) => {
                tracing::warn!(%name, %error, "cannot resolve cluster endpoint, denying it");
                None
            }
            Err(_) => {
                tracing::warn!(%name, "cluster endpoint lookup timed out, denying it");
                None
            }
        }
    });
    futures::future::join_all(lookups)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_resolved_when_set_and_failures_are_absent() {
        let mut r = Resolver::start();
        r.set_names(vec!["localhost".into(), "no-such-name.invalid".into()]);
        tokio::time::timeout(Duration::from_secs(10), r.changed())
            .await
            .expect("answers within 10 s");
        let got = r.answers();
        assert!(
            got.get("localhost")
                .is_some_and(|ips| ips.iter().any(IpAddr::is_loopback)),
            "{got:?}"
        );
        assert!(!got.contains_key("no-such-name.invalid"), "{got:?}");
    }
}
