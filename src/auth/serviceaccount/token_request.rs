//! `serviceaccounts/<name>/token` (authentication.k8s.io/v1 TokenRequest), as upstream's
//! `TokenREST`: a token for the ServiceAccount, for the audiences asked (the API's by default),
//! for as long as asked within `--service-account-max-token-expiration`, optionally bound to a
//! Pod, Secret or Node that must exist.

use super::{ServiceAccounts, username};
use crate::registry::errors::{ErrorList, FieldError, GroupResource};
use crate::registry::rest::{Context, SubresourceCreater};
use crate::registry::store::meta_str;
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::sync::Arc;

/// Upstream's `WarnOnlyBoundTokenExpirationSeconds`: the lifetime kubelets ask for the
/// projected kube-api-access token, which `--service-account-extend-token-expiration` extends.
const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
/// Upstream's `ExpirationExtensionSeconds`: a year.
const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 60 * 60;
/// Upstream's default `spec.expirationSeconds`.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// The token subresource.
pub struct TokenRequests {
    tokens: Arc<ServiceAccounts>,
}

impl TokenRequests {
    /// Issues tokens with `tokens`.
    pub fn new(tokens: Arc<ServiceAccounts>) -> Self {
        Self { tokens }
    }
}

fn invalid(name: &str, errors: ErrorList) -> RegistryError {
    RegistryError::Invalid {
        group: "authentication.k8s.io".into(),
        qualified_kind: "TokenRequest.authentication.k8s.io".into(),
        kind: "TokenRequest".into(),
        name: name.into(),
        errors,
    }
}

#[async_trait::async_trait]
impl SubresourceCreater for TokenRequests {
    async fn create(
        &self,
        ctx: &Context<'_>,
        serviceaccounts: &Store,
        name: &str,
        mut req: Value,
    ) -> Result<Value, RegistryError> {
        let namespace = ctx
            .namespace
            .ok_or_else(|| RegistryError::BadRequest("namespace is required".into()))?;
        if let Some(n) = meta_str(&req, "name").filter(|n| !n.is_empty() && *n != name) {
            return Err(invalid(
                name,
                vec![FieldError::invalid(
                    "metadata.name",
                    n,
                    "must match the service account name if specified",
                )],
            ));
        }
        if let Some(n) = meta_str(&req, "namespace").filter(|n| !n.is_empty() && *n != namespace) {
            return Err(invalid(
                name,
                vec![FieldError::invalid(
                    "metadata.namespace",
                    n,
                    "must match the service account namespace if specified",
                )],
            ));
        }
        let sa = serviceaccounts.get(Some(namespace), name).await?;
        let sa_uid = meta_str(&sa, "uid").unwrap_or("").to_string();

        let spec = req.get("spec").cloned().unwrap_or_else(|| json!({}));
        let mut audiences: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if audiences.is_empty() {
            audiences = self.tokens.api_audiences().to_vec();
        }
        let mut expiration = spec
            .get("expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        let mut errors = Vec::new();
        if expiration < 10 * 60 {
            errors.push(FieldError::invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration less than 10 minutes",
            ));
        }
        if expiration > 1 << 32 {
            errors.push(FieldError::invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        if !errors.is_empty() {
            return Err(invalid("", errors));
        }

        let lookups = &self.tokens.lookups;
        let mut kubernetes = json!({
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": sa_uid},
        });
        let mut bound_to_pod = false;
        if let Some(reference) = spec.get("boundObjectRef").filter(|r| r.is_object()) {
            let field = |f: &str| reference.get(f).and_then(Value::as_str).unwrap_or("");
            let (kind, api_version, bound_name) =
                (field("kind"), field("apiVersion"), field("name"));
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let (object, claim) = match (group, kind) {
                ("", "Pod") => {
                    let pod = lookups.pods.get(Some(namespace), bound_name).await?;
                    let pod_sa = pod
                        .pointer("/spec/serviceAccountName")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if pod_sa != name {
                        return Err(RegistryError::BadRequest(format!(
                            "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
                        )));
                    }
                    bound_to_pod = true;
                    // The pod's node is named in the token, as upstream's pod-node info.
                    if let Some(node) = pod
                        .pointer("/spec/nodeName")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                    {
                        let uid = match lookups.nodes.get(None, node).await {
                            Ok(n) => meta_str(&n, "uid").unwrap_or("").to_string(),
                            Err(RegistryError::NotFound { .. }) => String::new(),
                            Err(e) => return Err(e),
                        };
                        let mut node_ref = json!({"name": node});
                        if !uid.is_empty() {
                            node_ref["uid"] = json!(uid);
                        }
                        kubernetes["node"] = node_ref;
                    }
                    (pod, "pod")
                }
                ("", "Node") => (lookups.nodes.get(None, bound_name).await?, "node"),
                ("", "Secret") => (
                    lookups.secrets.get(Some(namespace), bound_name).await?,
                    "secret",
                ),
                _ => {
                    let gvk = if group.is_empty() {
                        format!("/{api_version}, Kind={kind}")
                    } else {
                        format!("{api_version}, Kind={kind}")
                    };
                    return Err(RegistryError::BadRequest(format!(
                        "cannot bind token to object of type {gvk}"
                    )));
                }
            };
            let uid = meta_str(&object, "uid").unwrap_or("");
            let asked = field("uid");
            if !asked.is_empty() && asked != uid {
                return Err(RegistryError::Conflict {
                    resource: GroupResource {
                        group: group.into(),
                        resource: kind.into(),
                    },
                    name: bound_name.into(),
                    message: format!(
                        "the UID in the bound object reference ({asked}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                });
            }
            kubernetes[claim] = json!({"name": bound_name, "uid": uid});
        }

        let config = self.tokens.config();
        if let Some(max) = config.max_token_expiration {
            let max = max.as_secs() as i64;
            if max > 0 && expiration > max {
                expiration = max;
            }
        }
        let mut lifetime = expiration;
        let kube_audiences = audiences
            .iter()
            .all(|a| self.tokens.api_audiences().contains(a));
        let now = super::now();
        if config.extend_token_expiration
            && bound_to_pod
            && expiration == WARN_ONLY_EXPIRATION_SECONDS
            && kube_audiences
        {
            kubernetes["warnafter"] = json!(now + expiration);
            lifetime = EXTENDED_EXPIRATION_SECONDS;
        }
        let claims = json!({
            "aud": audiences,
            "exp": now + lifetime,
            "iat": now,
            "jti": crate::registry::store::new_uid(),
            "kubernetes.io": kubernetes,
            "nbf": now,
            "sub": username(namespace, name),
        });
        let token = self
            .tokens
            .sign(claims)
            .map_err(|e| RegistryError::Internal(format!("failed to generate token: {e}")))?;

        let expires = time::OffsetDateTime::from_unix_timestamp(now + expiration)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let created = crate::registry::store::now_rfc3339();
        let meta = req
            .as_object_mut()
            .ok_or_else(|| RegistryError::BadRequest("TokenRequest is not an object".into()))?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        meta["name"] = json!(name);
        meta["namespace"] = json!(namespace);
        meta["uid"] = json!(sa_uid);
        meta["creationTimestamp"] = json!(created);
        req["spec"]["audiences"] = json!(audiences);
        req["spec"]["expirationSeconds"] = json!(expiration);
        req["status"] = json!({"token": token, "expirationTimestamp": expires});
        Ok(req)
    }
}
