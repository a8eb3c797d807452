//! OwnerReferencesPermissionEnforcement (upstream's `plugin/pkg/admission/gc`): only a user
//! who may delete an object may change its ownerReferences (setting them at creation is
//! always allowed), and only one who may update an owner's `finalizers` may newly make a
//! reference to it block the owner's deletion (`blockOwnerDeletion: true`).

use super::{Attributes, Operation, Result, Validating};
use crate::auth::Authorizer;
use crate::auth::authorizer::{Attributes as AuthzAttributes, Decision};
use crate::registry::equivalence::EquivalentResources;
use serde_json::Value;
use std::sync::Arc;

/// The plugin.
pub struct OwnerReferencesPermissionEnforcement {
    authorizer: Arc<Authorizer>,
    resources: Arc<EquivalentResources>,
}

impl OwnerReferencesPermissionEnforcement {
    /// Asks `authorizer`; finds owners' resources in `resources`.
    pub fn new(authorizer: Arc<Authorizer>, resources: Arc<EquivalentResources>) -> Self {
        Self {
            authorizer,
            resources,
        }
    }

    /// Whether `a`'s user may `verb` the resource `attributes` name, and the reason and error
    /// as upstream's message prints them.
    async fn may(&self, attributes: &AuthzAttributes<'_>) -> std::result::Result<(), String> {
        let answer = self.authorizer.authorize(attributes).await;
        if answer.decision == Decision::Allow {
            return Ok(());
        }
        let error = answer.error.unwrap_or_else(|| "<nil>".into());
        Err(format!("{}, {error}", answer.reason))
    }
}

fn owner_references(obj: Option<&Value>) -> &[Value] {
    obj.and_then(|o| o["metadata"]["ownerReferences"].as_array())
        .map_or(&[], Vec::as_slice)
}

fn blocking(r: &Value) -> bool {
    r["blockOwnerDeletion"].as_bool() == Some(true)
}

/// Upstream's `newBlockingOwnerDeletionRefs`: references that block their owner's deletion now
/// and did not before (matched by uid).
fn newly_blocking<'v>(new: &'v [Value], old: &[Value]) -> Vec<&'v Value> {
    new.iter()
        .filter(|r| blocking(r))
        .filter(|r| !old.iter().any(|o| o["uid"] == r["uid"] && blocking(o)))
        .collect()
}

#[async_trait::async_trait]
impl Validating for OwnerReferencesPermissionEnforcement {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        // A pod's status update may carry what its kubelet wrote (upstream's whitelist).
        if a.resource.group.is_empty() && a.resource.resource == "pods" && a.subresource == "status"
        {
            return Ok(());
        }
        let new = owner_references(object);
        let old = owner_references(a.old_object);
        let changing = match a.old_object {
            None => !new.is_empty(),
            Some(_) => new != old,
        };
        if !changing {
            return Ok(());
        }
        let namespace = a.namespace.unwrap_or("");
        if a.operation != Operation::Create {
            let delete = AuthzAttributes {
                user: a.user,
                verb: "delete",
                resource_request: true,
                path: "",
                namespace,
                api_group: &a.resource.group,
                api_version: &a.resource.version,
                resource: &a.resource.resource,
                subresource: a.subresource,
                name: a.name,
                field_selector: "",
            };
            if let Err(why) = self.may(&delete).await {
                return Err(a.forbidden(format!(
                    "cannot set an ownerRef on a resource you can't delete: {why}"
                )));
            }
        }
        for r in newly_blocking(new, old) {
            let api_version = r["apiVersion"].as_str().unwrap_or("");
            let kind = r["kind"].as_str().unwrap_or("");
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let resources = self.resources.resources_of_kind(group, version, kind);
            if resources.is_empty() {
                return Err(a.forbidden(format!(
                    "cannot set blockOwnerDeletion in this case because cannot find RESTMapping for APIVersion {api_version} Kind {kind}: no matches for kind {kind:?} in version {api_version:?}"
                )));
            }
            for (resource, namespaced) in &resources {
                let update = AuthzAttributes {
                    user: a.user,
                    verb: "update",
                    resource_request: true,
                    path: "",
                    // A namespaced owner is in its dependent's namespace.
                    namespace: if *namespaced { namespace } else { "" },
                    api_group: group,
                    api_version: version,
                    resource,
                    subresource: "finalizers",
                    name: r["name"].as_str().unwrap_or(""),
                    field_selector: "",
                };
                if let Err(why) = self.may(&update).await {
                    return Err(a.forbidden(format!(
                        "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: {why}"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_references_that_start_blocking_need_the_owners_finalizers() {
        let blocking_a = json!({"uid": "a", "blockOwnerDeletion": true});
        let plain_a = json!({"uid": "a"});
        let blocking_b = json!({"uid": "b", "blockOwnerDeletion": true});
        let new = [blocking_a.clone(), blocking_b.clone()];
        assert_eq!(newly_blocking(&new, &[]), [&blocking_a, &blocking_b]);
        assert_eq!(newly_blocking(&new, &[plain_a]), [&blocking_a, &blocking_b]);
        assert_eq!(
            newly_blocking(&new, std::slice::from_ref(&blocking_a)),
            [&blocking_b]
        );
    }
}
