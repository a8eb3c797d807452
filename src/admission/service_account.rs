//! The ServiceAccount admission plugin, as upstream's `plugin/pkg/admission/serviceaccount`: a
//! new pod runs as `default` unless it names a ServiceAccount, which must exist; it gets the
//! projected `kube-api-access-<suffix>` volume (a bound token, the cluster CA, its namespace)
//! mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container,
//! unless it or its ServiceAccount opts out; and the ServiceAccount's imagePullSecrets when it
//! names none.

use super::{Attributes, Mutating, Operation, Result};
use crate::registry::errors::GroupResource;
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The ServiceAccount a pod that names none runs as.
const DEFAULT: &str = "default";
/// Where the token, CA and namespace are mounted.
const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the projected volume's name.
const VOLUME_PREFIX: &str = "kube-api-access-";
/// The annotation of mirror pods, whose spec the plugin leaves alone.
const MIRROR: &str = "kubernetes.io/config.mirror";
/// Upstream looks the default ServiceAccount up this many times, as its controller may not
/// have made it yet in a namespace just created.
const DEFAULT_ATTEMPTS: usize = 10;

/// The plugin, reading ServiceAccounts from `serviceaccounts`.
pub struct ServiceAccountAdmission {
    serviceaccounts: Arc<Store>,
}

impl ServiceAccountAdmission {
    /// Looks ServiceAccounts up in `serviceaccounts`.
    pub fn new(serviceaccounts: Arc<Store>) -> Self {
        Self { serviceaccounts }
    }

    async fn service_account(
        &self,
        ns: &str,
        name: &str,
    ) -> std::result::Result<Value, RegistryError> {
        let attempts = if name == DEFAULT { DEFAULT_ATTEMPTS } else { 1 };
        for attempt in 0..attempts {
            if attempt > 0 {
                // Upstream waits 100-200 ms between attempts.
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            match self.serviceaccounts.get(Some(ns), name).await {
                Ok(sa) => return Ok(sa),
                Err(RegistryError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(RegistryError::NotFound {
            resource: GroupResource {
                group: String::new(),
                resource: "serviceaccount".into(),
            },
            name: name.into(),
        })
    }
}

/// Upstream's `TokenVolumeSource`.
fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

/// Upstream's `mountServiceAccountToken`: every init container and container without a mount
/// at the path gets one; the volume is added when one of them needed it.
fn mount_token(spec: &mut Value) {
    let existing = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .map(str::to_string);
    let name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{}", crate::registry::store::name_suffix()));
    let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            let mounted = c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == MOUNT_PATH);
            if !mounted {
                if !c["volumeMounts"].is_array() {
                    c["volumeMounts"] = json!([]);
                }
                c["volumeMounts"]
                    .as_array_mut()
                    .expect("made an array")
                    .push(mount.clone());
                needed = true;
            }
        }
    }
    if existing.is_none() && needed {
        if !spec["volumes"].is_array() {
            spec["volumes"] = json!([]);
        }
        spec["volumes"]
            .as_array_mut()
            .expect("made an array")
            .push(token_volume(&name));
    }
}

#[async_trait::async_trait]
impl Mutating for ServiceAccountAdmission {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let Some(pod) = object else { return Ok(()) };
        if !a.writes("", "pods") {
            return Ok(());
        }
        let mirror = pod
            .pointer("/metadata/annotations")
            .and_then(|m| m.get(MIRROR))
            .is_some();
        if mirror {
            return Ok(());
        }
        let ns = a.namespace.unwrap_or("");
        let spec = &mut pod["spec"];
        // The deprecated `serviceAccount` names it when `serviceAccountName` does not, as
        // upstream's v1 conversion reads it.
        let named = ["serviceAccountName", "serviceAccount"]
            .iter()
            .find_map(|field| spec[*field].as_str().filter(|n| !n.is_empty()));
        let name = named.unwrap_or(DEFAULT).to_string();
        spec["serviceAccountName"] = json!(name);
        spec["serviceAccount"] = json!(name);
        let sa = self
            .service_account(ns, &name)
            .await
            .map_err(|e| RegistryError::Forbidden {
                resource: a.resource.group_resource(),
                name: a.name.to_string(),
                message: format!("error looking up service account {ns}/{name}: {e}"),
                cause: None,
            })?;
        let automount = spec["automountServiceAccountToken"]
            .as_bool()
            .or_else(|| sa["automountServiceAccountToken"].as_bool())
            .unwrap_or(true);
        if automount {
            mount_token(spec);
        }
        let has_pull_secrets = spec["imagePullSecrets"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        if let Some(secrets) = sa["imagePullSecrets"].as_array().filter(|s| !s.is_empty())
            && !has_pull_secrets
        {
            spec["imagePullSecrets"] =
                Value::Array(secrets.iter().map(|s| json!({"name": s["name"]})).collect());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_mounts_one_token_volume_unless_it_mounts_the_path_itself() {
        let mut spec = json!({
            "initContainers": [{"name": "i"}],
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "own", "mountPath": MOUNT_PATH}]},
            ],
        });
        mount_token(&mut spec);
        let volumes = spec["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 1);
        let name = volumes[0]["name"].as_str().unwrap();
        assert!(name.starts_with(VOLUME_PREFIX) && name.len() == VOLUME_PREFIX.len() + 5);
        assert_eq!(volumes[0], token_volume(name));
        let expected = json!([{"name": name, "readOnly": true, "mountPath": MOUNT_PATH}]);
        assert_eq!(spec["initContainers"][0]["volumeMounts"], expected);
        assert_eq!(spec["containers"][0]["volumeMounts"], expected);
        assert_eq!(
            spec["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Admitted again, nothing more is added.
        let before = spec.clone();
        mount_token(&mut spec);
        assert_eq!(spec, before);
    }
}
