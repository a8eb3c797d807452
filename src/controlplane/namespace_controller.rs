//! The namespace controller: empties a terminating namespace, then removes its `kubernetes`
//! finalizer so the store deletes it — kube-controller-manager's job, run in-process so a
//! single kubeboot is usable on its own.

use crate::registry::kinds::corev1::NAMESPACE_FINALIZER as FINALIZER;
use crate::registry::store::{DeleteParams, ListParams, UpdateTarget, WatchParams, WriteOptions};
use crate::registry::{RegistryError, Store, StoreSet};
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long to wait before retrying a namespace whose content is not gone yet.
const RETRY: Duration = Duration::from_millis(500);

/// Watches namespaces and finalizes those being deleted. Runs until the process ends.
pub async fn run(namespaces: Arc<Store>, stores: Vec<StoreSet>) {
    let stores = Arc::new(stores);
    let in_progress: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        match namespaces.watch(None, WatchParams::default()).await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    if ev.object.pointer("/metadata/deletionTimestamp").is_none() {
                        continue;
                    }
                    let Some(name) = ev
                        .object
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                    else {
                        continue;
                    };
                    if !in_progress.lock().expect("poisoned").insert(name.clone()) {
                        continue;
                    }
                    let (namespaces, stores, in_progress) =
                        (namespaces.clone(), stores.clone(), in_progress.clone());
                    tokio::spawn(async move {
                        finalize(&namespaces, &stores, &name).await;
                        in_progress.lock().expect("poisoned").remove(&name);
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "namespace controller: watch failed"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Deletes everything in namespace `name`, waits until it is gone, then removes the finalizer.
async fn finalize(namespaces: &Store, stores: &[StoreSet], name: &str) {
    loop {
        let mut remaining = 0usize;
        // Read the sets on every pass: custom resources come and go while a namespace empties.
        let namespaced = stores
            .iter()
            .flat_map(StoreSet::per_resource)
            .filter(|s| s.info().namespaced);
        for store in namespaced {
            if let Err(e) = store
                .delete_collection(Some(name), &ListParams::default(), &DeleteParams::default())
                .await
            {
                tracing::warn!(namespace = name, resource = %store.info().resource, error = %e, "namespace controller: deleting content failed");
                remaining += 1;
                continue;
            }
            match store.list(Some(name), &ListParams::default()).await {
                Ok(page) => remaining += page.items.len(),
                Err(_) => remaining += 1,
            }
        }
        if remaining == 0 {
            break;
        }
        // Objects with finalizers of their own stay until their owners act, as upstream.
        tokio::time::sleep(RETRY).await;
    }
    let result = namespaces
        .update_with(
            None,
            name,
            UpdateTarget::for_subresource("finalize").expect("finalize target"),
            WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                if let Some(Value::Array(f)) = next.pointer_mut("/spec/finalizers") {
                    f.retain(|v| v.as_str() != Some(FINALIZER));
                }
                Ok(next)
            },
        )
        .await;
    match result {
        Ok(_) | Err(RegistryError::NotFound { .. }) => {
            tracing::info!(namespace = name, "namespace finalized")
        }
        Err(e) => {
            tracing::warn!(namespace = name, error = %e, "namespace controller: finalize failed")
        }
    }
}
