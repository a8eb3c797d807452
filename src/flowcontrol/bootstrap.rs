//! Upstream's bootstrap configuration (`k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap`): the
//! mandatory objects every server needs (`exempt`, `catch-all`) and the suggested ones a fresh
//! cluster starts with, exactly as upstream writes them.

use serde_json::{Value, json};

/// The annotation saying whether the server keeps an object's spec at its bootstrap value.
pub const AUTO_UPDATE_ANNOTATION: &str = "apf.kubernetes.io/autoupdate-spec";
/// The exempt priority level's (and flow schema's) name.
pub const EXEMPT: &str = "exempt";
/// The catch-all priority level's (and flow schema's) name.
pub const CATCH_ALL: &str = "catch-all";

/// Every rule's wildcard.
const ALL: &str = "*";

/// A bootstrap object: its name and spec.
pub struct Bootstrap {
    /// `metadata.name`.
    pub name: &'static str,
    /// `spec`.
    pub spec: Value,
}

impl Bootstrap {
    /// The whole object, annotated for auto-update as upstream creates it.
    pub fn object(&self) -> Value {
        json!({
            "metadata": {
                "name": self.name,
                "annotations": {AUTO_UPDATE_ANNOTATION: "true"},
            },
            "spec": self.spec,
        })
    }
}

fn limited(shares: i32, lendable: i32, queuing: Option<(i32, i32, i32)>) -> Value {
    let limit_response = match queuing {
        Some((queues, hand_size, queue_length_limit)) => json!({
            "type": "Queue",
            "queuing": {"queues": queues, "handSize": hand_size, "queueLengthLimit": queue_length_limit},
        }),
        None => json!({"type": "Reject"}),
    };
    json!({
        "type": "Limited",
        "limited": {
            "nominalConcurrencyShares": shares,
            "lendablePercent": lendable,
            "limitResponse": limit_response,
        },
    })
}

fn level(name: &'static str, spec: Value) -> Bootstrap {
    Bootstrap { name, spec }
}

/// The mandatory priority levels: `catch-all` and `exempt`.
pub fn mandatory_priority_levels() -> Vec<Bootstrap> {
    vec![
        level(CATCH_ALL, limited(5, 0, None)),
        level(
            EXEMPT,
            json!({"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}),
        ),
    ]
}

/// The suggested priority levels.
pub fn suggested_priority_levels() -> Vec<Bootstrap> {
    vec![
        level("system", limited(30, 33, Some((64, 6, 50)))),
        level("node-high", limited(40, 25, Some((64, 6, 50)))),
        level("leader-election", limited(10, 0, Some((16, 4, 50)))),
        level("workload-high", limited(40, 50, Some((128, 6, 50)))),
        level("workload-low", limited(100, 90, Some((128, 6, 50)))),
        level("global-default", limited(20, 50, Some((128, 6, 50)))),
    ]
}

fn groups(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| json!({"kind": "Group", "group": {"name": n}}))
        .collect()
}

fn users(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| json!({"kind": "User", "user": {"name": n}}))
        .collect()
}

fn kube_system_service_accounts() -> Vec<Value> {
    vec![
        json!({"kind": "ServiceAccount", "serviceAccount": {"name": ALL, "namespace": "kube-system"}}),
    ]
}

fn resource_rule(
    verbs: &[&str],
    groups: &[&str],
    resources: &[&str],
    cluster_scope: bool,
) -> Value {
    let mut rule = json!({
        "verbs": verbs,
        "apiGroups": groups,
        "resources": resources,
        "namespaces": [ALL],
    });
    if cluster_scope {
        rule["clusterScope"] = json!(true);
    }
    rule
}

fn everything() -> (Vec<Value>, Vec<Value>) {
    (
        vec![resource_rule(&[ALL], &[ALL], &[ALL], true)],
        vec![json!({"verbs": [ALL], "nonResourceURLs": [ALL]})],
    )
}

fn schema(
    name: &'static str,
    level: &str,
    precedence: i32,
    distinguisher: Option<&str>,
    subjects: Vec<Value>,
    (resource_rules, non_resource_rules): (Vec<Value>, Vec<Value>),
) -> Bootstrap {
    let mut rule = json!({"subjects": subjects});
    if !resource_rules.is_empty() {
        rule["resourceRules"] = json!(resource_rules);
    }
    if !non_resource_rules.is_empty() {
        rule["nonResourceRules"] = json!(non_resource_rules);
    }
    let mut spec = json!({
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": [rule],
    });
    if let Some(d) = distinguisher {
        spec["distinguisherMethod"] = json!({"type": d});
    }
    Bootstrap { name, spec }
}

const BY_USER: Option<&str> = Some("ByUser");
const BY_NAMESPACE: Option<&str> = Some("ByNamespace");
const EVERYONE: &[&str] = &["system:unauthenticated", "system:authenticated"];

/// The mandatory flow schemas: `exempt` (system:masters) and `catch-all`.
pub fn mandatory_flow_schemas() -> Vec<Bootstrap> {
    vec![
        schema(
            EXEMPT,
            EXEMPT,
            1,
            None,
            groups(&["system:masters"]),
            everything(),
        ),
        schema(
            CATCH_ALL,
            CATCH_ALL,
            10000,
            BY_USER,
            groups(EVERYONE),
            everything(),
        ),
    ]
}

/// The suggested flow schemas.
pub fn suggested_flow_schemas() -> Vec<Bootstrap> {
    let controllers = ["system:kube-controller-manager", "system:kube-scheduler"];
    let mut election = users(&controllers);
    election.extend(kube_system_service_accounts());
    vec![
        schema(
            "system-nodes",
            "system",
            500,
            BY_USER,
            groups(&["system:nodes"]),
            everything(),
        ),
        schema(
            "system-node-high",
            "node-high",
            400,
            BY_USER,
            groups(&["system:nodes"]),
            (
                vec![
                    resource_rule(&[ALL], &[""], &["nodes", "nodes/status"], true),
                    resource_rule(&[ALL], &["coordination.k8s.io"], &["leases"], false),
                ],
                vec![],
            ),
        ),
        schema(
            "probes",
            EXEMPT,
            2,
            None,
            groups(EVERYONE),
            (
                vec![],
                vec![
                    json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}),
                ],
            ),
        ),
        schema(
            "system-leader-election",
            "leader-election",
            100,
            BY_USER,
            election,
            (
                vec![resource_rule(
                    &["get", "create", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                    false,
                )],
                vec![],
            ),
        ),
        schema(
            "kube-controller-manager",
            "workload-high",
            800,
            BY_NAMESPACE,
            users(&[controllers[0]]),
            everything(),
        ),
        schema(
            "kube-scheduler",
            "workload-high",
            800,
            BY_NAMESPACE,
            users(&[controllers[1]]),
            everything(),
        ),
        schema(
            "kube-system-service-accounts",
            "workload-high",
            900,
            BY_NAMESPACE,
            kube_system_service_accounts(),
            everything(),
        ),
        schema(
            "service-accounts",
            "workload-low",
            9000,
            BY_USER,
            groups(&["system:serviceaccounts"]),
            everything(),
        ),
        schema(
            "global-default",
            "global-default",
            9900,
            BY_USER,
            groups(EVERYONE),
            everything(),
        ),
    ]
}

/// `v` as Go's semantic equality sees it: zero values (false, 0, "", empty lists and maps,
/// null) are the same as absent.
pub fn semantic(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !is_zero(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::flowcontrol::v1::{FlowSchema, PriorityLevelConfiguration};

    #[test]
    fn bootstrap_objects_decode_as_their_kinds_and_name_existing_levels() {
        let levels: Vec<_> = mandatory_priority_levels()
            .into_iter()
            .chain(suggested_priority_levels())
            .map(|b| serde_json::from_value::<PriorityLevelConfiguration>(b.object()).unwrap())
            .collect();
        assert_eq!(levels.len(), 8);
        for fs in mandatory_flow_schemas()
            .into_iter()
            .chain(suggested_flow_schemas())
        {
            let fs: FlowSchema = serde_json::from_value(fs.object()).unwrap();
            let spec = fs.spec.unwrap();
            assert!(
                levels
                    .iter()
                    .any(|l| l.metadata.name.as_deref()
                        == Some(&spec.priority_level_configuration.name)),
                "{:?}",
                fs.metadata.name
            );
        }
    }

    #[test]
    fn semantic_equality_ignores_zero_values() {
        assert_eq!(
            semantic(&json!({"a": false, "b": [], "c": {"d": 0, "e": "x"}})),
            json!({"c": {"e": "x"}})
        );
    }
}
