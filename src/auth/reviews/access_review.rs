//! The access reviews (authorization.k8s.io/v1), as upstream's `pkg/registry/authorization`:
//! SubjectAccessReview (may this user…), LocalSubjectAccessReview (…in this namespace),
//! SelfSubjectAccessReview (may I…, `kubectl auth can-i`) and SelfSubjectRulesReview (what may
//! I do here, `kubectl auth can-i --list`), each answered by the server's authorizer.

use crate::auth::UserInfo;
use crate::auth::authorizer::{Attributes, Authorizer, Decision, PRIVILEGED_GROUP};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::rest::{Context, Creater, create_only_info};
use crate::registry::{RegistryError, ResourceInfo};
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, NonResourceAttributes, NonResourceRule, ResourceAttributes,
    ResourceRule, SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
    SubjectAccessReviewSpec, SubjectAccessReviewStatus, SubjectRulesReviewStatus,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// Which review a [`AccessReviews`] serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Review {
    Subject,
    LocalSubject,
    SelfSubject,
    SelfSubjectRules,
}

/// One of the four review resources.
pub struct AccessReviews {
    review: Review,
    info: ResourceInfo,
    authorizer: Arc<Authorizer>,
}

impl AccessReviews {
    /// The four resources, answered by `authorizer`.
    pub fn all(authorizer: &Arc<Authorizer>) -> Vec<Self> {
        let make = |review, info| Self {
            review,
            info,
            authorizer: authorizer.clone(),
        };
        vec![
            make(Review::Subject, create_only_info::<SubjectAccessReview>()),
            make(
                Review::LocalSubject,
                create_only_info::<LocalSubjectAccessReview>(),
            ),
            make(
                Review::SelfSubject,
                create_only_info::<SelfSubjectAccessReview>(),
            ),
            make(
                Review::SelfSubjectRules,
                create_only_info::<SelfSubjectRulesReview>(),
            ),
        ]
    }
}

fn invalid(kind: &str, errors: ErrorList) -> RegistryError {
    RegistryError::Invalid {
        group: "authorization.k8s.io".into(),
        qualified_kind: format!("{kind}.authorization.k8s.io"),
        kind: kind.into(),
        name: String::new(),
        errors,
    }
}

/// Upstream's check that exactly one of the two attribute kinds is given.
fn exactly_one(
    resource: &Option<ResourceAttributes>,
    non_resource: &Option<NonResourceAttributes>,
) -> ErrorList {
    match (resource, non_resource) {
        (Some(_), Some(_)) => vec![FieldError::invalid(
            "spec.nonResourceAttributes",
            json!("{...}"),
            "cannot be specified in combination with resourceAttributes",
        )],
        (None, None) => vec![FieldError::invalid(
            "spec.resourceAttributes",
            Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )],
        _ => Vec::new(),
    }
}

/// The authorizer's answer for `user` asking what the attributes say.
async fn decide(
    authorizer: &Authorizer,
    user: &UserInfo,
    resource: &Option<ResourceAttributes>,
    non_resource: &Option<NonResourceAttributes>,
) -> SubjectAccessReviewStatus {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let (verb, path, ns, group, version, res, sub, name) = match (resource, non_resource) {
        (Some(r), _) => (
            s(&r.verb),
            String::new(),
            s(&r.namespace),
            s(&r.group),
            s(&r.version),
            s(&r.resource),
            s(&r.subresource),
            s(&r.name),
        ),
        (None, Some(n)) => (
            s(&n.verb),
            s(&n.path),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ),
        (None, None) => Default::default(),
    };
    let attributes = Attributes {
        user,
        verb: &verb,
        resource_request: resource.is_some(),
        path: &path,
        namespace: &ns,
        api_group: &group,
        api_version: &version,
        resource: &res,
        subresource: &sub,
        name: &name,
        field_selector: "",
    };
    let answer = authorizer.authorize(&attributes).await;
    SubjectAccessReviewStatus {
        allowed: answer.decision == Decision::Allow,
        denied: (answer.decision == Decision::Deny).then_some(true),
        reason: (!answer.reason.is_empty()).then_some(answer.reason),
        evaluation_error: answer.error,
    }
}

/// The user a (Local)SubjectAccessReview asks about; naming neither a user nor a group is
/// upstream's error, added to `errors`.
fn reviewed_user(spec: &SubjectAccessReviewSpec, errors: &mut ErrorList) -> UserInfo {
    let name = spec.user.clone().unwrap_or_default();
    let groups = spec.groups.clone().unwrap_or_default();
    if name.is_empty() && groups.is_empty() {
        errors.push(FieldError::invalid(
            "spec.user",
            "",
            "at least one of user or group must be specified",
        ));
    }
    UserInfo {
        name,
        uid: spec.uid.clone().unwrap_or_default(),
        groups,
        extra: spec.extra.clone().unwrap_or_default(),
    }
}

fn encode<T: serde::Serialize>(review: &T) -> Result<Value, RegistryError> {
    serde_json::to_value(review).map_err(|e| RegistryError::Internal(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(obj: Value, kind: &str) -> Result<T, RegistryError> {
    serde_json::from_value(obj)
        .map_err(|e| RegistryError::BadRequest(format!("decoding {kind}: {e}")))
}

#[async_trait::async_trait]
impl Creater for AccessReviews {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    async fn create(&self, ctx: &Context<'_>, obj: Value) -> Result<Value, RegistryError> {
        match self.review {
            Review::Subject => {
                let mut review: SubjectAccessReview = decode(obj, "SubjectAccessReview")?;
                let spec = &review.spec;
                let mut errors =
                    exactly_one(&spec.resource_attributes, &spec.non_resource_attributes);
                let user = reviewed_user(spec, &mut errors);
                if !errors.is_empty() {
                    return Err(invalid("SubjectAccessReview", errors));
                }
                review.status = Some(
                    decide(
                        &self.authorizer,
                        &user,
                        &spec.resource_attributes,
                        &spec.non_resource_attributes,
                    )
                    .await,
                );
                encode(&review)
            }
            Review::LocalSubject => {
                let mut review: LocalSubjectAccessReview = decode(obj, "LocalSubjectAccessReview")?;
                let namespace = ctx.namespace.unwrap_or("");
                let spec = &review.spec;
                let mut errors = Vec::new();
                if spec.non_resource_attributes.is_some() {
                    errors.push(FieldError::invalid(
                        "spec.nonResourceAttributes",
                        json!("{...}"),
                        "disallowed on this kind of request",
                    ));
                }
                if spec.resource_attributes.is_none() {
                    errors.push(FieldError::invalid(
                        "spec.resourceAttributes",
                        Value::Null,
                        "must be specified",
                    ));
                }
                let user = reviewed_user(spec, &mut errors);
                if !errors.is_empty() {
                    return Err(invalid("LocalSubjectAccessReview", errors));
                }
                let asked = spec
                    .resource_attributes
                    .as_ref()
                    .and_then(|r| r.namespace.clone())
                    .unwrap_or_default();
                if asked != namespace {
                    return Err(RegistryError::BadRequest(format!(
                        "spec.resourceAttributes.namespace must match namespace: {namespace}"
                    )));
                }
                review.status =
                    Some(decide(&self.authorizer, &user, &spec.resource_attributes, &None).await);
                encode(&review)
            }
            Review::SelfSubject => {
                let mut review: SelfSubjectAccessReview = decode(obj, "SelfSubjectAccessReview")?;
                let spec = &review.spec;
                let errors = exactly_one(&spec.resource_attributes, &spec.non_resource_attributes);
                if !errors.is_empty() {
                    return Err(invalid("SelfSubjectAccessReview", errors));
                }
                review.status = Some(
                    decide(
                        &self.authorizer,
                        ctx.user,
                        &spec.resource_attributes,
                        &spec.non_resource_attributes,
                    )
                    .await,
                );
                encode(&review)
            }
            Review::SelfSubjectRules => {
                let mut review: SelfSubjectRulesReview = decode(obj, "SelfSubjectRulesReview")?;
                let namespace = review.spec.namespace.clone().unwrap_or_default();
                review.status = Some(self.rules(ctx.user, &namespace));
                encode(&review)
            }
        }
    }
}

impl AccessReviews {
    /// Upstream's `RulesFor` over the authorizers: everything for `system:masters`, else what
    /// RBAC grants in `namespace`; a webhook's rules cannot be listed, so they make it incomplete.
    fn rules(&self, user: &UserInfo, namespace: &str) -> SubjectRulesReviewStatus {
        let all = || vec!["*".to_string()];
        let mut status = SubjectRulesReviewStatus {
            resource_rules: Vec::new(),
            non_resource_rules: Vec::new(),
            incomplete: false,
            evaluation_error: None,
        };
        if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            status.resource_rules.push(ResourceRule {
                verbs: all(),
                api_groups: Some(all()),
                resources: Some(all()),
                resource_names: None,
            });
            status.non_resource_rules.push(NonResourceRule {
                verbs: all(),
                non_resource_urls: Some(all()),
            });
        }
        let (rules, mut errors) = match self.authorizer.rbac() {
            Some(rbac) => rbac.rules_for(user, namespace),
            None => {
                status.incomplete = true;
                Default::default()
            }
        };
        if self.authorizer.has_webhook() {
            status.incomplete = true;
            errors.push("webhook authorizer does not support user rule resolution".into());
        }
        for rule in rules {
            if rule
                .non_resource_urls
                .as_ref()
                .is_some_and(|u| !u.is_empty())
            {
                status.non_resource_rules.push(NonResourceRule {
                    verbs: rule.verbs.clone(),
                    non_resource_urls: rule.non_resource_urls.clone(),
                });
            }
            if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
                status.resource_rules.push(ResourceRule {
                    verbs: rule.verbs,
                    api_groups: rule.api_groups,
                    resources: rule.resources,
                    resource_names: rule.resource_names,
                });
            }
        }
        if !errors.is_empty() {
            status.incomplete = true;
            status.evaluation_error = Some(errors.join(", "));
        }
        status
    }
}
