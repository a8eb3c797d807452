//! The `scale` subresource (upstream's per-kind ScaleREST): an `autoscaling/v1` Scale view of an
//! object's replicas and selector, and writes of `spec.replicas` through it.

use crate::endpoints::status::ApiError;
use crate::registry::selectors::label_selector_string;
use crate::registry::store::{UpdateTarget, WriteOptions};
use crate::registry::{FieldError, RegistryError, Store};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};

/// The group, version and kind of the Scale object, for patches of it.
pub(super) const SCALE_KIND: (&str, &str, &str) = ("autoscaling", "v1", "Scale");

/// The selector at `obj`'s selector path as a string: custom resources keep a serialized
/// selector there; built-in kinds a LabelSelector or (ReplicationControllers) a label map.
fn selector(obj: &Value, path: &str) -> String {
    match Some(path)
        .filter(|p| !p.is_empty())
        .and_then(|p| obj.pointer(p))
    {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(sel))
            if sel.contains_key("matchLabels") || sel.contains_key("matchExpressions") =>
        {
            serde_json::from_value::<LabelSelector>(Value::Object(sel.clone()))
                .map(|sel| label_selector_string(&sel))
                .unwrap_or_default()
        }
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// The `autoscaling/v1` Scale view of an object with a scale subresource.
pub(super) fn view(store: &Store, obj: &Value) -> Value {
    let paths = store
        .info()
        .scale
        .as_ref()
        .expect("scale subresource has paths");
    let selector = selector(obj, &paths.selector);
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut metadata = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            metadata[k] = v.clone();
        }
    }
    let mut status =
        json!({"replicas": obj.pointer(&paths.status_replicas).cloned().unwrap_or(json!(0))});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata,
        "spec": {"replicas": obj.pointer(&paths.spec_replicas).cloned().unwrap_or(json!(0))},
        "status": status,
    })
}

/// Writes `spec.replicas` from the Scale `desired_scale` makes of the current one (the
/// client's body, or the current Scale patched), with upstream's checks; returns the new Scale.
pub(super) async fn write(
    store: &Store,
    ns: Option<&str>,
    name: &str,
    desired_scale: impl Fn(&Value) -> Result<Value, ApiError>,
    opts: WriteOptions<'_>,
) -> Result<Value, ApiError> {
    let paths = store
        .info()
        .scale
        .as_ref()
        .expect("scale subresource has paths");
    let out = store
        .update_with(ns, name, UpdateTarget::Main, opts, |current| -> Result<Value, ApiError> {
            let scale = desired_scale(&view(store, current))?;
            if let Some(rv) = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str)
                && Some(rv) != current.pointer("/metadata/resourceVersion").and_then(Value::as_str)
            {
                return Err(RegistryError::Conflict {
                    resource: store.info().group_resource(),
                    name: name.into(),
                    message: "the object has been modified; please apply your changes to the latest version and try again".into(),
                }
                .into());
            }
            let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
            if replicas < 0 {
                return Err(RegistryError::Invalid {
                    group: "autoscaling".into(),
                    qualified_kind: "Scale.autoscaling".into(),
                    kind: "Scale".into(),
                    name: name.into(),
                    errors: vec![FieldError::invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
                }
                .into());
            }
            let mut next = current.clone();
            if let Some(slot) = next.pointer_mut(&paths.spec_replicas) {
                *slot = json!(replicas);
            } else if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), json!(replicas));
            }
            Ok(next)
        })
        .await?;
    Ok(view(store, &out.value))
}
