//! Pod binding, as upstream's `BindingREST`: how a scheduler places a pod. A POST of a Binding
//! to `pods/<name>/binding` (or to the legacy `bindings` resource, naming the pod in the
//! Binding's metadata) sets `spec.nodeName` once, copies the Binding's annotations onto the
//! pod and marks it `PodScheduled`. The pod is written straight to storage, as upstream's
//! `GuaranteedUpdate` does, so no field manager records the write.

use crate::registry::errors::{FieldError, GroupResource, aggregate};
use crate::registry::rest::{
    Context, Creater, SubresourceCreater, create_only_info, created_status,
};
use crate::registry::store::{UpdateTarget, WriteOptions, meta_str};
use crate::registry::{RegistryError, ResourceInfo, Store};
use k8s_openapi::api::core::v1::Binding;
use serde_json::{Value, json};
use std::sync::Arc;

/// What a binding writes of the pod: its node, its annotations and its conditions.
const BINDING: UpdateTarget = UpdateTarget::Subresource {
    name: "binding",
    owns: &[
        "/spec/nodeName",
        "/metadata/annotations",
        "/status/conditions",
    ],
};

/// `pods/binding`.
pub struct PodBinding;

#[async_trait::async_trait]
impl SubresourceCreater for PodBinding {
    async fn create(
        &self,
        ctx: &Context<'_>,
        pods: &Store,
        name: &str,
        binding: Value,
    ) -> Result<Value, RegistryError> {
        bind(ctx, pods, name, &binding).await
    }
}

/// The legacy `bindings` resource: the pod is the one the Binding names.
pub struct Bindings {
    pods: Arc<Store>,
    info: ResourceInfo,
}

impl Bindings {
    /// Binds the pods of `pods`.
    pub fn new(pods: Arc<Store>) -> Self {
        Self {
            pods,
            info: create_only_info::<Binding>(),
        }
    }
}

#[async_trait::async_trait]
impl Creater for Bindings {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    async fn create(&self, ctx: &Context<'_>, binding: Value) -> Result<Value, RegistryError> {
        let name = meta(&binding, "name").to_string();
        if name.is_empty() {
            return Err(RegistryError::BadRequest("Name parameter required.".into()));
        }
        bind(ctx, &self.pods, &name, &binding).await
    }
}

fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta_str(obj, field).unwrap_or("")
}

/// Upstream's `ValidatePodBinding`.
fn validate(binding: &Value) -> Vec<FieldError> {
    let target = |field: &str| {
        binding
            .pointer(&format!("/target/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let mut errors = Vec::new();
    let kind = target("kind");
    if !kind.is_empty() && kind != "Node" {
        errors.push(FieldError::not_supported(
            "target.kind",
            kind,
            &["Node", "<empty>"],
        ));
    }
    if target("name").is_empty() {
        errors.push(FieldError::required("target.name", ""));
    }
    errors
}

/// Binds pod `name` of `pods` as `binding` says; answers upstream's Success Status.
async fn bind(
    ctx: &Context<'_>,
    pods: &Store,
    name: &str,
    binding: &Value,
) -> Result<Value, RegistryError> {
    if meta(binding, "name") != name {
        return Err(RegistryError::BadRequest(
            "name in URL does not match name in Binding object".into(),
        ));
    }
    let errors = validate(binding);
    if !errors.is_empty() {
        // Upstream returns the aggregate as a plain error: a 500 with no reason.
        return Err(RegistryError::Unknown(aggregate(&errors)));
    }
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (uid, rv) = (meta(binding, "uid"), meta(binding, "resourceVersion"));
    let annotations = binding.pointer("/metadata/annotations").cloned();
    let conflict = |message: String| RegistryError::Conflict {
        resource: GroupResource {
            group: String::new(),
            resource: "pods/binding".into(),
        },
        name: name.into(),
        message,
    };
    let precondition = |message: String| RegistryError::Conflict {
        resource: pods.info().group_resource(),
        name: name.into(),
        message,
    };
    let opts = WriteOptions {
        dry_run: ctx.dry_run,
        direct: true,
        ..WriteOptions::default()
    };
    pods.update_with(ctx.namespace, name, BINDING, opts, |pod: &Value| {
        let (actual_uid, actual_rv) = (meta(pod, "uid"), meta(pod, "resourceVersion"));
        if !uid.is_empty() && uid != actual_uid {
            return Err(precondition(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual_uid}"
            )));
        }
        if !rv.is_empty() && rv != actual_rv {
            return Err(precondition(format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual_rv}"
            )));
        }
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(conflict(format!(
                "pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        let bound = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !bound.is_empty() {
            return Err(conflict(format!(
                "pod {name} is already assigned to node {bound:?}"
            )));
        }
        let gated = pod
            .pointer("/spec/schedulingGates")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty());
        if gated {
            return Err(conflict(format!(
                "pod {name} has non-empty .spec.schedulingGates"
            )));
        }
        let mut pod = pod.clone();
        pod["spec"]["nodeName"] = json!(node);
        if let Some(Value::Object(added)) = &annotations {
            let meta = &mut pod["metadata"];
            if !meta.get("annotations").is_some_and(Value::is_object) {
                meta["annotations"] = json!({});
            }
            for (k, v) in added {
                meta["annotations"][k] = v.clone();
            }
        }
        scheduled(&mut pod);
        Ok(pod)
    })
    .await?;
    Ok(created_status())
}

/// Marks the pod PodScheduled=True.
fn scheduled(pod: &mut Value) {
    let condition = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null});
    super::update_pod_condition(pod, condition);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_validated_as_upstream() {
        let ok = json!({"metadata": {"name": "p"}, "target": {"name": "n1"}});
        assert!(validate(&ok).is_empty());
        let bad = json!({"metadata": {"name": "p"}, "target": {"kind": "Pod"}});
        assert_eq!(
            aggregate(&validate(&bad)),
            r#"[target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", target.name: Required value]"#
        );
    }

    #[test]
    fn scheduling_marks_the_pod_scheduled_keeping_a_true_conditions_transition() {
        let mut pod = json!({"status": {"phase": "Pending"}});
        scheduled(&mut pod);
        let c = &pod["status"]["conditions"][0];
        assert_eq!(
            (&c["type"], &c["status"]),
            (&json!("PodScheduled"), &json!("True"))
        );
        assert!(c["lastTransitionTime"].is_string());

        let mut unschedulable = json!({"status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": "2020-01-01T00:00:00Z"}
        ]}});
        scheduled(&mut unschedulable);
        let c = &unschedulable["status"]["conditions"][0];
        assert_eq!(c["status"], "True");
        assert!(c.get("reason").is_none());
        assert_ne!(c["lastTransitionTime"], "2020-01-01T00:00:00Z");

        let mut already = json!({"status": {"conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}
        ]}});
        scheduled(&mut already);
        assert_eq!(
            already["status"]["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
    }
}
