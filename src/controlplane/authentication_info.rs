//! The `kube-system/extension-apiserver-authentication` ConfigMap, as upstream's
//! ClusterAuthenticationInfo controller publishes it: the client CA and the request-header
//! settings extension API servers use to trust requests the aggregator proxies to them.

use crate::registry::store::{FieldValidation, UpdateTarget, WriteOptions};
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};

/// The ConfigMap's namespace and name.
pub const NAMESPACE: &str = "kube-system";
/// The ConfigMap's name.
pub const NAME: &str = "extension-apiserver-authentication";

/// What the ConfigMap holds.
#[derive(Debug, Clone, Default)]
pub struct AuthenticationInfo {
    /// --client-ca-file, PEM.
    pub client_ca: String,
    /// --requestheader-client-ca-file, PEM; empty when request-header auth is off.
    pub requestheader_client_ca: String,
    /// --requestheader-allowed-names.
    pub allowed_names: Vec<String>,
    /// --requestheader-username-headers.
    pub username_headers: Vec<String>,
    /// --requestheader-uid-headers.
    pub uid_headers: Vec<String>,
    /// --requestheader-group-headers.
    pub group_headers: Vec<String>,
    /// --requestheader-extra-headers-prefix.
    pub extra_headers_prefix: Vec<String>,
}

impl AuthenticationInfo {
    fn data(&self) -> Value {
        let list = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
        let mut data = json!({"client-ca-file": self.client_ca});
        if !self.requestheader_client_ca.is_empty() {
            data["requestheader-client-ca-file"] = json!(self.requestheader_client_ca);
            data["requestheader-allowed-names"] = json!(list(&self.allowed_names));
            data["requestheader-username-headers"] = json!(list(&self.username_headers));
            data["requestheader-uid-headers"] = json!(list(&self.uid_headers));
            data["requestheader-group-headers"] = json!(list(&self.group_headers));
            data["requestheader-extra-headers-prefix"] = json!(list(&self.extra_headers_prefix));
        }
        data
    }

    /// Creates the ConfigMap, or brings its data up to date.
    pub async fn publish(&self, configmaps: &Store) -> Result<(), RegistryError> {
        let data = self.data();
        let opts = WriteOptions {
            field_validation: FieldValidation::Strict,
            ..WriteOptions::default()
        };
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "data": data,
        });
        match configmaps.create(Some(NAMESPACE), cm, opts.clone()).await {
            Ok(_) => return Ok(()),
            Err(RegistryError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        configmaps
            .update_with(Some(NAMESPACE), NAME, UpdateTarget::Main, opts, |current| {
                let mut next = current.clone();
                next["data"] = data.clone();
                Ok(next)
            })
            .await
            .map(|_| ())
    }
}
