//! The resource quota controller, as upstream's in kube-controller-manager: each ResourceQuota's
//! `status.hard` mirrors its `spec.hard`, and `status.used` is counted from the namespace's
//! objects — when a quota is created or changed, and every resync so that deletions give their
//! share back. (Admission charges creates as they happen.)

use crate::quota::{self, Amount, Usage};
use crate::registry::informer::Informer;
use crate::registry::store::ListParams;
use crate::registry::{Store, StoreSet};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How often usage is counted again when nothing changed (upstream replenishes on deletes
/// through informers; kubeboot recounts instead).
const RESYNC: Duration = Duration::from_secs(10);
/// How long after a quota changed its usage is counted again.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Keeps every quota's status counted, until the server stops.
pub async fn run(quotas: Arc<Store>, informer: Arc<Informer>, stores: Vec<StoreSet>) {
    loop {
        for q in informer.objects().values() {
            if let Err(e) = sync(&quotas, q, &stores).await {
                tracing::warn!(error = %e, "resource quota controller: syncing a quota failed");
            }
        }
        tokio::select! {
            // A moment's grace lets the write a charge was made for land before the recount.
            _ = informer.changed() => tokio::time::sleep(DEBOUNCE).await,
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

/// The store of `group`/`resource`, built-in or custom.
fn store_of(stores: &[StoreSet], group: &str, resource: &str) -> Option<Arc<Store>> {
    stores.iter().flat_map(StoreSet::per_resource).find(|s| {
        let i = s.info();
        i.group == group && i.resource == resource
    })
}

/// Counts one quota's usage and writes its status when it differs.
async fn sync(
    quotas: &Store,
    q: &Value,
    stores: &[StoreSet],
) -> Result<(), crate::registry::RegistryError> {
    let ns = q
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = q
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let hard = q
        .pointer("/spec/hard")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let names: BTreeSet<String> = hard
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    let resources: BTreeSet<(String, String)> =
        names.iter().filter_map(|n| quota::resource_of(n)).collect();
    let mut used = Usage::new();
    for (group, resource) in &resources {
        let Some(store) = store_of(stores, group, resource) else {
            continue;
        };
        // Every name this resource could use starts at zero, so that it is known.
        for n in names
            .iter()
            .filter(|n| quota::resource_of(n).as_ref() == Some(&(group.clone(), resource.clone())))
        {
            used.entry(n.clone()).or_insert(Amount(0));
        }
        let page = store.list(Some(ns), &ListParams::default()).await?;
        for obj in &page.items {
            if quota::scopes_match(q, group, resource, obj) != Some(true) {
                continue;
            }
            for (k, v) in quota::usage(group, resource, obj) {
                if let Some(total) = used.get_mut(&k) {
                    *total = *total + v;
                }
            }
        }
    }
    let status = json!({"hard": hard, "used": quota::to_json(&used)});
    if q.get("status") == Some(&status) {
        return Ok(());
    }
    quotas
        .replace_status(Some(ns), name, status)
        .await
        .map(|_| ())
}
