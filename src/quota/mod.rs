//! Resource usage as ResourceQuotas count it (upstream's `pkg/quota/v1` and its core
//! evaluators), shared by the ResourceQuota admission plugin, which charges each write, and the
//! quota controller, which counts from scratch: object counts (`count/<resource>[.<group>]` and
//! the legacy core names), pods' cpu, memory and ephemeral-storage requests and limits, services
//! by type, and claims' storage by class.

pub mod amount;

pub use amount::Amount;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Amounts by quota resource name (`pods`, `requests.cpu`, `count/deployments.apps`, …).
pub type Usage = BTreeMap<String, Amount>;

/// `usage` as a quota's `status.used` writes it: each amount a quantity of its resource.
pub fn to_json(usage: &Usage) -> Value {
    Value::Object(
        usage
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.format(k))))
            .collect(),
    )
}

/// Core resources quotas count under their bare name too, as upstream's legacy names.
const LEGACY_COUNTED: &[&str] = &[
    "configmaps",
    "persistentvolumeclaims",
    "pods",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "services",
];

/// The compute resources of pods quotas track, each as `requests.<r>`, `limits.<r>`, and for
/// cpu and memory also bare (the request).
const POD_COMPUTE: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// The resources whose every container must state a request or limit when a quota tracks them
/// (upstream's backward-compatible `validationSet`).
const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// The suffix of per-StorageClass claim resources.
const STORAGE_CLASS: &str = ".storageclass.storage.k8s.io/";

/// `count/<resource>` for the core group, else `count/<resource>.<group>`.
fn count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

/// The group and resource whose objects make up quota resource `name`, if kubeboot counts it.
pub fn resource_of(name: &str) -> Option<(String, String)> {
    let core = |r: &str| Some((String::new(), r.to_string()));
    if let Some(counted) = name.strip_prefix("count/") {
        return match counted.split_once('.') {
            Some((resource, group)) => Some((group.to_string(), resource.to_string())),
            None => core(counted),
        };
    }
    if LEGACY_COUNTED.contains(&name) {
        return core(name);
    }
    if POD_COMPUTE
        .iter()
        .any(|r| name == *r || name == format!("requests.{r}") || name == format!("limits.{r}"))
        || name.starts_with("hugepages-")
        || name
            .strip_prefix("requests.")
            .is_some_and(|r| r.starts_with("hugepages-") || is_extended_resource(r))
    {
        return core("pods");
    }
    if matches!(name, "services.nodeports" | "services.loadbalancers") {
        return core("services");
    }
    if name == "requests.storage"
        || name
            .split_once(STORAGE_CLASS)
            .is_some_and(|(_, r)| r == "requests.storage" || r == "persistentvolumeclaims")
    {
        return core("persistentvolumeclaims");
    }
    None
}

/// What `obj`, an object of `group`/`resource`, uses.
pub fn usage(group: &str, resource: &str, obj: &Value) -> Usage {
    let mut usage = Usage::new();
    if group.is_empty() && resource == "pods" && !pod_counts(obj) {
        return usage;
    }
    usage.insert(count_name(group, resource), Amount::units(1));
    if !group.is_empty() {
        return usage;
    }
    if LEGACY_COUNTED.contains(&resource) {
        usage.insert(resource.to_string(), Amount::units(1));
    }
    match resource {
        "pods" => pod_compute(obj, &mut usage),
        "services" => {
            let spec = &obj["spec"];
            let ty = spec["type"].as_str().unwrap_or("ClusterIP");
            let ports = spec["ports"].as_array().map_or(0, Vec::len) as i128;
            let node_ports = match ty {
                "NodePort" => ports,
                "LoadBalancer" if spec["allocateLoadBalancerNodePorts"] != false => ports,
                _ => 0,
            };
            usage.insert("services.nodeports".into(), Amount::units(node_ports));
            usage.insert(
                "services.loadbalancers".into(),
                Amount::units(i128::from(ty == "LoadBalancer")),
            );
        }
        "persistentvolumeclaims" => {
            let storage = obj
                .pointer("/spec/resources/requests/storage")
                .and_then(Value::as_str)
                .and_then(Amount::parse)
                .unwrap_or_default();
            usage.insert("requests.storage".into(), storage);
            if let Some(class) = obj
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
            {
                usage.insert(format!("{class}{STORAGE_CLASS}requests.storage"), storage);
                usage.insert(
                    format!("{class}{STORAGE_CLASS}persistentvolumeclaims"),
                    Amount::units(1),
                );
            }
        }
        _ => {}
    }
    usage
}

/// Whether a pod counts against quota: not once it has terminated (upstream's `QuotaV1Pod`).
fn pod_counts(pod: &Value) -> bool {
    !matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// A container's `resources.<kind>.<resource>`.
fn container_amount(c: &Value, kind: &str, resource: &str) -> Option<Amount> {
    c["resources"][kind][resource]
        .as_str()
        .and_then(Amount::parse)
}

/// A pod's effective requests and limits: the containers' sum, at least each init container's,
/// plus the pod overhead — as upstream's `PodRequests`/`PodLimits`.
fn pod_compute(pod: &Value, usage: &mut Usage) {
    let spec = &pod["spec"];
    let containers = spec["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let inits = spec["initContainers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for kind in ["requests", "limits"] {
        let named: std::collections::BTreeSet<&str> = containers
            .iter()
            .chain(inits)
            .filter_map(|c| c["resources"][kind].as_object())
            .flat_map(|m| m.keys().map(String::as_str))
            .collect();
        for r in named {
            let sum: Option<Amount> = containers
                .iter()
                .filter_map(|c| container_amount(c, kind, r))
                .reduce(|a, b| a + b);
            let init = inits
                .iter()
                .filter_map(|c| container_amount(c, kind, r))
                .max();
            let Some(mut amount) = sum.max(init) else {
                continue;
            };
            if let Some(overhead) = spec["overhead"][r].as_str().and_then(Amount::parse) {
                amount = amount + overhead;
            }
            // Upstream's podComputeUsageHelper: cpu, memory and ephemeral-storage by both names
            // (the bare one is the request), hugepages' and extended resources' requests.
            if POD_COMPUTE.contains(&r) {
                usage.insert(format!("{kind}.{r}"), amount);
                if kind == "requests" {
                    usage.insert(r.to_string(), amount);
                }
            } else if kind == "requests" && r.starts_with("hugepages-") {
                usage.insert(format!("requests.{r}"), amount);
                usage.insert(r.to_string(), amount);
            } else if kind == "requests" && is_extended_resource(r) {
                usage.insert(format!("requests.{r}"), amount);
            }
        }
    }
}

/// Upstream's `IsExtendedResourceName`: a domain-prefixed name outside kubernetes.io.
fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// For a pod under a quota tracking `tracked`, the resources some container leaves unstated, in
/// upstream's words (`must specify limits.cpu for: app; requests.memory for: app,sidecar`).
pub fn unstated(pod: &Value, tracked: &BTreeSet<String>) -> Option<String> {
    let required: Vec<&str> = MUST_SPECIFY
        .iter()
        .copied()
        .filter(|r| tracked.contains(*r))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let spec = &pod["spec"];
    for c in ["containers", "initContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
    {
        let mut own = Usage::new();
        pod_compute(&serde_json::json!({"spec": {"containers": [c]}}), &mut own);
        for r in &required {
            if !own.contains_key(*r) {
                let name = c["name"].as_str().unwrap_or("").to_string();
                missing.entry(r).or_default().insert(name);
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// Whether a quota's `spec.scopes` (and scopeSelector) admit `obj` of `group`/`resource`;
/// `None` when a scope is one kubeboot does not evaluate (the quota is then left alone).
pub fn scopes_match(quota: &Value, group: &str, resource: &str, obj: &Value) -> Option<bool> {
    let mut scopes: Vec<(String, Option<String>)> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(|s| (s.to_string(), None)))
        .collect();
    for e in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let scope = e["scopeName"].as_str().unwrap_or("").to_string();
        let op = e["operator"].as_str().unwrap_or("").to_string();
        scopes.push((scope, Some(op)));
    }
    if scopes.is_empty() {
        return Some(true);
    }
    let is_pod = group.is_empty() && resource == "pods";
    let mut all = true;
    for (scope, op) in scopes {
        if !matches!(op.as_deref(), None | Some("Exists")) {
            return None;
        }
        let holds = match scope.as_str() {
            "Terminating" => {
                is_pod
                    && obj
                        .pointer("/spec/activeDeadlineSeconds")
                        .is_some_and(|v| !v.is_null())
            }
            "NotTerminating" => {
                is_pod
                    && obj
                        .pointer("/spec/activeDeadlineSeconds")
                        .is_none_or(Value::is_null)
            }
            "BestEffort" | "NotBestEffort" => {
                // The QoS class: only cpu and memory count.
                let mut compute = Usage::new();
                pod_compute(obj, &mut compute);
                let best_effort = ![
                    "requests.cpu",
                    "requests.memory",
                    "limits.cpu",
                    "limits.memory",
                ]
                .iter()
                .any(|r| compute.contains_key(*r));
                is_pod && (best_effort == (scope == "BestEffort"))
            }
            _ => return None,
        };
        all &= holds;
    }
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn amounts(u: &Usage) -> BTreeMap<String, String> {
        u.iter().map(|(k, v)| (k.clone(), v.format(k))).collect()
    }

    #[test]
    fn pods_count_ephemeral_storage_hugepages_and_extended_resources_as_upstream() {
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"ephemeral-storage": "30Gi", "example.com/dongle": "2", "hugepages-2Mi": "4Mi"},
            "limits": {"ephemeral-storage": "40Gi", "example.com/dongle": "2", "hugepages-2Mi": "4Mi"}}}]}});
        let u = amounts(&usage("", "pods", &pod));
        assert_eq!(u["ephemeral-storage"], "30Gi");
        assert_eq!(u["requests.ephemeral-storage"], "30Gi");
        assert_eq!(u["limits.ephemeral-storage"], "40Gi");
        assert_eq!(u["requests.example.com/dongle"], "2");
        assert!(!u.contains_key("limits.example.com/dongle"));
        assert_eq!(u["requests.hugepages-2Mi"], "4Mi");
        for name in [
            "ephemeral-storage",
            "requests.example.com/dongle",
            "hugepages-2Mi",
        ] {
            assert_eq!(
                resource_of(name),
                Some((String::new(), "pods".into())),
                "{name}"
            );
        }
    }

    #[test]
    fn pods_count_requests_limits_and_init_containers_as_upstream() {
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "500m"}}}]}});
        let u = amounts(&usage("", "pods", &pod));
        assert_eq!(u["pods"], "1");
        assert_eq!(u["count/pods"], "1");
        assert_eq!(u["requests.cpu"], "500m");
        assert_eq!(u["cpu"], "500m");
        assert_eq!(u["requests.memory"], "128Mi");
        assert_eq!(u["limits.cpu"], "1");
        assert!(!u.contains_key("limits.memory"));
        let done = json!({"spec": pod["spec"], "status": {"phase": "Succeeded"}});
        assert!(usage("", "pods", &done).is_empty());
        let tracked: BTreeSet<String> =
            ["limits.cpu".to_string(), "requests.memory".to_string()].into();
        assert_eq!(
            unstated(&pod, &tracked).unwrap(),
            "must specify limits.cpu for: b,i; requests.memory for: i"
        );
    }

    #[test]
    fn services_claims_and_other_groups_are_counted_by_name() {
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        let u = amounts(&usage("", "services", &svc));
        assert_eq!(
            (u["services"].as_str(), u["services.nodeports"].as_str()),
            ("1", "2")
        );
        let pvc = json!({"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "5Gi"}}}});
        let u = amounts(&usage("", "persistentvolumeclaims", &pvc));
        assert_eq!(
            u["fast.storageclass.storage.k8s.io/requests.storage"],
            "5Gi"
        );
        let u = amounts(&usage("apps", "deployments", &json!({})));
        assert_eq!(
            u,
            BTreeMap::from([("count/deployments.apps".to_string(), "1".to_string())])
        );
        assert_eq!(
            resource_of("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        assert_eq!(
            resource_of("limits.memory"),
            Some(("".into(), "pods".into()))
        );
        assert_eq!(resource_of("nvidia.com/gpu"), None);
    }
}
