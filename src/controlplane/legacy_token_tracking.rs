//! Upstream's legacy-token-tracking controller: kube-system's
//! `kube-apiserver-legacy-service-account-token-tracking` ConfigMap records since when this
//! server tracks the use of legacy Secret-based tokens; kube-controller-manager's
//! legacy-serviceaccount-token-cleaner reads it before it may clean any token up.

use crate::registry::store::{UpdateTarget, WriteOptions};
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};

/// The ConfigMap's name, in kube-system.
pub const NAME: &str = "kube-apiserver-legacy-service-account-token-tracking";
/// The key holding the date.
const SINCE: &str = "since";

/// Today in UTC, as Go's `2006-01-02`.
fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// Whether `since` is a date as upstream writes it.
fn is_date(since: &str) -> bool {
    let parts: Vec<&str> = since.split('-').collect();
    matches!(parts.as_slice(), [y, m, d]
        if y.len() == 4 && m.len() == 2 && d.len() == 2
            && [y, m, d].iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
            && (1..=12).contains(&m.parse::<u8>().unwrap_or(0))
            && (1..=31).contains(&d.parse::<u8>().unwrap_or(0)))
}

/// Creates the ConfigMap when missing, and rewrites a date that does not parse, as upstream.
pub async fn ensure(configmaps: &Store) -> Result<(), RegistryError> {
    let ns = Some("kube-system");
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": "kube-system"},
        "data": {SINCE: today()},
    });
    match configmaps.create(ns, cm, WriteOptions::default()).await {
        Ok(_) => return Ok(()),
        Err(RegistryError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    configmaps
        .update_with(
            ns,
            NAME,
            UpdateTarget::Main,
            WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                let since = current.pointer("/data/since").and_then(Value::as_str);
                if !since.is_some_and(is_date) {
                    next["data"][SINCE] = json!(today());
                }
                Ok::<_, RegistryError>(next)
            },
        )
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_go_dates() {
        assert!(is_date(&today()));
        assert!(is_date("2023-02-28"));
        for bad in [
            "",
            "2023-2-28",
            "2023-13-01",
            "yesterday",
            "2023-02-28T00:00:00Z",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }
}
