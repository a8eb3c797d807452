//! Escalation prevention, as upstream's `pkg/registry/rbac/*/policybased`: a Role or
//! ClusterRole may grant only what its writer holds (or the writer may `escalate` it), a binding
//! only a role whose permissions its writer holds (or may `bind`); members of `system:masters`
//! are exempt. Run as a validating admission step on every create and update of the four kinds.

use super::Rbac;
use super::rules::{compact, go_quoted, uncovered};
use crate::admission::{Attributes as Admission, Operation, Result, Validating};
use crate::auth::authorizer::{Attributes, Authorizer, PRIVILEGED_GROUP};
use crate::registry::RegistryError;
use crate::registry::errors::GroupResource;
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};
use serde_json::Value;
use std::sync::Arc;

const GROUP: &str = "rbac.authorization.k8s.io";

/// The escalation checks.
pub struct Escalation {
    rbac: Arc<Rbac>,
    authorizer: Arc<Authorizer>,
}

impl Escalation {
    /// Checks writes against what `rbac` grants their writers; `authorizer` decides the
    /// `escalate` and `bind` verbs.
    pub fn new(rbac: Arc<Rbac>, authorizer: Arc<Authorizer>) -> Self {
        Self { rbac, authorizer }
    }

    /// Whether the writer may `verb` the role `resource`/`name` in `namespace` outright.
    async fn may(
        &self,
        a: &Admission<'_>,
        verb: &str,
        resource: &str,
        name: &str,
        ns: &str,
    ) -> bool {
        let attributes = Attributes {
            user: a.user,
            verb,
            resource_request: true,
            path: "",
            namespace: ns,
            api_group: GROUP,
            api_version: "v1",
            resource,
            subresource: "",
            name,
            field_selector: "",
        };
        self.authorizer.authorize(&attributes).await.allowed()
    }

    /// Upstream's `ConfirmNoEscalation`: `Ok` when the writer's rules in `namespace` cover
    /// `wanted`, else its message.
    fn confirm_no_escalation(
        &self,
        a: &Admission<'_>,
        namespace: &str,
        wanted: &[PolicyRule],
    ) -> std::result::Result<(), String> {
        let (owned, errors) = self.rbac.rules_for(a.user, namespace);
        let missing = uncovered(&owned, wanted);
        if missing.is_empty() {
            return Ok(());
        }
        let mut lines: Vec<String> = missing.iter().map(compact).collect();
        lines.sort();
        lines.dedup();
        let mut message = format!(
            "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            a.user.name,
            go_quoted(&a.user.groups),
            lines.join("\n")
        );
        if !errors.is_empty() {
            message.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        Err(message)
    }
}

fn rules(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

/// What upstream's `fullAuthority` grants: everything.
fn full_authority() -> Vec<PolicyRule> {
    let all = || Some(vec!["*".to_string()]);
    vec![
        PolicyRule {
            api_groups: all(),
            resources: all(),
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        },
        PolicyRule {
            non_resource_urls: all(),
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        },
    ]
}

#[async_trait::async_trait]
impl Validating for Escalation {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Admission<'_>, object: Option<&Value>) -> Result {
        let (Some(obj), true) = (
            object,
            a.resource.group == GROUP && a.subresource.is_empty(),
        ) else {
            return Ok(());
        };
        if a.user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            return Ok(());
        }
        let resource: &str = &a.resource.resource;
        let ns = a.namespace.unwrap_or("");
        let name = crate::registry::store::meta_str(obj, "name").unwrap_or(a.name);
        let forbidden = |message: String| RegistryError::Forbidden {
            resource: GroupResource {
                group: GROUP.into(),
                resource: resource.into(),
            },
            name: name.into(),
            message,
            cause: None,
        };
        match resource {
            "roles" | "clusterroles" => {
                if self.may(a, "escalate", resource, name, ns).await {
                    return Ok(());
                }
                let aggregated = obj.get("aggregationRule").is_some_and(|r| !r.is_null());
                if aggregated
                    && self
                        .confirm_no_escalation(a, ns, &full_authority())
                        .is_err()
                {
                    return Err(forbidden(
                        "must have cluster-admin privileges to use the aggregationRule".into(),
                    ));
                }
                self.confirm_no_escalation(a, ns, &rules(obj))
                    .map_err(forbidden)
            }
            "rolebindings" | "clusterrolebindings" => {
                let role_ref: RoleRef = serde_json::from_value(obj["roleRef"].clone())
                    .map_err(|e| RegistryError::BadRequest(format!("roleRef: {e}")))?;
                let role_resource = if role_ref.kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                };
                if self.may(a, "bind", role_resource, &role_ref.name, ns).await {
                    return Ok(());
                }
                let wanted = self.role_rules(&role_ref, ns).map_err(forbidden)?;
                self.confirm_no_escalation(a, ns, &wanted)
                    .map_err(forbidden)
            }
            _ => Ok(()),
        }
    }
}

impl Escalation {
    /// The rules of the role a binding in `namespace` refers to.
    fn role_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> std::result::Result<Vec<PolicyRule>, String> {
        let index = self.rbac.index.read().unwrap_or_else(|e| e.into_inner());
        index
            .role_rules(role_ref, namespace)
            .map(|r| r.as_ref().clone())
    }
}
