//! NamespaceLifecycle: namespaced objects may be created only in a namespace that exists and
//! is not terminating, and the system namespaces may never be deleted, as upstream's plugin of
//! the same name (a mutating plugin upstream, so it runs before validation).

use super::{Attributes, Mutating, Operation, Result};
use crate::registry::{RegistryError, Store};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::sync::Arc;

/// The plugin; it reads namespaces through their store.
pub struct NamespaceLifecycle {
    namespaces: Arc<Store>,
}

impl NamespaceLifecycle {
    /// A plugin reading `namespaces`.
    pub fn new(namespaces: Arc<Store>) -> Self {
        Self { namespaces }
    }
}

/// The two fields of a namespace this plugin reads.
#[derive(Deserialize)]
struct Lifecycle {
    #[serde(default)]
    metadata: LifecycleMeta,
    status: Option<LifecycleStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LifecycleMeta {
    deletion_timestamp: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct LifecycleStatus {
    phase: Option<String>,
}

impl Lifecycle {
    fn terminating(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
            || self.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
    }
}

/// Namespaces upstream never lets anyone delete.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

#[async_trait::async_trait]
impl Mutating for NamespaceLifecycle {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Delete)
    }

    async fn admit(&self, a: &Attributes<'_>, _object: Option<&mut Value>) -> Result {
        let info = a.resource;
        match a.operation {
            Operation::Delete
                if info.group.is_empty()
                    && info.resource == "namespaces"
                    && IMMORTAL_NAMESPACES.contains(&a.name) =>
            {
                Err(RegistryError::Forbidden {
                    resource: info.group_resource(),
                    name: a.name.into(),
                    message: "this namespace may not be deleted".into(),
                    cause: None,
                })
            }
            Operation::Create => {
                let Some(ns) = a.namespace.filter(|_| info.namespaced) else {
                    return Ok(());
                };
                let namespace: Lifecycle = self.namespaces.get_as(None, ns).await?;
                if namespace.terminating() {
                    return Err(RegistryError::Forbidden {
                        resource: info.group_resource(),
                        name: a.name.into(),
                        message: format!(
                            "unable to create new content in namespace {ns} because it is being terminated"
                        ),
                        cause: Some(Box::new((
                            "NamespaceTerminating".into(),
                            format!("namespace {ns} is being terminated"),
                            "metadata.namespace".into(),
                        ))),
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
