//! Renders the Helm charts of this folder with a real `helm` binary and parses every document, so
//! that tests assert what a cluster would receive (kinds, names, RBAC rules, probes, grace periods,
//! ScaledObject versus HPA).
//!
//! The `helm` binary is taken from `$HELM`, else from `<workspace>/.tools/bin/helm` (installed by
//! `scripts/setup.sh`), else from `PATH`.

use std::path::PathBuf;
use std::process::Command;

use serde_norway::Value;

/// What can go wrong while rendering a chart.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The helm binary could not be started.
    #[error("cannot run helm ({helm}): {source}")]
    Spawn {
        /// The binary that was tried.
        helm: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// helm ran and failed; its standard error is attached.
    #[error("helm {args:?} failed: {stderr}")]
    Helm {
        /// The arguments helm was given.
        args: Vec<String>,
        /// What helm printed on standard error.
        stderr: String,
    },
    /// helm printed something that is not YAML.
    #[error("helm output is not YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// Result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The folder holding the charts (this crate's folder).
pub fn charts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The helm binary to use: `$HELM`, the one `scripts/setup.sh` installs, or `helm` on `PATH`.
pub fn helm_binary() -> String {
    if let Ok(helm) = std::env::var("HELM") {
        return helm;
    }
    let tools = charts_dir().join("../.tools/bin/helm");
    if tools.exists() {
        return tools.display().to_string();
    }
    "helm".to_string()
}

/// Runs helm with `args` and returns its standard output.
pub fn helm(args: &[&str]) -> Result<String> {
    let helm = helm_binary();
    let out = Command::new(&helm)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            helm: helm.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Helm {
            args: args.iter().map(|a| a.to_string()).collect(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The image registry tests render with: the chart requires one and ships no default.
pub const TEST_REGISTRY: &str = "registry.example/stunner";

/// `helm template` of `chart` (a folder below [`charts_dir`]) with extra arguments, parsed into its
/// non-empty documents. `image.registry` is set to [`TEST_REGISTRY`] unless `extra` sets it.
pub fn template(chart: &str, extra: &[&str]) -> Result<Vec<Value>> {
    parse_documents(&template_text(chart, extra)?)
}

/// [`template`] as helm printed it.
pub fn template_text(chart: &str, extra: &[&str]) -> Result<String> {
    let path = chart_path(chart);
    let path = path.display().to_string();
    let registry = format!("image.registry={TEST_REGISTRY}");
    let mut args = vec!["template", "test", path.as_str(), "--namespace", "stunner"];
    args.extend_from_slice(&["--set", &registry]);
    args.extend_from_slice(extra);
    helm(&args)
}

/// The path of one chart folder.
pub fn chart_path(chart: &str) -> PathBuf {
    charts_dir().join(chart)
}

/// Splits a multi-document YAML stream into its non-null documents.
pub fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = <Value as serde::Deserialize>::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// The documents of kind `kind`.
pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

/// The one document of `kind` named `name`, if any.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(name))
}
