//! The small plugins that add a fixed default or refuse one field, as upstream's plugins of
//! the same names: DefaultTolerationSeconds, TaintNodesByCondition,
//! StorageObjectInUseProtection, AlwaysPullImages, DenyServiceExternalIPs,
//! ExtendedResourceToleration and LimitPodHardAntiAffinityTopology.

use super::{Attributes, Mutating, Operation, Result, Validating};
use serde_json::{Value, json};

/// `obj[field]` as an array, created when absent.
fn array<'o>(obj: &'o mut Value, pointer: &str, field: &str) -> Option<&'o mut Vec<Value>> {
    let parent = obj.pointer_mut(pointer)?.as_object_mut()?;
    let entry = parent.entry(field).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    entry.as_array_mut()
}

/// DefaultTolerationSeconds: a new pod tolerates `not-ready` and `unreachable` nodes for
/// 300 s unless it already tolerates them (`--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds` keep upstream's defaults).
pub struct DefaultTolerationSeconds;

/// The taints DefaultTolerationSeconds tolerates.
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Whether `t` already tolerates the NoExecute taint `key`, as upstream's plugin judges it:
/// its key is that or empty, its effect NoExecute or empty.
fn tolerates(t: &Value, key: &str) -> bool {
    let effect = t["effect"].as_str().unwrap_or("");
    let t_key = t["key"].as_str().unwrap_or("");
    (t_key.is_empty() || t_key == key) && (effect.is_empty() || effect == "NoExecute")
}

#[async_trait::async_trait]
impl Mutating for DefaultTolerationSeconds {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let Some(pod) = object.filter(|_| a.writes("", "pods")) else {
            return Ok(());
        };
        let Some(tolerations) = array(pod, "/spec", "tolerations") else {
            return Ok(());
        };
        for key in [NOT_READY, UNREACHABLE] {
            if !tolerations.iter().any(|t| tolerates(t, key)) {
                tolerations.push(
                    json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
                );
            }
        }
        Ok(())
    }
}

/// TaintNodesByCondition: a new node is tainted `not-ready:NoSchedule` until the node
/// lifecycle controller sees it ready.
pub struct TaintNodesByCondition;

#[async_trait::async_trait]
impl Mutating for TaintNodesByCondition {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let Some(node) = object.filter(|_| a.writes("", "nodes")) else {
            return Ok(());
        };
        if node.get("spec").is_none() {
            node["spec"] = json!({});
        }
        let Some(taints) = array(node, "/spec", "taints") else {
            return Ok(());
        };
        if !taints
            .iter()
            .any(|t| t["key"] == NOT_READY && t["effect"] == "NoSchedule")
        {
            taints.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
        }
        Ok(())
    }
}

/// StorageObjectInUseProtection: new claims and volumes get the finalizer that keeps them
/// while a pod (or claim) uses them.
pub struct StorageObjectInUseProtection;

#[async_trait::async_trait]
impl Mutating for StorageObjectInUseProtection {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let finalizer = if a.writes("", "persistentvolumeclaims") {
            "kubernetes.io/pvc-protection"
        } else if a.writes("", "persistentvolumes") {
            "kubernetes.io/pv-protection"
        } else {
            return Ok(());
        };
        let Some(obj) = object else { return Ok(()) };
        if obj.get("metadata").is_none() {
            obj["metadata"] = json!({});
        }
        if let Some(finalizers) = array(obj, "/metadata", "finalizers")
            && !finalizers.iter().any(|f| f == finalizer)
        {
            finalizers.push(json!(finalizer));
        }
        Ok(())
    }
}

/// AlwaysPullImages: every container of a created or updated pod pulls its image always.
pub struct AlwaysPullImages;

#[async_trait::async_trait]
impl Mutating for AlwaysPullImages {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let Some(pod) = object.filter(|_| a.writes("", "pods")) else {
            return Ok(());
        };
        for field in ["initContainers", "containers", "ephemeralContainers"] {
            for c in pod["spec"][field].as_array_mut().into_iter().flatten() {
                c["imagePullPolicy"] = json!("Always");
            }
        }
        Ok(())
    }
}

/// ExtendedResourceToleration: a pod requesting an extended resource (e.g. `example.com/gpu`)
/// tolerates the NoSchedule taint of that name, so nodes offering it can be kept for it.
pub struct ExtendedResourceToleration;

/// Upstream's `IsExtendedResourceName`: a domain-prefixed name outside `kubernetes.io/`, not a
/// quota's `requests.` name, that stays a qualified name with `requests.` before it.
fn is_extended_resource(name: &str) -> bool {
    name.contains('/')
        && !name.contains("kubernetes.io/")
        && !name.starts_with("requests.")
        && crate::registry::validation::qualified_name(&format!("requests.{name}")).is_empty()
}

#[async_trait::async_trait]
impl Mutating for ExtendedResourceToleration {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let Some(pod) = object.filter(|_| a.writes("", "pods")) else {
            return Ok(());
        };
        let mut resources = std::collections::BTreeSet::new();
        for field in ["containers", "initContainers"] {
            for c in pod["spec"][field].as_array().into_iter().flatten() {
                for name in c["resources"]["requests"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    if is_extended_resource(name) {
                        resources.insert(name.clone());
                    }
                }
            }
        }
        if resources.is_empty() {
            return Ok(());
        }
        let Some(tolerations) = array(pod, "/spec", "tolerations") else {
            return Ok(());
        };
        for resource in resources {
            let wanted = json!({"key": resource, "operator": "Exists", "effect": "NoSchedule"});
            // Upstream's AddOrUpdateTolerationInPod: one matching on key, operator, value and
            // effect is replaced by this one; otherwise it is added.
            let matches = |t: &Value| {
                ["key", "operator", "effect"]
                    .iter()
                    .all(|f| t[*f].as_str().unwrap_or("") == wanted[*f].as_str().unwrap_or(""))
                    && t["value"].as_str().unwrap_or("").is_empty()
            };
            match tolerations.iter().position(matches) {
                Some(i) => tolerations[i] = wanted,
                None => tolerations.push(wanted),
            }
        }
        Ok(())
    }
}

/// LimitPodHardAntiAffinityTopology: a pod's required anti-affinity may only be per node
/// (`kubernetes.io/hostname`).
pub struct LimitPodHardAntiAffinityTopology;

#[async_trait::async_trait]
impl Validating for LimitPodHardAntiAffinityTopology {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let Some(pod) = object.filter(|_| a.writes("", "pods")) else {
            return Ok(());
        };
        let terms = &pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        for term in terms.as_array().into_iter().flatten() {
            let key = term["topologyKey"].as_str().unwrap_or("");
            if key != "kubernetes.io/hostname" {
                return Err(a.forbidden(format!(
                    "affinity.PodAntiAffinity.RequiredDuringScheduling has TopologyKey {key} but only key kubernetes.io/hostname is allowed"
                )));
            }
        }
        Ok(())
    }
}

/// DenyServiceExternalIPs: no Service may gain external IPs.
pub struct DenyServiceExternalIPs;

#[async_trait::async_trait]
impl Validating for DenyServiceExternalIPs {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let Some(svc) = object.filter(|_| a.writes("", "services")) else {
            return Ok(());
        };
        let ips = |s: &Value| -> Vec<String> {
            s["spec"]["externalIPs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let new = ips(svc);
        let old = a.old_object.map(ips).unwrap_or_default();
        // Keeping or removing existing external IPs stays allowed, as upstream.
        if new.iter().any(|ip| !old.contains(ip)) {
            return Err(a.forbidden("spec.externalIPs is forbidden".into()));
        }
        Ok(())
    }
}

/// AlwaysDeny: every write is refused (upstream's testing plugin).
pub struct AlwaysDeny;

#[async_trait::async_trait]
impl Validating for AlwaysDeny {
    fn handles(&self, _: Operation) -> bool {
        true
    }

    async fn validate(&self, a: &Attributes<'_>, _: Option<&Value>) -> Result {
        Err(a.forbidden("admission control is denying all modifications".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_resources_are_domain_prefixed_names_outside_kubernetes_io() {
        for name in ["example.com/gpu", "nvidia.com/gpu", "acme.io/fpga_x"] {
            assert!(is_extended_resource(name), "{name}");
        }
        for name in [
            "cpu",
            "memory",
            "kubernetes.io/foo",
            "hugepages-2Mi",
            "requests.example.com/gpu",
            "example.com/",
            "Example.COM/gpu",
        ] {
            assert!(!is_extended_resource(name), "{name}");
        }
    }
}
