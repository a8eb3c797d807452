//! Authorization (upstream's `authorizer.Authorizer` and its union): the privileged-groups
//! authorizer first, then the `--authorization-mode` modes in order; the first Allow or Deny
//! decides, and the reasons of the undecided are joined into the Forbidden message.
//!
//! The Node mode decides for kubelets only (`node`), RBAC for everyone (`rbac`), Webhook asks a
//! remote service (`webhook`). An authorizer that could not decide may report an error: unless a
//! later one allows, the request then fails with a 500 rather than a 403, as upstream's.

mod attributes;
pub mod node;
pub mod rbac;
pub mod webhook;

pub use attributes::Attributes;

use super::{AuthorizationConfig, AuthorizationMode as Mode};
use crate::endpoints::status::ApiError;
use crate::registry::StoreFactory;
use crate::webhook::WebhookError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails;
use std::sync::Arc;

/// What one authorizer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Denied: no later authorizer is asked.
    Deny,
    /// Undecided: the next authorizer is asked.
    NoOpinion,
}

/// An authorizer's decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The decision.
    pub decision: Decision,
    /// Why, for the Forbidden message and audit; may be empty.
    pub reason: String,
    /// What went wrong while deciding (an unreachable webhook), if anything.
    pub error: Option<String>,
}

impl Authorization {
    /// A decision with no reason.
    pub fn of(decision: Decision) -> Self {
        Self::because(decision, String::new())
    }

    /// A decision with a reason.
    pub fn because(decision: Decision, reason: impl Into<String>) -> Self {
        Self {
            decision,
            reason: reason.into(),
            error: None,
        }
    }

    /// A decision taken because deciding failed with `error`.
    pub fn failed(decision: Decision, error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::of(decision)
        }
    }

    /// The same decision with `reason`.
    pub fn with_reason(self, reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            ..self
        }
    }

    /// Whether the request may proceed.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }
}

/// One authorizer (a mode, or the privileged-groups check).
#[async_trait::async_trait]
pub trait Authorize: Send + Sync {
    /// Decides `attributes`.
    async fn authorize(&self, attributes: &Attributes<'_>) -> Authorization;
}

/// An authorizer of the chain, with the type and name its decisions are counted under
/// (`apiserver_authorization_decisions_total`); the privileged-groups check is not counted,
/// as upstream's.
type Link = (Option<(&'static str, &'static str)>, Arc<dyn Authorize>);

/// The group whose members may do anything, before any mode is asked.
pub const PRIVILEGED_GROUP: &str = "system:masters";

/// Upstream's privileged-groups authorizer: members of `system:masters` are allowed outright.
struct PrivilegedGroups;

#[async_trait::async_trait]
impl Authorize for PrivilegedGroups {
    async fn authorize(&self, a: &Attributes<'_>) -> Authorization {
        if a.user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            Authorization::of(Decision::Allow)
        } else {
            Authorization::of(Decision::NoOpinion)
        }
    }
}

/// `AlwaysAllow`.
struct AlwaysAllow;

#[async_trait::async_trait]
impl Authorize for AlwaysAllow {
    async fn authorize(&self, _: &Attributes<'_>) -> Authorization {
        Authorization::of(Decision::Allow)
    }
}

/// `AlwaysDeny`: no opinion, with upstream's reason, so the chain ends in a 403 naming it.
struct AlwaysDeny;

#[async_trait::async_trait]
impl Authorize for AlwaysDeny {
    async fn authorize(&self, _: &Attributes<'_>) -> Authorization {
        Authorization::because(Decision::NoOpinion, "Everything is forbidden.")
    }
}

/// The whole chain: privileged groups, then the configured modes.
pub struct Authorizer {
    chain: Vec<Link>,
    rbac: Option<Arc<rbac::Rbac>>,
    webhook: bool,
}

impl Authorizer {
    /// Builds the chain of the configured modes, in their order; the modes that decide on stored
    /// objects (RBAC's roles and bindings, Node's graph of pods) read them from `storage`, the
    /// Webhook mode reads its kubeconfig-format file.
    pub fn new(
        config: &AuthorizationConfig,
        storage: &Arc<dyn StoreFactory>,
    ) -> Result<Self, WebhookError> {
        let rbac = config
            .modes
            .contains(&Mode::Rbac)
            .then(|| Arc::new(rbac::Rbac::start(rbac::RbacStores::new(&**storage))));
        let mut chain: Vec<Link> = vec![(None, Arc::new(PrivilegedGroups))];
        for mode in &config.modes {
            let (authorizer, kind, name): (Arc<dyn Authorize>, _, _) = match mode {
                Mode::AlwaysAllow => (Arc::new(AlwaysAllow), "AlwaysAllow", "alwaysallow"),
                Mode::AlwaysDeny => (Arc::new(AlwaysDeny), "AlwaysDeny", "alwaysdeny"),
                Mode::Rbac => (
                    rbac.clone().expect("started for the RBAC mode"),
                    "RBAC",
                    "rbac",
                ),
                Mode::Node => (
                    Arc::new(node::NodeAuthorizer::start(&**storage)),
                    "Node",
                    "node",
                ),
                Mode::Webhook => (
                    Arc::new(webhook::WebhookAuthorizer::new(
                        config
                            .webhook
                            .as_ref()
                            .expect("the options require a webhook for the Webhook mode"),
                    )?),
                    "Webhook",
                    "webhook",
                ),
            };
            chain.push((Some((kind, name)), authorizer));
        }
        Ok(Self {
            chain,
            rbac,
            webhook: config.modes.contains(&Mode::Webhook),
        })
    }

    /// Whether a webhook takes part, whose rules cannot be listed.
    pub fn has_webhook(&self) -> bool {
        self.webhook
    }

    /// The RBAC authorizer, when RBAC is a mode.
    pub fn rbac(&self) -> Option<&Arc<rbac::Rbac>> {
        self.rbac.as_ref()
    }

    /// Decides `attributes` as upstream's union: the first Allow or Deny wins with its reason;
    /// when nobody decides, the answer is NoOpinion (a 403) with every reason given, one per line,
    /// and every error met (as Go's aggregate error prints them).
    pub async fn authorize(&self, attributes: &Attributes<'_>) -> Authorization {
        let mut reasons = Vec::new();
        let mut errors = Vec::new();
        for (metric, authorizer) in &self.chain {
            let answer = authorizer.authorize(attributes).await;
            if answer.decision != Decision::NoOpinion {
                if let Some((kind, name)) = metric {
                    let decision = if answer.allowed() {
                        "allowed"
                    } else {
                        "denied"
                    };
                    crate::metrics::metrics()
                        .authorization_decisions
                        .get_or_create(&crate::metrics::DecisionLabels {
                            r#type: (*kind).into(),
                            name: (*name).into(),
                            decision: decision.into(),
                        })
                        .inc();
                }
                return answer;
            }
            if !answer.reason.is_empty() {
                reasons.push(answer.reason);
            }
            errors.extend(answer.error);
        }
        let error = match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(format!("[{}]", errors.join(", "))),
        };
        Authorization {
            error,
            ..Authorization::because(Decision::NoOpinion, reasons.join("\n"))
        }
    }
}

/// Upstream's Forbidden message for denied `attributes` (`forbiddenMessage` and
/// `NewForbidden`): the object is named by its group-qualified resource, the denial by the
/// resource with its subresource.
pub fn forbidden_message(a: &Attributes<'_>, reason: &str) -> String {
    let mut msg = if !a.resource_request {
        format!(
            "forbidden: User {:?} cannot {} path {:?}",
            a.user.name, a.verb, a.path
        )
    } else {
        let mut resource = a.resource.to_string();
        if !a.subresource.is_empty() {
            resource = format!("{resource}/{}", a.subresource);
        }
        let qualified = if a.api_group.is_empty() {
            a.resource.to_string()
        } else {
            format!("{}.{}", a.resource, a.api_group)
        };
        let object = if a.name.is_empty() {
            qualified
        } else {
            format!("{qualified} {:?}", a.name)
        };
        let scope = if a.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", a.namespace)
        };
        format!(
            "{object} is forbidden: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            a.user.name, a.verb, a.api_group
        )
    };
    if !reason.is_empty() {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    msg
}

/// Upstream's 403 for denied `attributes` (`ForbiddenStatusError`), details naming the group,
/// the resource as kind, and the object.
pub fn forbidden(a: &Attributes<'_>, reason: &str) -> ApiError {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let details = if a.resource_request {
        StatusDetails {
            group: some(a.api_group),
            kind: some(a.resource),
            name: some(a.name),
            ..Default::default()
        }
    } else {
        StatusDetails::default()
    };
    ApiError::forbidden(details, forbidden_message(a, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;
    use crate::endpoints::request_info::RequestInfo;
    use http::Method;

    async fn decide(a: &Authorizer, user: &UserInfo, path: &str) -> Decision {
        let info = RequestInfo::parse(&Method::GET, path, None);
        a.authorize(&Attributes::of_request(user, &info))
            .await
            .decision
    }

    #[tokio::test]
    async fn with_the_bootstrap_policy_anonymous_may_read_health_but_not_discovery() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::server::storage_factory::StorageFactory::for_tests(dir.path()).await;
        rbac::bootstrap::reconcile(&rbac::RbacStores::new(&*storage))
            .await
            .unwrap();
        let a = Authorizer::new(
            &AuthorizationConfig {
                modes: vec![Mode::Node, Mode::Rbac],
                webhook: None,
            },
            &storage,
        )
        .unwrap();
        a.rbac().unwrap().wait_synced().await;
        let anon = UserInfo::anonymous();
        assert_eq!(decide(&a, &anon, "/readyz").await, Decision::Allow);
        assert_eq!(decide(&a, &anon, "/version").await, Decision::Allow);
        assert_eq!(decide(&a, &anon, "/api").await, Decision::NoOpinion);
        assert_eq!(decide(&a, &anon, "/readyz/ping").await, Decision::NoOpinion);
    }

    #[tokio::test]
    async fn masters_are_allowed_before_any_mode_and_always_deny_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::server::storage_factory::StorageFactory::for_tests(dir.path()).await;
        let a = Authorizer::new(
            &AuthorizationConfig {
                modes: vec![Mode::AlwaysDeny],
                webhook: None,
            },
            &storage,
        )
        .unwrap();
        let admin = UserInfo {
            name: "admin".into(),
            groups: vec![PRIVILEGED_GROUP.into()],
            ..UserInfo::default()
        };
        assert_eq!(decide(&a, &admin, "/api").await, Decision::Allow);
        let info = RequestInfo::parse(&Method::GET, "/api", None);
        let alice = UserInfo {
            name: "alice".into(),
            ..UserInfo::default()
        };
        let answer = a.authorize(&Attributes::of_request(&alice, &info)).await;
        assert_eq!(
            answer,
            Authorization::because(Decision::NoOpinion, "Everything is forbidden.")
        );
    }

    #[tokio::test]
    async fn an_authorizers_error_is_reported_unless_a_later_one_allows() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::server::storage_factory::StorageFactory::for_tests(dir.path()).await;
        let file = dir.path().join("webhook.kubeconfig");
        std::fs::write(
            &file,
            "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1/\n\
             contexts:\n- name: x\n  context:\n    cluster: c\ncurrent-context: x\n",
        )
        .unwrap();
        let with = |modes: Vec<Mode>| {
            Authorizer::new(
                &AuthorizationConfig {
                    modes,
                    webhook: Some(crate::auth::WebhookAuthorizationConfig {
                        config_file: file.clone(),
                        version: Default::default(),
                        authorized_ttl: std::time::Duration::ZERO,
                        unauthorized_ttl: std::time::Duration::ZERO,
                    }),
                },
                &storage,
            )
            .unwrap()
        };
        let info = RequestInfo::parse(&Method::GET, "/api", None);
        let anon = UserInfo::anonymous();
        let attributes = Attributes::of_request(&anon, &info);
        let answer = with(vec![Mode::Webhook, Mode::AlwaysDeny])
            .authorize(&attributes)
            .await;
        assert_eq!(answer.decision, Decision::NoOpinion);
        assert_eq!(answer.reason, "Everything is forbidden.");
        assert!(answer.error.unwrap().contains("dial tcp 127.0.0.1:1"));
        let answer = with(vec![Mode::Webhook, Mode::AlwaysAllow])
            .authorize(&attributes)
            .await;
        assert_eq!(answer.decision, Decision::Allow);
    }

    #[test]
    fn forbidden_messages_match_upstream() {
        let anon = UserInfo::anonymous();
        let info = RequestInfo::parse(&Method::GET, "/api/v1/namespaces/default/pods", None);
        assert_eq!(
            forbidden_message(&Attributes::of_request(&anon, &info), ""),
            r#"pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let info = RequestInfo::parse(&Method::GET, "/api", None);
        assert_eq!(
            forbidden_message(&Attributes::of_request(&anon, &info), ""),
            r#"forbidden: User "system:anonymous" cannot get path "/api""#
        );
        let info = RequestInfo::parse(
            &Method::PUT,
            "/apis/apps/v1/namespaces/x/deployments/d/scale",
            None,
        );
        let denied = forbidden(&Attributes::of_request(&anon, &info), "nope").status();
        assert_eq!(
            denied.message.as_deref(),
            Some(
                r#"deployments.apps "d" is forbidden: User "system:anonymous" cannot update resource "deployments/scale" in API group "apps" in the namespace "x": nope"#
            )
        );
        let details = denied.details.unwrap();
        assert_eq!(
            (details.group, details.kind, details.name),
            (
                Some("apps".into()),
                Some("deployments".into()),
                Some("d".into())
            )
        );
    }
}
