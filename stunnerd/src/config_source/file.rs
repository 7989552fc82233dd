//! File origin: read once, or poll the content every `poll_interval`. Polling the content (rather
//! than inotify) follows Kubernetes ConfigMap volumes, which swap a symlink atomically.

use std::path::{Path, PathBuf};

use proto::config::StunnerConfig;
use tokio::sync::mpsc;

use super::{Gate, Result, SourceError, SourceOptions};

/// Largest config file read (a sanity bound, far above any real config).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads the whole file as UTF-8 text.
pub(super) async fn read(path: &Path) -> Result<String> {
    let context = || format!("reading config file {}", path.display());
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|source| SourceError::Io {
            context: context(),
            source,
        })?;
    if meta.len() > MAX_FILE_BYTES {
        let source =
            std::io::Error::new(std::io::ErrorKind::InvalidData, "file larger than 16 MiB");
        return Err(SourceError::Io {
            context: context(),
            source,
        });
    }
    tokio::fs::read_to_string(path)
        .await
        .map_err(|source| SourceError::Io {
            context: context(),
            source,
        })
}

/// Polls `path` and sends each valid, changed config; returns when the receiver is dropped.
pub(super) async fn watch(path: PathBuf, opts: SourceOptions, tx: mpsc::Sender<StunnerConfig>) {
    let origin = path.display().to_string();
    let mut gate = Gate::expanding();
    let mut last_text: Option<String> = None;
    let mut last_error: Option<String> = None;
    let mut tick = tokio::time::interval(opts.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = tx.closed() => return,
        }
        let text = match read(&path).await {
            Ok(t) => t,
            Err(e) => {
                // Log a failure once, not every poll.
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(%origin, error = %msg, "cannot read config file; will keep polling");
                    last_error = Some(msg);
                }
                continue;
            }
        };
        last_error = None;
        if last_text.as_deref() == Some(text.as_str()) {
            continue;
        }
        let admitted = gate.admit(&text, &origin);
        last_text = Some(text);
        if let Some(config) = admitted
            && tx.send(config).await.is_err()
        {
            return;
        }
    }
}
