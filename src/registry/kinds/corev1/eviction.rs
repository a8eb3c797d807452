//! Pod eviction (`pods/<name>/eviction`, policy/v1 Eviction), as upstream's `EvictionREST`: a
//! delete that honours the pod's PodDisruptionBudget. A pod that is not running (pending,
//! finished or already terminating) goes at once; otherwise its budget's `disruptionsAllowed`
//! is decremented with compare-and-swap and the pod recorded in `disruptedPods` before the pod
//! is marked `DisruptionTarget` and deleted, and a budget that allows nothing is a 429.

use crate::registry::errors::GroupResource;
use crate::registry::rest::{Context, SubresourceCreater, created_status};
use crate::registry::selectors::label_selector_matches;
use crate::registry::store::{
    DeleteParams, ListParams, UpdateTarget, WriteOptions, labels_of, meta_str, now_rfc3339,
};
use crate::registry::{RegistryError, Store};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use serde_json::{Value, json};
use std::sync::Arc;

/// Upstream's `MaxDisruptedPodSize`: evictions the disruption controller has yet to confirm.
const MAX_DISRUPTED_PODS: usize = 2000;
/// Upstream's `EvictionsRetry`: attempts at a conflicting budget update.
const RETRIES: usize = 20;
/// The cause type upstream's 429s carry.
const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";
/// The message of every refusal for the budget's sake.
const WOULD_VIOLATE: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// `pods/eviction`, reading and updating the PodDisruptionBudgets of `pdbs`.
pub struct PodEviction {
    pdbs: Arc<Store>,
}

impl PodEviction {
    /// Evicts pods, honouring the budgets in `pdbs`.
    pub fn new(pdbs: Arc<Store>) -> Self {
        Self { pdbs }
    }
}

fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta_str(obj, field).unwrap_or("")
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// Upstream's `canIgnorePDB`: a pod that is not running disrupts nothing.
fn can_ignore_budget(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || terminating(pod)
}

/// Upstream's `shouldEnforceResourceVersion`.
fn enforces_resource_version(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !terminating(pod)
}

/// Upstream's `podutil.IsPodReady`.
fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn too_many_requests(retry_after_seconds: u32, cause: String) -> RegistryError {
    RegistryError::TooManyRequests {
        message: WOULD_VIOLATE.into(),
        retry_after_seconds,
        causes: vec![(DISRUPTION_BUDGET_CAUSE.into(), cause)],
    }
}

/// Upstream's `createTooManyRequestsError`: the budget has not caught up with its spec.
fn still_processing(pdb: &str) -> RegistryError {
    too_many_requests(
        10,
        format!("The disruption budget {pdb} is still being processed by the server."),
    )
}

#[async_trait::async_trait]
impl SubresourceCreater for PodEviction {
    async fn create(
        &self,
        ctx: &Context<'_>,
        pods: &Store,
        name: &str,
        eviction: Value,
    ) -> Result<Value, RegistryError> {
        if meta(&eviction, "name") != name {
            return Err(RegistryError::BadRequest(
                "name in URL does not match name in Eviction object".into(),
            ));
        }
        let options: DeleteOptions = match eviction.get("deleteOptions") {
            Some(o) if !o.is_null() => serde_json::from_value(o.clone())
                .map_err(|e| RegistryError::BadRequest(format!("decoding deleteOptions: {e}")))?,
            _ => DeleteOptions::default(),
        };
        let dry_run = ctx.dry_run
            || options
                .dry_run
                .as_ref()
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        let requested_rv = options
            .preconditions
            .as_ref()
            .and_then(|p| p.resource_version.clone());
        let params = DeleteParams {
            precondition_uid: options.preconditions.as_ref().and_then(|p| p.uid.clone()),
            precondition_resource_version: requested_rv.clone(),
            propagation_policy: options.propagation_policy.clone(),
            grace_period_seconds: options.grace_period_seconds,
            dry_run,
            admission: None,
        };
        let ns = ctx.namespace;

        // A pod that is not running goes without asking its budget; a conflict (the pod
        // changed under a resourceVersion precondition we added) is retried, as upstream.
        let mut pod = Value::Null;
        for attempt in 1..=RETRIES {
            pod = pods.get(ns, name).await?;
            if !can_ignore_budget(&pod) {
                break;
            }
            let mut params = params.clone();
            if enforces_resource_version(&pod) && requested_rv.is_none() {
                params.precondition_resource_version = Some(meta(&pod, "resourceVersion").into());
            }
            match disrupt_and_delete(pods, ns, name, &params).await {
                Err(RegistryError::Conflict { .. })
                    if requested_rv.is_none() && attempt < RETRIES =>
                {
                    continue;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(created_status()),
            }
        }

        let namespace = meta(&pod, "namespace").to_string();
        let labels = labels_of(&pod);
        let budgets: Vec<Value> = self
            .pdbs
            .list(Some(&namespace), &ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|pdb| {
                let budget: Result<PodDisruptionBudget, _> = serde_json::from_value(pdb.clone());
                budget
                    .ok()
                    .and_then(|b| b.spec?.selector)
                    .is_some_and(|s| label_selector_matches(&s, &labels))
            })
            .collect();
        let mut unhealthy_may_go = false;
        match budgets.as_slice() {
            [] => {}
            [_, _, ..] => {
                // Upstream answers this Status as its result, code 500 and no reason.
                return Err(RegistryError::Unknown(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
                ));
            }
            [budget] => {
                let pdb_name = meta(budget, "name").to_string();
                let status = |field: &str| {
                    budget
                        .pointer(&format!("/status/{field}"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                };
                if !ready(&pod) {
                    let always_allow = budget
                        .pointer("/spec/unhealthyPodEvictionPolicy")
                        .and_then(Value::as_str)
                        == Some("AlwaysAllow");
                    let desired = status("desiredHealthy");
                    unhealthy_may_go =
                        always_allow || (status("currentHealthy") >= desired && desired > 0);
                }
                if !unhealthy_may_go {
                    self.decrement(&namespace, name, &pdb_name, dry_run).await?;
                }
                if unhealthy_may_go {
                    let mut params = params.clone();
                    params.precondition_resource_version =
                        Some(meta(&pod, "resourceVersion").into());
                    return match disrupt_and_delete(pods, ns, name, &params).await {
                        Err(RegistryError::Conflict { .. }) if requested_rv.is_none() => {
                            Err(still_processing(&pdb_name))
                        }
                        Err(e) => Err(e),
                        Ok(()) => Ok(created_status()),
                    };
                }
            }
        }
        disrupt_and_delete(pods, ns, name, &params).await?;
        Ok(created_status())
    }
}

impl PodEviction {
    /// Upstream's `checkAndDecrement`, retried on conflict against a fresh read of the budget.
    async fn decrement(
        &self,
        ns: &str,
        pod: &str,
        pdb: &str,
        dry_run: bool,
    ) -> Result<(), RegistryError> {
        let status_target = UpdateTarget::Subresource {
            name: "status",
            owns: &["/status"],
        };
        let opts = WriteOptions {
            dry_run,
            ..WriteOptions::default()
        };
        let mut last = None;
        for _ in 0..RETRIES {
            let budget = self.pdbs.get(Some(ns), pdb).await?;
            let decremented = checked_decrement(&budget, pod, dry_run)?;
            if dry_run {
                return Ok(());
            }
            // Compare-and-swap: the update carries the resourceVersion that was read.
            match self
                .pdbs
                .update(Some(ns), pdb, decremented, status_target, opts.clone())
                .await
            {
                Err(e @ RegistryError::Conflict { .. }) => last = Some(e),
                Err(e) => return Err(e),
                Ok(_) => return Ok(()),
            }
        }
        Err(last.unwrap_or_else(|| still_processing(pdb)))
    }
}

/// The budget with one disruption taken for `pod`, or why it allows none.
fn checked_decrement(budget: &Value, pod: &str, dry_run: bool) -> Result<Value, RegistryError> {
    let name = meta(budget, "name");
    let status = |field: &str| {
        budget
            .pointer(&format!("/status/{field}"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let generation = budget
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if status("observedGeneration") < generation {
        return Err(still_processing(name));
    }
    let forbidden = |message: &str| RegistryError::Forbidden {
        resource: GroupResource {
            group: "policy".into(),
            resource: "poddisruptionbudget".into(),
        },
        name: name.into(),
        message: message.into(),
        cause: None,
    };
    let allowed = status("disruptionsAllowed");
    if allowed < 0 {
        return Err(forbidden("pdb disruptions allowed is negative"));
    }
    let disrupted = budget
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(forbidden(
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        let condition = budget
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "DisruptionAllowed");
        let field = |c: &Value, f: &str| c[f].as_str().unwrap_or("").to_string();
        let failed =
            condition.filter(|c| c["status"] == "False" && !field(c, "message").is_empty());
        let (current, desired) = (status("currentHealthy"), status("desiredHealthy"));
        let cause = match failed {
            Some(c) if field(c, "reason") == "SyncFailed" => format!(
                "The disruption budget {name} does not allow evicting pods currently because it failed sync: {}",
                field(c, "message")
            ),
            _ if current <= desired => format!(
                "The disruption budget {name} needs {desired} healthy pods and has {current} currently"
            ),
            Some(c) => format!(
                "The disruption budget {name} does not allow evicting pods currently ({}): {}",
                field(c, "reason"),
                field(c, "message")
            ),
            None => format!("The disruption budget {name} does not allow evicting pods currently"),
        };
        return Err(too_many_requests(0, cause));
    }
    let mut budget = budget.clone();
    budget["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        insufficient_pods(&mut budget);
    }
    if !dry_run {
        if !budget["status"]["disruptedPods"].is_object() {
            budget["status"]["disruptedPods"] = json!({});
        }
        budget["status"]["disruptedPods"][pod] = json!(now_rfc3339());
    }
    Ok(budget)
}

/// Upstream's `UpdateDisruptionAllowedCondition` once no disruption is left: the
/// DisruptionAllowed condition False with reason InsufficientPods (`meta.SetStatusCondition`).
fn insufficient_pods(budget: &mut Value) {
    let observed = budget["status"]["observedGeneration"].clone();
    let status = &mut budget["status"];
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conditions = status["conditions"]
        .as_array_mut()
        .expect("conditions were made an array");
    let now = now_rfc3339();
    match conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionAllowed")
    {
        Some(c) => {
            if c["status"] != "False" {
                c["status"] = json!("False");
                c["lastTransitionTime"] = json!(now);
            }
            c["reason"] = json!("InsufficientPods");
            c["message"] = json!("");
            c["observedGeneration"] = observed;
        }
        None => conditions.push(json!({
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "InsufficientPods",
            "message": "",
            "observedGeneration": observed,
            "lastTransitionTime": now,
        })),
    }
}

/// Upstream's `addConditionAndDeletePod`: the pod is marked `DisruptionTarget` (unless dry
/// run), then deleted with the eviction's options.
async fn disrupt_and_delete(
    pods: &Store,
    ns: Option<&str>,
    name: &str,
    params: &DeleteParams<'_>,
) -> Result<(), RegistryError> {
    let mut params = params.clone();
    if !params.dry_run {
        let status_target = UpdateTarget::Subresource {
            name: "status",
            owns: &["/status/conditions"],
        };
        let conflict = |message: String| RegistryError::Conflict {
            resource: GroupResource {
                group: String::new(),
                resource: "Pod".into(),
            },
            name: name.into(),
            message,
        };
        let updated = pods
            .update_with(ns, name, status_target, WriteOptions::default(), |pod: &Value| {
                if let Some(uid) = params.precondition_uid.as_deref()
                    && !uid.is_empty()
                    && uid != meta(pod, "uid")
                {
                    return Err(conflict(format!(
                        "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                        meta(pod, "uid")
                    )));
                }
                if let Some(rv) = params.precondition_resource_version.as_deref()
                    && !rv.is_empty()
                    && rv != meta(pod, "resourceVersion")
                {
                    return Err(conflict(format!(
                        "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                        meta(pod, "resourceVersion")
                    )));
                }
                let mut pod = pod.clone();
                disruption_target(&mut pod);
                Ok(pod)
            })
            .await?;
        if params.precondition_resource_version.is_some() {
            params.precondition_resource_version =
                Some(meta(&updated.value, "resourceVersion").to_string());
        }
    }
    pods.delete(ns, name, &params).await.map(drop)
}

/// Marks the pod DisruptionTarget=True, reason EvictionByEvictionAPI.
fn disruption_target(pod: &mut Value) {
    let condition = json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
        "lastProbeTime": null,
    });
    super::update_pod_condition(pod, condition);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(allowed: i64, current: i64, desired: i64) -> Value {
        json!({
            "metadata": {"name": "web", "generation": 1},
            "status": {
                "observedGeneration": 1,
                "disruptionsAllowed": allowed,
                "currentHealthy": current,
                "desiredHealthy": desired,
                "expectedPods": 3,
            }
        })
    }

    fn refusal(e: RegistryError) -> (String, u32, Vec<(String, String)>) {
        match e {
            RegistryError::TooManyRequests {
                message,
                retry_after_seconds,
                causes,
            } => (message, retry_after_seconds, causes),
            other => panic!("not a 429: {other:?}"),
        }
    }

    #[test]
    fn a_budget_is_decremented_and_the_pod_recorded_until_none_is_left() {
        let once = checked_decrement(&budget(2, 1, 1), "p1", false).unwrap();
        assert_eq!(once["status"]["disruptionsAllowed"], 1);
        assert!(once["status"]["disruptedPods"]["p1"].is_string());
        assert!(once["status"].get("conditions").is_none());

        let last = checked_decrement(&once, "p2", false).unwrap();
        assert_eq!(last["status"]["disruptionsAllowed"], 0);
        let c = &last["status"]["conditions"][0];
        assert_eq!(
            (&c["type"], &c["status"], &c["reason"]),
            (
                &json!("DisruptionAllowed"),
                &json!("False"),
                &json!("InsufficientPods")
            )
        );

        let (message, retry, causes) = refusal(checked_decrement(&last, "p3", false).unwrap_err());
        assert_eq!(message, WOULD_VIOLATE);
        assert_eq!(retry, 0);
        assert_eq!(
            causes,
            [(
                "DisruptionBudget".to_string(),
                "The disruption budget web needs 1 healthy pods and has 1 currently".to_string()
            )]
        );

        let mut healthy = last.clone();
        healthy["status"]["currentHealthy"] = json!(3);
        let (_, _, causes) = refusal(checked_decrement(&healthy, "p3", false).unwrap_err());
        assert_eq!(
            causes[0].1,
            "The disruption budget web does not allow evicting pods currently"
        );

        // A dry run takes the disruption without recording the pod.
        let dry = checked_decrement(&budget(1, 3, 2), "p1", true).unwrap();
        assert!(dry["status"].get("disruptedPods").is_none());
    }

    #[test]
    fn a_budget_behind_its_spec_or_negative_refuses_as_upstream() {
        let mut behind = budget(1, 3, 2);
        behind["metadata"]["generation"] = json!(2);
        let (_, retry, causes) = refusal(checked_decrement(&behind, "p", false).unwrap_err());
        assert_eq!(retry, 10);
        assert_eq!(
            causes[0].1,
            "The disruption budget web is still being processed by the server."
        );
        let negative = checked_decrement(&budget(-1, 3, 2), "p", false).unwrap_err();
        assert_eq!(
            negative.to_string(),
            r#"poddisruptionbudget.policy "web" is forbidden: pdb disruptions allowed is negative"#
        );
    }
}
