//! PersistentVolumeClaimResize, as upstream's: a claim may grow only once bound, and only when
//! its StorageClass allows volume expansion.

use super::{Attributes, Operation, Result, Validating};
use crate::quota::Amount;
use crate::registry::Store;
use serde_json::Value;
use std::sync::Arc;

/// The plugin, reading StorageClasses from their store.
pub struct PersistentVolumeClaimResize {
    classes: Arc<Store>,
}

impl PersistentVolumeClaimResize {
    /// Reads StorageClasses from `classes`.
    pub fn new(classes: Arc<Store>) -> Self {
        Self { classes }
    }
}

fn storage(pvc: &Value) -> Option<Amount> {
    pvc.pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(Amount::parse)
}

#[async_trait::async_trait]
impl Validating for PersistentVolumeClaimResize {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Update
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        if !a.writes("", "persistentvolumeclaims") {
            return Ok(());
        }
        let (Some(pvc), Some(old)) = (object, a.old_object) else {
            return Ok(());
        };
        if storage(pvc) <= storage(old) {
            return Ok(());
        }
        if old["status"]["phase"] != "Bound" {
            return Err(a.forbidden("Only bound persistent volume claims can be expanded".into()));
        }
        let class = pvc["spec"]["storageClassName"].as_str().unwrap_or("");
        let allowed = !class.is_empty()
            && self
                .classes
                .get(None, class)
                .await
                .is_ok_and(|c| c["allowVolumeExpansion"] == true);
        if !allowed {
            return Err(a.forbidden(
                "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize".into(),
            ));
        }
        Ok(())
    }
}
