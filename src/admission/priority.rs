//! The Priority admission plugin, as upstream's: a new pod gets the priority (and preemption
//! policy) of the PriorityClass it names, or of the cluster's global default; a class that
//! does not exist, or a priority the pod states itself, is refused; and only one
//! PriorityClass may be the global default.

use super::{Attributes, Mutating, Operation, Result, Validating};
use crate::registry::store::ListParams;
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::sync::Arc;

/// The plugin, reading PriorityClasses from their store.
pub struct Priority {
    classes: Arc<Store>,
}

impl Priority {
    /// Reads PriorityClasses from `classes`.
    pub fn new(classes: Arc<Store>) -> Self {
        Self { classes }
    }

    /// The global default class, the newest when several claim it.
    async fn global_default(&self) -> Result<Option<Value>> {
        let classes = self.classes.list(None, &ListParams::default()).await?;
        Ok(classes
            .items
            .into_iter()
            .filter(|c| c["globalDefault"] == true)
            .max_by(|a, b| {
                let created = |c: &Value| {
                    c["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                };
                created(a).cmp(&created(b))
            }))
    }
}

#[async_trait::async_trait]
impl Mutating for Priority {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let Some(pod) = object.filter(|_| a.writes("", "pods")) else {
            return Ok(());
        };
        let named = pod["spec"]["priorityClassName"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let class = if named.is_empty() {
            self.global_default().await?
        } else {
            match self.classes.get(None, &named).await {
                Ok(c) => Some(c),
                Err(RegistryError::NotFound { .. }) => {
                    return Err(
                        a.forbidden(format!("no PriorityClass with name {named} was found"))
                    );
                }
                Err(e) => return Err(e),
            }
        };
        let (name, priority, preemption) = match &class {
            Some(c) => (
                c["metadata"]["name"].as_str().unwrap_or("").to_string(),
                c["value"].as_i64().unwrap_or(0),
                c["preemptionPolicy"]
                    .as_str()
                    .unwrap_or("PreemptLowerPriority")
                    .to_string(),
            ),
            None => (String::new(), 0, "PreemptLowerPriority".to_string()),
        };
        let spec = &mut pod["spec"];
        if let Some(given) = spec["priority"].as_i64()
            && given != priority
        {
            return Err(a.forbidden(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            )));
        }
        if let Some(given) = spec["preemptionPolicy"].as_str()
            && given != preemption
        {
            return Err(a.forbidden(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {preemption} from the given PriorityClass name"
            )));
        }
        if !name.is_empty() {
            spec["priorityClassName"] = json!(name);
        }
        spec["priority"] = json!(priority);
        spec["preemptionPolicy"] = json!(preemption);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Validating for Priority {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let Some(class) = object.filter(|_| a.writes("scheduling.k8s.io", "priorityclasses"))
        else {
            return Ok(());
        };
        if class["globalDefault"] != true {
            return Ok(());
        }
        if let Some(existing) = self.global_default().await? {
            let other = existing["metadata"]["name"].as_str().unwrap_or("");
            if other != a.name {
                return Err(a.forbidden(format!(
                    "PriorityClass {other} is already marked as default. Only one default can exist"
                )));
            }
        }
        Ok(())
    }
}

/// The PriorityClasses upstream's `scheduling/bootstrap-system-priority-classes` hook creates.
pub fn system_priority_classes() -> [Value; 2] {
    [
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "system-node-critical"}, "value": 2000001000,
            "description": "Used for system critical pods that must not be moved from their current node."}),
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "system-cluster-critical"}, "value": 2000000000,
            "description": "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."}),
    ]
}
