//! The RuntimeClass admission plugin, as upstream's: a new pod naming a RuntimeClass gets its
//! pod overhead and its scheduling constraints (node selector and tolerations); a class that
//! does not exist, an overhead the pod states otherwise, or a conflicting node selector is
//! refused in upstream's words.

use super::{Attributes, Mutating, Operation, Result};
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::sync::Arc;

/// The plugin, reading RuntimeClasses from their store.
pub struct RuntimeClass {
    classes: Arc<Store>,
}

impl RuntimeClass {
    /// Reads RuntimeClasses from `classes`.
    pub fn new(classes: Arc<Store>) -> Self {
        Self { classes }
    }
}

#[async_trait::async_trait]
impl Mutating for RuntimeClass {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        if !a.writes("", "pods") {
            return Ok(());
        }
        let Some(pod) = object else { return Ok(()) };
        let Some(name) = pod["spec"]["runtimeClassName"].as_str().map(str::to_string) else {
            if !pod["spec"]["overhead"].is_null() {
                return Err(a.forbidden(
                    "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead".into(),
                ));
            }
            return Ok(());
        };
        let class = match self.classes.get(None, &name).await {
            Ok(c) => c,
            Err(RegistryError::NotFound { .. }) => {
                return Err(a.forbidden(format!("pod rejected: RuntimeClass {name:?} not found")));
            }
            Err(e) => return Err(e),
        };
        let spec = &mut pod["spec"];
        let fixed = &class["overhead"]["podFixed"];
        if !fixed.is_null() {
            if !spec["overhead"].is_null() && spec["overhead"] != *fixed {
                return Err(a.forbidden(
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
                        .into(),
                ));
            }
            spec["overhead"] = fixed.clone();
        } else if !spec["overhead"].is_null() {
            return Err(a.forbidden(
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead".into(),
            ));
        }
        let scheduling = &class["scheduling"];
        for (key, value) in scheduling["nodeSelector"].as_object().into_iter().flatten() {
            let own = &spec["nodeSelector"][key];
            if !own.is_null() && own != value {
                return Err(a.forbidden(format!(
                    "conflict: runtimeClass.scheduling.nodeSelector[{key}] = {}; pod.spec.nodeSelector[{key}] = {}",
                    value.as_str().unwrap_or(""),
                    own.as_str().unwrap_or("")
                )));
            }
        }
        for (key, value) in scheduling["nodeSelector"].as_object().into_iter().flatten() {
            if !spec["nodeSelector"].is_object() {
                spec["nodeSelector"] = json!({});
            }
            spec["nodeSelector"][key] = value.clone();
        }
        for t in scheduling["tolerations"].as_array().into_iter().flatten() {
            if !spec["tolerations"].is_array() {
                spec["tolerations"] = json!([]);
            }
            let tolerations = spec["tolerations"].as_array_mut().expect("an array");
            if !tolerations.contains(t) {
                tolerations.push(t.clone());
            }
        }
        Ok(())
    }
}
