//! Audited test servers: the flags that audit by a policy into a log file, and the log's
//! events as the server writes them.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// Writes `policy` (an audit.k8s.io/v1 Policy in YAML) into `dir`; the flag auditing by it.
pub fn policy_flag(dir: &Path, policy: &str) -> String {
    let file = dir.join("audit-policy.yaml");
    std::fs::write(&file, policy).unwrap();
    format!("--audit-policy-file={}", file.display())
}

/// Writes `policy` into `dir`; the flags auditing by it into a log in `dir`, and the log's
/// path.
pub fn flags(dir: &Path, policy: &str) -> ([String; 2], PathBuf) {
    let log = dir.join("audit.log");
    (
        [
            policy_flag(dir, policy),
            format!("--audit-log-path={}", log.display()),
        ],
        log,
    )
}

/// The events of the log at `log` once there are at least `n`.
pub async fn events(log: &Path, n: usize) -> Vec<Value> {
    super::wait::eventually(&format!("{n} audit events"), || async {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (events.len() >= n).then_some(events)
    })
    .await
}
