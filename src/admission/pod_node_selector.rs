//! PodNodeSelector (upstream's `plugin/pkg/admission/podnodeselector`): a created pod's node
//! selector gains its namespace's, from the namespace's
//! `scheduler.alpha.kubernetes.io/node-selector` annotation or, without one, the cluster
//! default of the plugin's configuration; a pod whose selector conflicts with it, or leaves
//! the namespace's whitelist in that configuration, is forbidden.

use super::{Attributes, Mutating, Operation, Result, Validating};
use crate::registry::{RegistryError, Store};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The namespace annotation naming its node selector.
pub const ANNOTATION: &str = "scheduler.alpha.kubernetes.io/node-selector";

/// The configuration key of the cluster's default node selector.
const CLUSTER_DEFAULT: &str = "clusterDefaultNodeSelector";

/// Labels, as a node selector is.
type Labels = BTreeMap<String, String>;

/// The plugin, with its configuration: the cluster default under `clusterDefaultNodeSelector`,
/// and each namespace's whitelist under its name.
pub struct PodNodeSelector {
    namespaces: Arc<Store>,
    selectors: BTreeMap<String, String>,
}

impl PodNodeSelector {
    /// Reads namespaces from `namespaces`, with `selectors` from the configuration.
    pub fn new(namespaces: Arc<Store>, selectors: BTreeMap<String, String>) -> Self {
        Self {
            namespaces,
            selectors,
        }
    }

    /// The pod of a create this plugin looks at.
    fn pod<'v>(a: &Attributes<'_>, object: Option<&'v Value>) -> Option<&'v Value> {
        object.filter(|_| a.writes("", "pods"))
    }

    /// The node selector pods of `namespace` must have (upstream's
    /// `getNamespaceNodeSelectorMap`).
    async fn namespace_selector(&self, namespace: &str) -> Result<Labels> {
        let ns = self.namespaces.get(None, namespace).await?;
        match ns["metadata"]["annotations"][ANNOTATION].as_str() {
            Some(selector) => parse(selector),
            None => parse(
                self.selectors
                    .get(CLUSTER_DEFAULT)
                    .map_or("", String::as_str),
            ),
        }
    }

    fn conflict(a: &Attributes<'_>) -> RegistryError {
        a.forbidden(
            "pod node label selector conflicts with its namespace node label selector".into(),
        )
    }
}

/// Upstream's `labels.ConvertSelectorToLabelsMap`: `k=v` pairs separated by commas.
pub fn parse(selector: &str) -> Result<Labels> {
    let mut labels = Labels::new();
    if selector.is_empty() {
        return Ok(labels);
    }
    for pair in selector.split(',') {
        let parts: Vec<&str> = pair.split('=').collect();
        let [key, value] = parts[..] else {
            return Err(RegistryError::Internal(format!(
                "invalid selector: [{}]",
                parts.join(" ")
            )));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(RegistryError::Internal(format!(
                "invalid selector: {selector:?}: a label key must not be empty"
            )));
        }
        labels.insert(key.to_string(), value.trim().to_string());
    }
    Ok(labels)
}

/// The pod's node selector.
fn node_selector(pod: &Value) -> Labels {
    pod["spec"]["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// Upstream's `labels.Conflicts`: a key both have with different values.
fn conflicts(a: &Labels, b: &Labels) -> bool {
    a.iter().any(|(k, v)| b.get(k).is_some_and(|w| w != v))
}

#[async_trait::async_trait]
impl Mutating for PodNodeSelector {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let Some(pod) = object.filter(|_| a.writes("", "pods")) else {
            return Ok(());
        };
        let namespace = self.namespace_selector(a.namespace.unwrap_or("")).await?;
        let mut selector = node_selector(pod);
        if conflicts(&namespace, &selector) {
            return Err(Self::conflict(a));
        }
        // The pod's own labels win where both have one (they agree, or it was refused above).
        for (k, v) in namespace {
            selector.entry(k).or_insert(v);
        }
        if !selector.is_empty() {
            let map: Map<String, Value> =
                selector.into_iter().map(|(k, v)| (k, json!(v))).collect();
            pod["spec"]["nodeSelector"] = Value::Object(map);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Validating for PodNodeSelector {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let Some(pod) = Self::pod(a, object) else {
            return Ok(());
        };
        let namespace_name = a.namespace.unwrap_or("");
        let namespace = self.namespace_selector(namespace_name).await?;
        let selector = node_selector(pod);
        if conflicts(&namespace, &selector) {
            return Err(Self::conflict(a));
        }
        let whitelist = parse(
            self.selectors
                .get(namespace_name)
                .map_or("", String::as_str),
        )?;
        let within = whitelist.is_empty()
            || selector
                .iter()
                .all(|(k, v)| whitelist.get(k).is_some_and(|w| w == v));
        if !within {
            return Err(a.forbidden(
                "pod node label selector labels conflict with its namespace whitelist".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_as_upstreams_label_maps() {
        assert_eq!(parse("").unwrap(), Labels::new());
        assert_eq!(
            parse("env = prod,zone=a").unwrap(),
            Labels::from([("env".into(), "prod".into()), ("zone".into(), "a".into())])
        );
        assert_eq!(
            parse("env").unwrap_err().to_string(),
            "invalid selector: [env]"
        );
        assert_eq!(
            parse("a==b").unwrap_err().to_string(),
            "invalid selector: [a  b]"
        );
    }

    #[test]
    fn conflicts_are_keys_with_different_values() {
        let ns = parse("env=prod").unwrap();
        assert!(conflicts(&ns, &parse("env=dev").unwrap()));
        assert!(!conflicts(&ns, &parse("env=prod,disk=ssd").unwrap()));
        assert!(!conflicts(&ns, &Labels::new()));
    }
}
