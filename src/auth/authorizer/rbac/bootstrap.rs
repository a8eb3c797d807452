//! Upstream's bootstrap policy and the controllers that keep RBAC objects right: the
//! `rbac/bootstrap-roles` post-start hook reconciles every ClusterRole, ClusterRoleBinding,
//! Role and RoleBinding kube-apiserver 1.33 creates (missing ones created, missing rules and
//! subjects added, objects annotated `rbac.authorization.kubernetes.io/autoupdate: "false"` left
//! alone), and the aggregation controller fills aggregated ClusterRoles from their selectors.
//!
//! The data is upstream's golden files (tests/testdata/rbac/), compacted into `policy.json`.

use super::RbacStores;
use super::rules::uncovered;
use crate::registry::selectors::label_selector_matches;
use crate::registry::store::{
    ListParams, UpdateTarget, WatchParams, WriteOptions, labels_of, meta_str,
};
use crate::registry::{RegistryError, Store};
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{AggregationRule, PolicyRule, Subject};
use serde_json::{Value, json};
use std::time::Duration;

/// The bootstrap policy: upstream's golden data.
const POLICY: &str = include_str!("policy.json");
/// The annotation that keeps reconciliation off an object.
const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// The policy's objects by kind.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Policy {
    cluster_roles: Vec<Value>,
    cluster_role_bindings: Vec<Value>,
    roles: Vec<Value>,
    role_bindings: Vec<Value>,
}

fn policy() -> Policy {
    serde_json::from_str(POLICY).expect("the embedded bootstrap policy parses")
}

/// The rules of the policy's ClusterRole `name` (the Node authorizer's node rules are
/// `system:node`'s).
pub fn cluster_role_rules(name: &str) -> Vec<PolicyRule> {
    policy()
        .cluster_roles
        .into_iter()
        .find(|r| meta_str(r, "name") == Some(name))
        .and_then(|r| serde_json::from_value(r["rules"].clone()).ok())
        .unwrap_or_default()
}

/// Whether reconciliation may change `existing`.
fn autoupdate(existing: &Value) -> bool {
    existing
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTOUPDATE))
        .and_then(Value::as_str)
        != Some("false")
}

/// `existing` with what `expected` has and it lacks, or `None` when nothing is missing:
/// upstream's `ReconcileRole` and `ReconcileRoleBinding` with `confirm` (add, never remove).
fn reconciled(existing: &Value, expected: &Value, binding: bool) -> Option<Value> {
    let mut next = existing.clone();
    let mut changed = false;
    for field in ["labels", "annotations"] {
        if let Some(Value::Object(want)) = expected.pointer(&format!("/metadata/{field}")) {
            for (k, v) in want {
                if next
                    .pointer(&format!("/metadata/{field}"))
                    .and_then(|m| m.get(k))
                    .is_none()
                {
                    if !next["metadata"][field].is_object() {
                        next["metadata"][field] = json!({});
                    }
                    next["metadata"][field][k] = v.clone();
                    changed = true;
                }
            }
        }
    }
    if binding {
        let have: Vec<Subject> =
            serde_json::from_value(existing["subjects"].clone()).unwrap_or_default();
        let want: Vec<Subject> =
            serde_json::from_value(expected["subjects"].clone()).unwrap_or_default();
        let missing: Vec<&Subject> = want.iter().filter(|s| !have.contains(s)).collect();
        if !missing.is_empty() {
            let mut all = have.clone();
            all.extend(missing.into_iter().cloned());
            next["subjects"] = serde_json::to_value(all).expect("subjects serialize");
            changed = true;
        }
    } else {
        let have: Vec<PolicyRule> =
            serde_json::from_value(existing["rules"].clone()).unwrap_or_default();
        let want: Vec<PolicyRule> =
            serde_json::from_value(expected["rules"].clone()).unwrap_or_default();
        let missing = uncovered(&have, &want);
        if !missing.is_empty() {
            let mut all = have;
            all.extend(missing);
            next["rules"] = serde_json::to_value(all).expect("rules serialize");
            changed = true;
        }
        if expected
            .get("aggregationRule")
            .is_some_and(|a| !a.is_null())
            && existing.get("aggregationRule").is_none_or(Value::is_null)
        {
            next["aggregationRule"] = expected["aggregationRule"].clone();
            changed = true;
        }
    }
    changed.then_some(next)
}

async fn ensure(store: &Store, expected: &Value, binding: bool) -> Result<(), String> {
    let name = meta_str(expected, "name").unwrap_or("");
    let ns = meta_str(expected, "namespace");
    let what = |e: RegistryError| format!("{} {name}: {e}", store.info().resource);
    match store.get(ns, name).await {
        Err(RegistryError::NotFound { .. }) => {
            match store
                .create(ns, expected.clone(), WriteOptions::default())
                .await
            {
                Ok(_) | Err(RegistryError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(what(e)),
            }
        }
        Err(e) => Err(what(e)),
        Ok(existing) if !autoupdate(&existing) => Ok(()),
        Ok(existing) => {
            // A binding whose roleRef changed cannot be updated: upstream recreates it.
            if binding && existing.get("roleRef") != expected.get("roleRef") {
                let params = crate::registry::store::DeleteParams::default();
                store.delete(ns, name, &params).await.map_err(what)?;
                return store
                    .create(ns, expected.clone(), WriteOptions::default())
                    .await
                    .map(drop)
                    .map_err(what);
            }
            match reconciled(&existing, expected, binding) {
                None => Ok(()),
                Some(next) => store
                    .update(ns, name, next, UpdateTarget::Main, WriteOptions::default())
                    .await
                    .map(drop)
                    .map_err(what),
            }
        }
    }
}

/// Reconciles the whole bootstrap policy into `stores` (the `rbac/bootstrap-roles` hook).
/// The objects are written concurrently: on a fresh store the backend commits them together
/// instead of one durable write after another, which made the first start 250 ms slower.
pub async fn reconcile(stores: &RbacStores) -> Result<(), String> {
    let policy = policy();
    let kinds = [
        (&stores.cluster_roles, &policy.cluster_roles, false),
        (
            &stores.cluster_role_bindings,
            &policy.cluster_role_bindings,
            true,
        ),
        (&stores.roles, &policy.roles, false),
        (&stores.role_bindings, &policy.role_bindings, true),
    ];
    let all = kinds.iter().flat_map(|(store, objects, binding)| {
        objects.iter().map(move |o| ensure(store, o, *binding))
    });
    futures::future::try_join_all(all).await.map(drop)
}

/// The rules an aggregated ClusterRole gathers from `roles`, as upstream's
/// clusterrole-aggregation controller: the rules of every ClusterRole its selectors match, in
/// name order, each once.
fn aggregated_rules(rule: &AggregationRule, roles: &[Value], own_name: &str) -> Vec<Value> {
    let mut matching: Vec<&Value> = roles
        .iter()
        .filter(|r| meta_str(r, "name") != Some(own_name))
        .filter(|r| {
            let labels = labels_of(r);
            rule.cluster_role_selectors
                .iter()
                .flatten()
                .any(|s| label_selector_matches(s, &labels))
        })
        .collect();
    matching.sort_by_key(|r| meta_str(r, "name").unwrap_or("").to_string());
    let mut rules: Vec<Value> = Vec::new();
    for role in matching {
        for r in role["rules"].as_array().into_iter().flatten() {
            if !rules.contains(r) {
                rules.push(r.clone());
            }
        }
    }
    rules
}

/// Brings every aggregated ClusterRole's rules up to date with the ClusterRoles it selects.
async fn aggregate_once(cluster_roles: &Store) -> Result<(), RegistryError> {
    let roles = cluster_roles
        .list(None, &ListParams::default())
        .await?
        .items;
    for role in &roles {
        let Some(rule) = role
            .get("aggregationRule")
            .filter(|a| !a.is_null())
            .and_then(|a| serde_json::from_value::<AggregationRule>(a.clone()).ok())
        else {
            continue;
        };
        let name = meta_str(role, "name").unwrap_or("").to_string();
        let want = Value::Array(aggregated_rules(&rule, &roles, &name));
        let have = role.get("rules").cloned().unwrap_or(Value::Null);
        let same = have == want || (have.is_null() && want.as_array().is_some_and(Vec::is_empty));
        if same {
            continue;
        }
        let mut next = role.clone();
        next["rules"] = want;
        match cluster_roles
            .update(
                None,
                &name,
                next,
                UpdateTarget::Main,
                WriteOptions::default(),
            )
            .await
        {
            Ok(_) | Err(RegistryError::Conflict { .. }) | Err(RegistryError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Upstream's clusterrole-aggregation controller: aggregates on every ClusterRole change.
pub async fn aggregate_forever(stores: RbacStores) {
    let roles = stores.cluster_roles;
    loop {
        match roles.watch(None, WatchParams::default()).await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    if !matches!(ev.kind, "ADDED" | "MODIFIED" | "DELETED") {
                        continue;
                    }
                    if let Err(e) = aggregate_once(&roles).await {
                        tracing::warn!(error = %e, "aggregating ClusterRoles failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "ClusterRole aggregation: watch failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_holds_upstreams_objects() {
        let p = policy();
        let names = |v: &[Value]| -> Vec<String> {
            v.iter()
                .map(|o| meta_str(o, "name").unwrap().to_string())
                .collect()
        };
        let roles = names(&p.cluster_roles);
        for name in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:discovery",
            "system:node",
            "system:controller:deployment-controller",
        ] {
            assert!(roles.iter().any(|r| r == name), "{name}");
        }
        assert!(!roles.iter().any(|r| r.contains("openshift")));
        assert!(
            names(&p.cluster_role_bindings)
                .iter()
                .any(|b| b == "system:public-info-viewer")
        );
        assert!(!p.roles.is_empty() && !p.role_bindings.is_empty());
    }

    #[test]
    fn reconciling_adds_what_is_missing_and_keeps_the_rest() {
        let expected = json!({"metadata": {"name": "r", "labels": {"a": "1"}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
        let existing = json!({"metadata": {"name": "r", "labels": {"a": "mine", "b": "2"}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                      {"apiGroups": ["x"], "resources": ["y"], "verbs": ["z"]}]});
        let next = reconciled(&existing, &expected, false).unwrap();
        assert_eq!(next["metadata"]["labels"], json!({"a": "mine", "b": "2"}));
        assert_eq!(next["rules"].as_array().unwrap().len(), 3);
        assert!(reconciled(&next, &expected, false).is_none());
        assert!(reconciled(&expected, &expected, false).is_none());
    }

    #[test]
    fn aggregation_gathers_the_selected_roles_rules_in_name_order() {
        let rule: AggregationRule = serde_json::from_value(json!({"clusterRoleSelectors": [
            {"matchLabels": {"agg": "view"}}]}))
        .unwrap();
        let roles = vec![
            json!({"metadata": {"name": "b", "labels": {"agg": "view"}}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["b"]}]}),
            json!({"metadata": {"name": "a", "labels": {"agg": "view"}}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["a"]}]}),
            json!({"metadata": {"name": "c"}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["c"]}]}),
        ];
        let rules = aggregated_rules(&rule, &roles, "view");
        let resources: Vec<&Value> = rules.iter().map(|r| &r["resources"][0]).collect();
        assert_eq!(resources, [&json!("a"), &json!("b")]);
    }
}
