//! NamespaceLifecycle: namespaced objects may be created only in a namespace that exists and
//! is not terminating, as upstream's plugin of the same name.

use crate::endpoints::rest::Admission;
use crate::endpoints::status::ApiError;
use crate::registry::errors::GroupResource;
use crate::registry::{RegistryError, Store};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde::de::IgnoredAny;
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

impl Admission for NamespaceLifecycle {
    fn admit_delete(&self, store: &Store, name: &str) -> Result<(), ApiError> {
        let info = store.info();
        if info.group.is_empty()
            && info.resource == "namespaces"
            && IMMORTAL_NAMESPACES.contains(&name)
        {
            return Err(RegistryError::Forbidden {
                resource: info.group_resource(),
                name: name.into(),
                message: "this namespace may not be deleted".into(),
                cause: None,
            }
            .into());
        }
        Ok(())
    }

    fn admit_create<'a>(
        &'a self,
        store: &'a Store,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let info = store.info();
            let Some(ns) = namespace.filter(|_| info.namespaced) else {
                return Ok(());
            };
            let namespace: Lifecycle = self.namespaces.get_as(None, ns).await?;
            if namespace.terminating() {
                return Err(RegistryError::Forbidden {
                    resource: GroupResource { group: info.group.to_string(), resource: info.resource.to_string() },
                    name: name.into(),
                    message: format!("unable to create new content in namespace {ns} because it is being terminated"),
                    cause: Some(Box::new(("NamespaceTerminating".into(), format!("namespace {ns} is being terminated"), "metadata.namespace".into()))),
                }
                .into());
            }
            Ok(())
        })
    }
}
