//! The `authorizer` and `authorizer.requestResource` variables admission expressions see
//! (ValidatingAdmissionPolicy's and webhook matchConditions'): questions built in CEL and
//! answered by the server's authorizer, for the request's user or a named service account.

use super::Attributes;
use crate::apiextensions::cel::{
    AuthzChecker, AuthzDecision, AuthzQuery, CelValue, authorizer_value, request_resource_value,
};
use crate::auth::UserInfo;
use crate::auth::authorizer::{Attributes as AuthzAttributes, Authorizer, Decision};
use crate::auth::serviceaccount::username;
use std::sync::Arc;
use tokio::runtime::{Handle, RuntimeFlavor};

/// The two variables for request `a`, asking `authorizer`.
pub fn variables(
    authorizer: &Arc<Authorizer>,
    a: &Attributes<'_>,
) -> [(&'static str, CelValue); 2] {
    let checker: Arc<dyn AuthzChecker> = Arc::new(RequestChecker {
        authorizer: authorizer.clone(),
        user: a.user.clone(),
    });
    let own = AuthzQuery {
        group: a.resource.group.to_string(),
        resource: a.resource.resource.to_string(),
        subresource: a.subresource.to_string(),
        namespace: a.namespace.unwrap_or_default().to_string(),
        name: a.name.to_string(),
        ..Default::default()
    };
    [
        ("authorizer", authorizer_value(checker.clone())),
        (
            "authorizer.requestResource",
            request_resource_value(checker, own),
        ),
    ]
}

/// Answers one request's questions with the server's authorizer.
struct RequestChecker {
    authorizer: Arc<Authorizer>,
    user: UserInfo,
}

impl AuthzChecker for RequestChecker {
    fn check(&self, q: &AuthzQuery) -> AuthzDecision {
        let user = match &q.service_account {
            // As upstream's `serviceaccount.UserInfo`: the account's name and groups alone.
            Some((namespace, name)) => UserInfo {
                name: username(namespace, name),
                uid: String::new(),
                groups: vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{namespace}"),
                ],
                extra: Default::default(),
            },
            None => self.user.clone(),
        };
        let attributes = AuthzAttributes {
            user: &user,
            verb: &q.verb,
            resource_request: q.path.is_none(),
            path: q.path.as_deref().unwrap_or(""),
            namespace: &q.namespace,
            api_group: &q.group,
            api_version: "*",
            resource: &q.resource,
            subresource: &q.subresource,
            name: &q.name,
            field_selector: "",
        };
        // CEL evaluation is synchronous; the authorizer may wait on stores or a webhook, so the
        // worker thread is handed over while it does (the server's runtime is multi-threaded).
        let answer = match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| {
                    handle.block_on(self.authorizer.authorize(&attributes))
                })
            }
            _ => {
                return AuthzDecision {
                    error: Some("no authorizer runtime to decide with".into()),
                    ..Default::default()
                };
            }
        };
        AuthzDecision {
            allowed: answer.decision == Decision::Allow,
            reason: answer.reason,
            error: answer.error,
        }
    }
}
