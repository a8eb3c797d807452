//! PodTolerationRestriction (upstream's `plugin/pkg/admission/podtolerationrestriction`): a
//! created pod gains its namespace's default tolerations (the
//! `scheduler.alpha.kubernetes.io/defaultTolerations` annotation, or the plugin
//! configuration's `default`), a pod that is not BestEffort tolerates memory pressure, and a
//! pod's tolerations must stay within its namespace's whitelist
//! (`scheduler.alpha.kubernetes.io/tolerationsWhitelist`, or the configuration's `whitelist`).

use super::{Attributes, Mutating, Operation, Result, Validating};
use crate::registry::{RegistryError, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The namespace annotation of its pods' default tolerations.
pub const DEFAULT_TOLERATIONS: &str = "scheduler.alpha.kubernetes.io/defaultTolerations";
/// The namespace annotation of the tolerations its pods may have.
pub const TOLERATIONS_WHITELIST: &str = "scheduler.alpha.kubernetes.io/tolerationsWhitelist";

/// The plugin's configuration (podtolerationrestriction.admission.k8s.io/v1alpha1).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PodTolerationRestrictionConfig {
    /// Cluster-wide default tolerations.
    #[serde(default)]
    pub default: Vec<Value>,
    /// Cluster-wide whitelist.
    #[serde(default)]
    pub whitelist: Vec<Value>,
}

/// A toleration's fields as upstream compares them (absent and empty alike).
#[derive(Debug, Clone, PartialEq)]
struct Toleration {
    key: String,
    operator: String,
    value: String,
    effect: String,
    seconds: Option<i64>,
}

impl Toleration {
    fn of(v: &Value) -> Self {
        let s = |f: &str| v[f].as_str().unwrap_or("").to_string();
        Self {
            key: s("key"),
            operator: s("operator"),
            value: s("value"),
            effect: s("effect"),
            seconds: v["tolerationSeconds"].as_i64(),
        }
    }

    /// Upstream's `isSuperset`: whether `self` tolerates everything `t` does.
    fn covers(&self, t: &Toleration) -> bool {
        if self == t {
            return true;
        }
        // An empty key with Exists matches every key.
        if t.key != self.key && (!self.key.is_empty() || self.operator != "Exists") {
            return false;
        }
        // An empty effect matches every effect.
        if t.effect != self.effect && !self.effect.is_empty() {
            return false;
        }
        if self.effect == "NoExecute"
            && let Some(limit) = self.seconds
            && t.seconds.is_none_or(|s| s > limit)
        {
            return false;
        }
        match self.operator.as_str() {
            "Equal" | "" => t.operator == "Equal" && t.value == self.value,
            "Exists" => true,
            _ => false,
        }
    }
}

/// Upstream's `MergeTolerations`: both lists, each toleration another covers left out (of
/// equal ones, the first kept).
fn merge(first: &[Value], second: &[Value]) -> Vec<Value> {
    let all: Vec<(Toleration, &Value)> = first
        .iter()
        .chain(second)
        .map(|v| (Toleration::of(v), v))
        .collect();
    let mut merged: Vec<(Toleration, &Value)> = Vec::new();
    for (i, (t, v)) in all.iter().enumerate() {
        let redundant = merged.iter().any(|(m, _)| m.covers(t))
            || all[i + 1..]
                .iter()
                .any(|(later, _)| later != t && later.covers(t));
        if !redundant {
            merged.push((t.clone(), v));
        }
    }
    merged.into_iter().map(|(_, v)| v.clone()).collect()
}

/// Upstream's `VerifyAgainstWhitelist`.
fn within(tolerations: &[Value], whitelist: &[Value]) -> bool {
    let whitelist: Vec<Toleration> = whitelist.iter().map(Toleration::of).collect();
    tolerations
        .iter()
        .map(Toleration::of)
        .all(|t| whitelist.iter().any(|w| w.covers(&t)))
}

/// The plugin.
pub struct PodTolerationRestriction {
    namespaces: Arc<Store>,
    config: PodTolerationRestrictionConfig,
}

impl PodTolerationRestriction {
    /// Reads namespaces from `namespaces`, with the cluster's `config`.
    pub fn new(namespaces: Arc<Store>, config: PodTolerationRestrictionConfig) -> Self {
        Self { namespaces, config }
    }

    /// The tolerations a namespace annotation lists; `None` without the annotation.
    async fn annotated(&self, namespace: &str, annotation: &str) -> Result<Option<Vec<Value>>> {
        let ns = self.namespaces.get(None, namespace).await?;
        let Some(text) = ns["metadata"]["annotations"][annotation].as_str() else {
            return Ok(None);
        };
        let list: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| RegistryError::Unknown(format!("{annotation}: {e}")))?;
        Ok(Some(list))
    }
}

/// Whether a pod is BestEffort: no container asks for or is limited in cpu or memory.
fn best_effort(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|field| {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .all(|c| {
                ["requests", "limits"].iter().all(|kind| {
                    ["cpu", "memory"].iter().all(|r| {
                        c["resources"][kind][r].is_null() || is_zero(&c["resources"][kind][r])
                    })
                })
            })
    })
}

/// A quantity of zero (`0`, `0m`, `0Mi`, …).
fn is_zero(q: &Value) -> bool {
    match q {
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s
            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse::<f64>()
            .is_ok_and(|v| v == 0.0),
        _ => false,
    }
}

fn tolerations(pod: &Value) -> Vec<Value> {
    pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl Mutating for PodTolerationRestriction {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let Some(pod) = object.filter(|_| a.writes("", "pods")) else {
            return Ok(());
        };
        let mut extra = Vec::new();
        if a.operation == Operation::Create {
            extra = match self
                .annotated(a.namespace.unwrap_or(""), DEFAULT_TOLERATIONS)
                .await?
            {
                Some(list) => list,
                None => self.config.default.clone(),
            };
        }
        if !best_effort(pod) {
            extra.push(json!({"key": "node.kubernetes.io/memory-pressure",
                "operator": "Exists", "effect": "NoSchedule"}));
        }
        if !extra.is_empty() {
            pod["spec"]["tolerations"] = Value::Array(merge(&tolerations(pod), &extra));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Validating for PodTolerationRestriction {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let Some(pod) = object.filter(|_| a.writes("", "pods")) else {
            return Ok(());
        };
        let tolerations = tolerations(pod);
        if tolerations.is_empty() {
            return Ok(());
        }
        let (whitelist, scope) = match self
            .annotated(a.namespace.unwrap_or(""), TOLERATIONS_WHITELIST)
            .await?
        {
            Some(list) => (list, "namespace"),
            None => (self.config.whitelist.clone(), "cluster"),
        };
        if !whitelist.is_empty() && !within(&tolerations, &whitelist) {
            // Upstream returns a plain error here, which the API answers as a 500.
            return Err(RegistryError::Unknown(format!(
                "pod tolerations (possibly merged with namespace default tolerations) conflict with its {scope} whitelist"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_one_of_equal_tolerations_and_drops_those_another_covers() {
        let exists_all = json!({"operator": "Exists"});
        let a = json!({"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"});
        let a_again =
            json!({"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"});
        let b = json!({"key": "b", "operator": "Exists"});
        let one = vec![a.clone()];
        assert_eq!(merge(&one, &[a_again]), one);
        assert_eq!(
            merge(&one, std::slice::from_ref(&b)),
            [a.clone(), b.clone()]
        );
        assert_eq!(
            merge(&[a, b], std::slice::from_ref(&exists_all)),
            [exists_all]
        );
    }

    #[test]
    fn whitelists_cover_keys_values_effects_and_seconds_as_upstream() {
        let w = [
            json!({"key": "team", "operator": "Equal", "value": "blue"}),
            json!({"key": "maint", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}),
        ];
        assert!(within(
            &[json!({"key": "team", "operator": "Equal", "value": "blue", "effect": "NoSchedule"})],
            &w
        ));
        assert!(!within(
            &[json!({"key": "team", "operator": "Equal", "value": "red"})],
            &w
        ));
        assert!(within(
            &[
                json!({"key": "maint", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30})
            ],
            &w
        ));
        assert!(!within(
            &[json!({"key": "maint", "operator": "Exists", "effect": "NoExecute"})],
            &w
        ));
    }

    #[test]
    fn best_effort_pods_ask_for_no_cpu_or_memory() {
        let pod = |resources: Value| json!({"spec": {"containers": [{"name": "a", "resources": resources}]}});
        assert!(best_effort(&pod(json!({}))));
        assert!(best_effort(&pod(json!({"requests": {"cpu": "0"}}))));
        assert!(!best_effort(&pod(json!({"requests": {"memory": "64Mi"}}))));
        assert!(best_effort(&pod(
            json!({"limits": {"example.com/gpu": "1"}})
        )));
    }
}
