//! `kubeboot publish-kubeconfig`: the admin kubeconfig `init` wrote, pointed at the URL clients
//! reach the server by, applied as a Secret of the cluster this runs in (in-cluster credentials,
//! or `$KUBECONFIG`). The Helm chart's init container runs it, so that a user fetches the
//! kubeconfig with `kubectl get secret` rather than from a volume in an image without a shell.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::config::Kubeconfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The key of the kubeconfig in the Secret.
pub const KEY: &str = "admin.kubeconfig";
/// The field manager of the Secret's server-side apply.
const FIELD_MANAGER: &str = "kubeboot-publish-kubeconfig";

/// What publishing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The kubeconfig cannot be read or rewritten.
    #[error("reading {path}: {reason}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The cluster to publish to cannot be reached or refused the Secret.
    #[error("publishing the Secret {name}: {source}")]
    Cluster {
        /// The Secret.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// The kubeconfig at `path` with every cluster's server set to `server`, as YAML.
pub fn pointed_at(path: &Path, server: &str) -> Result<String, PublishError> {
    let invalid = |reason: String| PublishError::Kubeconfig {
        path: path.to_path_buf(),
        reason,
    };
    let mut config = Kubeconfig::read_from(path).map_err(|e| invalid(e.to_string()))?;
    for cluster in config
        .clusters
        .iter_mut()
        .filter_map(|c| c.cluster.as_mut())
    {
        cluster.server = Some(server.to_string());
    }
    serde_saphyr::to_string(&config).map_err(|e| invalid(e.to_string()))
}

/// Applies the Secret `name` holding `kubeconfig` in the client's default namespace (the pod's).
pub async fn publish(name: &str, kubeconfig: String) -> Result<(), PublishError> {
    let failed = |source| PublishError::Cluster {
        name: name.to_string(),
        source,
    };
    let client = kube::Client::try_default().await.map_err(failed)?;
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(KEY.to_string(), kubeconfig)])),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    secrets
        .patch(name, &params, &Patch::Apply(&secret))
        .await
        .map_err(failed)?;
    Ok(())
}
