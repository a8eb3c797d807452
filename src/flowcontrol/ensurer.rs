//! The configuration producer (upstream's `ensurer`, run by the
//! `priority-and-fairness-config-producer` hook): creates the bootstrap objects that are
//! missing, keeps the mandatory ones' specs fixed and the suggested ones' specs current while
//! their `apf.kubernetes.io/autoupdate-spec` annotation says so, and removes auto-updated
//! objects upstream no longer suggests. It runs at start and every minute after.

use super::bootstrap::{self, AUTO_UPDATE_ANNOTATION, Bootstrap, EXEMPT, semantic};
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
    // The exempt level's `exempt` field is the administrator's to tune (upstream's
    // plcSpecEqualish): the rest of its spec is kept fixed.
    let mut spec = b.spec.clone();
    if b.name == EXEMPT && current["spec"]["exempt"].is_object() {
        spec["exempt"] = current["spec"]["exempt"].clone();
    }
    let spec_current = semantic(&current["spec"]) == semantic(&spec);
    if annotated && (!update_spec || spec_current) {
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::managed_fields::TypeRef;
    use crate::storage::KeyBuilder;
    use crate::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
    use std::sync::Arc;

    fn store(storage: &Arc<EmbeddedStorage>, resource: &str) -> Store {
        let strategy = crate::registry::kinds::builtin()
            .into_iter()
            .find(|s| s.info().resource == resource)
            .unwrap();
        Store::new(
            strategy,
            storage.clone(),
            KeyBuilder::new("/registry/"),
            TypeRef::untyped(),
        )
    }

    async fn versions(store: &Store) -> Vec<String> {
        let page = store.list(None, &ListParams::default()).await.unwrap();
        page.items
            .iter()
            .map(|o| meta_str(o, "resourceVersion").unwrap().to_string())
            .collect()
    }

    /// Sets `path` of object `name` to `value`, as an administrator's edit.
    async fn set(store: &Store, name: &str, path: &[&str], value: Value) {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        store
            .update_with(
                None,
                name,
                UpdateTarget::Main,
                WriteOptions::default(),
                |current| {
                    let mut next = current.clone();
                    let mut at = &mut next;
                    for p in &path[..path.len() - 1] {
                        at = &mut at[p.as_str()];
                    }
                    at[path[path.len() - 1].as_str()] = value.clone();
                    Ok::<_, RegistryError>(next)
                },
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_bootstrap_objects_are_made_once_and_kept_as_upstreams_ensurer_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(
            EmbeddedStorage::open(dir.path().join("db"), EmbeddedOptions::default()).unwrap(),
        );
        let (schemas, levels) = (
            store(&storage, "flowschemas"),
            store(&storage, "prioritylevelconfigurations"),
        );
        ensure(&schemas, &levels).await.unwrap();
        let (fs, pl) = (versions(&schemas).await, versions(&levels).await);
        assert_eq!((fs.len(), pl.len()), (11, 8));
        // A second pass writes nothing.
        ensure(&schemas, &levels).await.unwrap();
        assert_eq!(
            (versions(&schemas).await, versions(&levels).await),
            (fs, pl)
        );

        // The exempt level's `exempt` is the administrator's; a suggested object they opted
        // out of keeps their spec; one still auto-updated goes back to upstream's.
        set(
            &levels,
            "exempt",
            &["spec", "exempt", "nominalConcurrencyShares"],
            json!(7),
        )
        .await;
        set(
            &levels,
            "workload-low",
            &["metadata", "annotations", AUTO_UPDATE_ANNOTATION],
            json!("false"),
        )
        .await;
        set(
            &levels,
            "workload-low",
            &["spec", "limited", "nominalConcurrencyShares"],
            json!(3),
        )
        .await;
        set(
            &levels,
            "global-default",
            &["spec", "limited", "nominalConcurrencyShares"],
            json!(3),
        )
        .await;
        ensure(&schemas, &levels).await.unwrap();
        let shares = |o: &Value, kind: &str| o["spec"][kind]["nominalConcurrencyShares"].clone();
        let exempt = levels.get(None, "exempt").await.unwrap();
        assert_eq!(shares(&exempt, "exempt"), 7);
        let low = levels.get(None, "workload-low").await.unwrap();
        assert_eq!(shares(&low, "limited"), 3);
        let default = levels.get(None, "global-default").await.unwrap();
        assert_eq!(shares(&default, "limited"), 20);
    }
}
