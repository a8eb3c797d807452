//! Objects every active namespace holds, kept there by kube-controller-manager upstream and run
//! in-process here so a single kubeboot is usable on its own: the `default` ServiceAccount
//! (the serviceaccount-controller) and the `kube-root-ca.crt` ConfigMap with the cluster CA
//! (the root-ca-cert-publisher). Both recreate their object when it is deleted, and the
//! publisher restores its data when it is changed, as upstream's do.

use crate::registry::store::{UpdateTarget, WatchParams, WriteOptions};
use crate::registry::{RegistryError, Store};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The ServiceAccount every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The ConfigMap holding the cluster CA in every namespace.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Upstream's annotation describing what the CA bundle is for.
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's description, word for word.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// How long a failed namespace waits before it is synced again, and a failed watch restarts.
const RETRY: Duration = Duration::from_millis(500);

/// What one controller keeps in each namespace.
#[derive(Clone)]
pub enum NamespaceDefault {
    /// The `default` ServiceAccount, in `serviceaccounts`.
    ServiceAccount,
    /// `kube-root-ca.crt` with `ca.crt` = this PEM bundle, in `configmaps`.
    RootCa(Arc<str>),
}

impl NamespaceDefault {
    fn name(&self) -> &'static str {
        match self {
            NamespaceDefault::ServiceAccount => DEFAULT_SERVICE_ACCOUNT,
            NamespaceDefault::RootCa(_) => ROOT_CA_CONFIGMAP,
        }
    }

    /// The object as this controller writes it in namespace `ns`.
    fn object(&self, ns: &str) -> Value {
        match self {
            NamespaceDefault::ServiceAccount => json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": ns},
            }),
            NamespaceDefault::RootCa(ca) => json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": ROOT_CA_CONFIGMAP,
                    "namespace": ns,
                    "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                },
                "data": {"ca.crt": &**ca},
            }),
        }
    }

    /// `existing` with what this controller owns restored, or `None` when nothing differs.
    /// A ServiceAccount is only ever created; the CA ConfigMap's data and annotation are kept.
    fn repaired(&self, existing: &Value) -> Option<Value> {
        let NamespaceDefault::RootCa(ca) = self else {
            return None;
        };
        let data = json!({"ca.crt": &**ca});
        let described = existing
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty());
        if existing.get("data") == Some(&data) && described {
            return None;
        }
        let mut repaired = existing.clone();
        repaired["data"] = data;
        let meta = &mut repaired["metadata"];
        if !meta.get("annotations").is_some_and(Value::is_object) {
            meta["annotations"] = json!({});
        }
        meta["annotations"][DESCRIPTION_ANNOTATION] = json!(DESCRIPTION);
        Some(repaired)
    }
}

/// Keeps `default`'s object in every active namespace, writing it to `objects`. Runs until the
/// process ends.
pub async fn run(default: NamespaceDefault, namespaces: Arc<Store>, objects: Arc<Store>) {
    let (queue, mut pending_rx) = mpsc::unbounded_channel::<String>();
    let queued: Arc<Mutex<HashSet<String>>> = Arc::default();
    let enqueue = {
        let (queue, queued) = (queue.clone(), queued.clone());
        move |ns: String| {
            if queued.lock().expect("poisoned").insert(ns.clone()) {
                let _ = queue.send(ns);
            }
        }
    };
    // Namespaces as they appear or change, and the namespaces whose object was changed or
    // deleted; the initial events of each watch sync every namespace once.
    tokio::spawn(watch_namespaces(namespaces.clone(), enqueue.clone()));
    tokio::spawn(watch_objects(
        objects.clone(),
        default.name(),
        enqueue.clone(),
    ));
    while let Some(ns) = pending_rx.recv().await {
        queued.lock().expect("poisoned").remove(&ns);
        if let Err(e) = sync(&default, &namespaces, &objects, &ns).await {
            tracing::warn!(namespace = %ns, object = default.name(), error = %e, "syncing a namespace's default object failed");
            let enqueue = enqueue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RETRY).await;
                enqueue(ns);
            });
        }
    }
}

async fn watch_namespaces(namespaces: Arc<Store>, enqueue: impl Fn(String)) {
    loop {
        match namespaces.watch(None, WatchParams::default()).await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    if matches!(ev.kind, "ADDED" | "MODIFIED")
                        && let Some(name) =
                            ev.object.pointer("/metadata/name").and_then(Value::as_str)
                    {
                        enqueue(name.to_string());
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "namespace defaults: watching namespaces failed"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn watch_objects(objects: Arc<Store>, name: &'static str, enqueue: impl Fn(String)) {
    loop {
        match objects.watch(None, WatchParams::default()).await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    let named = ev.object.pointer("/metadata/name").and_then(Value::as_str);
                    if matches!(ev.kind, "MODIFIED" | "DELETED")
                        && named == Some(name)
                        && let Some(ns) = ev
                            .object
                            .pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                    {
                        enqueue(ns.to_string());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, resource = %objects.info().resource, "namespace defaults: watch failed")
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Makes namespace `ns` hold `default`'s object, if the namespace is active.
async fn sync(
    default: &NamespaceDefault,
    namespaces: &Store,
    objects: &Store,
    ns: &str,
) -> Result<(), RegistryError> {
    let active = match namespaces.get(None, ns).await {
        Ok(namespace) => {
            namespace.pointer("/metadata/deletionTimestamp").is_none()
                && namespace.pointer("/status/phase").and_then(Value::as_str) != Some("Terminating")
        }
        Err(RegistryError::NotFound { .. }) => false,
        Err(e) => return Err(e),
    };
    if !active {
        return Ok(());
    }
    match objects.get(Some(ns), default.name()).await {
        Err(RegistryError::NotFound { .. }) => {
            match objects
                .create(Some(ns), default.object(ns), WriteOptions::default())
                .await
            {
                Ok(_) | Err(RegistryError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
        Ok(existing) => match default.repaired(&existing) {
            None => Ok(()),
            Some(repaired) => objects
                .update(
                    Some(ns),
                    default.name(),
                    repaired,
                    UpdateTarget::Main,
                    WriteOptions::default(),
                )
                .await
                .map(drop),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_configmap_is_repaired_only_when_its_data_or_description_differ() {
        let default = NamespaceDefault::RootCa("PEM".into());
        let fresh = default.object("x");
        assert_eq!(fresh["data"], json!({"ca.crt": "PEM"}));
        assert_eq!(
            fresh["metadata"]["annotations"][DESCRIPTION_ANNOTATION],
            DESCRIPTION
        );
        assert!(default.repaired(&fresh).is_none());

        let mut changed = fresh.clone();
        changed["data"]["extra"] = json!("x");
        changed["metadata"]["labels"] = json!({"keep": "me"});
        let repaired = default.repaired(&changed).unwrap();
        assert_eq!(repaired["data"], json!({"ca.crt": "PEM"}));
        assert_eq!(repaired["metadata"]["labels"], json!({"keep": "me"}));

        let mut undescribed = fresh;
        undescribed["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        let repaired = default.repaired(&undescribed).unwrap();
        assert_eq!(
            repaired["metadata"]["annotations"][DESCRIPTION_ANNOTATION],
            DESCRIPTION
        );
        assert!(
            NamespaceDefault::ServiceAccount
                .repaired(&json!({}))
                .is_none()
        );
    }
}
