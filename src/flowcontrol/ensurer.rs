//! The configuration producer (upstream's `ensurer`, run by the
//! `priority-and-fairness-config-producer` hook): creates the bootstrap objects that are
//! missing, keeps the mandatory ones' specs fixed and the suggested ones' specs current while
//! their `apf.kubernetes.io/autoupdate-spec` annotation says so, and removes auto-updated
//! objects upstream no longer suggests. It runs at start and every minute after.

use super::bootstrap::{self, AUTO_UPDATE_ANNOTATION, Bootstrap, semantic};
use crate::registry::managed_fields::Operation;
use crate::registry::store::{DeleteParams, ListParams, UpdateTarget, WriteOptions, meta_str};
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::time::Duration;

/// The field manager of the server's writes of bootstrap objects, upstream's.
pub const FIELD_MANAGER: &str = "api-priority-and-fairness-config-producer-v1";
/// How often the bootstrap objects are ensured again.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Ensures the bootstrap configuration once: priority levels first, so schemas never dangle.
pub async fn ensure(schemas: &Store, levels: &Store) -> Result<(), RegistryError> {
    for (store, mandatory, suggested) in [
        (
            levels,
            bootstrap::mandatory_priority_levels(),
            bootstrap::suggested_priority_levels(),
        ),
        (
            schemas,
            bootstrap::mandatory_flow_schemas(),
            bootstrap::suggested_flow_schemas(),
        ),
    ] {
        let wanted: Vec<&'static str> =
            mandatory.iter().chain(&suggested).map(|b| b.name).collect();
        for b in &suggested {
            ensure_one(store, b, false).await?;
        }
        for b in &mandatory {
            ensure_one(store, b, true).await?;
        }
        remove_unwanted(store, &wanted).await?;
    }
    Ok(())
}

fn writer(store: &Store) -> WriteOptions<'static> {
    WriteOptions {
        writer: Some(store.writer(FIELD_MANAGER.into(), Operation::Update, "")),
        ..Default::default()
    }
}

/// Whether the server may keep `current`'s spec at the bootstrap value (upstream's
/// `shouldUpdateSpec`): as its annotation says, else only while nobody changed it.
fn auto_updates(current: &Value) -> bool {
    match current["metadata"]["annotations"][AUTO_UPDATE_ANNOTATION].as_str() {
        Some("true" | "1" | "t" | "T" | "TRUE" | "True") => true,
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => false,
        _ => current["metadata"]["generation"].as_i64() == Some(1),
    }
}

async fn ensure_one(store: &Store, b: &Bootstrap, mandatory: bool) -> Result<(), RegistryError> {
    let current = match store.get(None, b.name).await {
        Ok(current) => current,
        Err(RegistryError::NotFound { .. }) => {
            return match store.create(None, b.object(), writer(store)).await {
                Ok(_) | Err(RegistryError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let update_spec = mandatory || auto_updates(&current);
    let annotated = current["metadata"]["annotations"][AUTO_UPDATE_ANNOTATION].as_str()
        == Some(if update_spec { "true" } else { "false" });
    let spec_current = semantic(&current["spec"]) == semantic(&b.spec);
    if annotated && (!update_spec || spec_current) {
        return Ok(());
    }
    let spec = b.spec.clone();
    let result = store
        .update_with(None, b.name, UpdateTarget::Main, writer(store), |current| {
            let mut next = current.clone();
            if update_spec {
                next["spec"] = spec.clone();
            }
            let meta = next["metadata"]
                .as_object_mut()
                .expect("objects have metadata");
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            annotations[AUTO_UPDATE_ANNOTATION] = json!(update_spec.to_string());
            Ok::<_, RegistryError>(next)
        })
        .await;
    match result {
        Ok(_) | Err(RegistryError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes auto-updated objects that are not bootstrap objects any more.
async fn remove_unwanted(store: &Store, wanted: &[&str]) -> Result<(), RegistryError> {
    let page = store.list(None, &ListParams::default()).await?;
    for obj in page.items {
        let name = meta_str(&obj, "name").unwrap_or_default();
        let auto = obj["metadata"]["annotations"][AUTO_UPDATE_ANNOTATION].as_str() == Some("true");
        if auto && !wanted.contains(&name) {
            match store.delete(None, name, &DeleteParams::default()).await {
                Ok(_) | Err(RegistryError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
