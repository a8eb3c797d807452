//! Rules of the core/v1 kinds, one file per kind or close group, plus the helpers they share
//! (upstream's `IsValidPortNum`, `IsValidPortName`, `IsConfigMapKey`, `labels.FormatLabels`).

mod binding;
mod config;
mod event;
mod eviction;
mod namespace;
mod node;
mod pod;
pub(crate) mod podspec;
pub(crate) mod quantity;
mod replication;
mod service;
mod simple;
mod volumes;

pub use binding::{Bindings, PodBinding};
pub use config::{ConfigMapRules, SecretRules};
pub use event::{EventRules, validate_event};
pub use eviction::PodEviction;
pub use namespace::{KUBERNETES as NAMESPACE_FINALIZER, NamespaceRules};
pub use node::NodeRules;
pub use pod::PodRules;
pub(crate) use pod::update_pod_condition;
pub use replication::{PodTemplateRules, ReplicationControllerRules};
pub use service::ServiceRules;
pub use simple::{EndpointsRules, LimitRangeRules, ResourceQuotaRules, ServiceAccountRules};
pub use volumes::{PersistentVolumeClaimRules, PersistentVolumeRules};

use std::collections::BTreeMap;

/// Upstream's `MaxSecretSize`: the limit on a Secret's or ConfigMap's data.
const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// Messages for a port number (empty when valid), as upstream's `IsValidPortNum`.
pub(crate) fn port_num(port: i32) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".into()]
    }
}

/// Messages for a port name (empty when valid), as upstream's `IsValidPortName`.
pub(crate) fn port_name(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.len() > 15 {
        out.push("must be no more than 15 characters".into());
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".into());
    }
    if name.contains("--") {
        out.push("must not contain consecutive hyphens".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        out.push("must not begin or end with a hyphen".into());
    }
    out
}

/// Messages for a ConfigMap or Secret key (empty when valid), as upstream's `IsConfigMapKey`.
pub(crate) fn config_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if key.len() > 253 {
        out.push("must be no more than 253 characters".into());
    }
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        out.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".into());
    }
    if key == "." {
        out.push("must not be '.'".into());
    } else if key == ".." {
        out.push("must not be '..'".into());
    } else if key.starts_with("..") {
        out.push("must not start with '..'".into());
    }
    out
}

/// `k=v,k2=v2` sorted by key, or `<none>`, as upstream's `labels.FormatLabels`.
pub(crate) fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    match labels {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

/// The string of an optional string field, empty when unset.
fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// How long ago `t` was, as upstream's `translateTimestampSince`; `<unknown>` when unset.
fn since(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    match t {
        Some(t) => crate::registry::table::human_duration(now_secs() - t.0.as_second()),
        None => "<unknown>".into(),
    }
}

/// Seconds since the Unix epoch, now.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use crate::registry::ResourceInfo;

    /// Facts for a core/v1 kind under test; rules never read them.
    pub(super) fn info(kind: &'static str, resource: &'static str) -> ResourceInfo {
        crate::registry::kinds::test_support::info("", kind, resource)
    }

    #[test]
    fn port_names_and_config_keys_follow_upstreams_rules() {
        assert!(super::port_name("http").is_empty());
        assert_eq!(
            super::port_name("80"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert!(super::config_key("a.b_C-1").is_empty());
        assert_eq!(super::config_key("..a"), vec!["must not start with '..'"]);
        assert_eq!(super::config_key("a b").len(), 1);
    }
}
