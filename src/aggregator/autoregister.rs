//! Local APIServices, as upstream's autoregister and CRD registration controllers: one per
//! group/version this server serves itself (built-in groups with upstream's priorities, CRD
//! groups with 1000/100), created and deleted as the served group/versions change.

use super::apiservice::name_of;
use crate::endpoints::discovery::Discovery;
use crate::registry::groups::{self, CUSTOM_GROUP_PRIORITY, CUSTOM_VERSION_PRIORITY};
use crate::registry::store::{DeleteParams, ListParams, WriteOptions};
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// The label marking APIServices this controller owns.
pub const AUTOMANAGED: &str = "kube-aggregator.kubernetes.io/automanaged";

/// The APIService of a local group/version.
fn desired(group: &str, version: &str) -> Value {
    let (gp, vp, managed) = match groups::builtin(group) {
        Some(g) => (g.priority, g.version_priority(version), "onstart"),
        None => (CUSTOM_GROUP_PRIORITY, CUSTOM_VERSION_PRIORITY, "true"),
    };
    json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": name_of(group, version), "labels": {AUTOMANAGED: managed}},
        "spec": {"group": group, "version": version, "groupPriorityMinimum": gp, "versionPriority": vp},
    })
}

fn local_status() -> Value {
    json!({"conditions": [{
        "type": "Available", "status": "True", "reason": "Local",
        "message": "Local APIServices are always available",
        "lastTransitionTime": crate::registry::store::now_rfc3339(),
    }]})
}

/// One pass: creates missing local APIServices, deletes automanaged ones no longer served.
async fn sync(apiservices: &Store, discovery: &Discovery) -> Result<(), RegistryError> {
    let wanted: BTreeMap<String, Value> = discovery
        .local_group_versions()
        .into_iter()
        .map(|(g, v)| (name_of(&g, &v), desired(&g, &v)))
        .collect();
    let existing = apiservices.list(None, &ListParams::default()).await?.items;
    let mut present = std::collections::HashSet::new();
    for a in &existing {
        let name = a
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        present.insert(name.to_string());
        let managed = a.pointer(&format!(
            "/metadata/labels/{}",
            AUTOMANAGED.replace('/', "~1")
        ));
        if managed.is_some() && !wanted.contains_key(name) {
            match apiservices
                .delete(None, name, &DeleteParams::default())
                .await
            {
                Ok(_) | Err(RegistryError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    for (name, obj) in wanted.iter().filter(|(n, _)| !present.contains(*n)) {
        match apiservices
            .create(None, obj.clone(), WriteOptions::default())
            .await
        {
            Ok(_) | Err(RegistryError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        apiservices
            .replace_status(None, name, local_status())
            .await?;
    }
    Ok(())
}

/// Keeps local APIServices in step with what this server serves, until the process ends;
/// `done` turns true after the first complete pass.
pub async fn run(apiservices: Arc<Store>, discovery: Arc<Discovery>, done: watch::Sender<bool>) {
    let mut changes = discovery.subscribe();
    loop {
        changes.borrow_and_update();
        match sync(&apiservices, &discovery).await {
            Ok(()) => {
                done.send_replace(true);
            }
            Err(e) => {
                tracing::warn!(error = %e, "autoregister: sync failed");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}
