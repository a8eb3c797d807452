//! The review APIs: create-only resources that answer questions about identity and access
//! (authentication.k8s.io and authorization.k8s.io), served by the kube API server link.

mod self_subject_review;
mod token_review;

pub use self_subject_review::SelfSubjectReviews;
pub use token_review::TokenReviews;

use crate::auth::{Authenticator, Authorizer};
use crate::registry::rest::Creater;
use std::sync::Arc;

/// Every review resource the kube API server link serves; token reviews ask `authenticator`,
/// access reviews `_authorizer`.
pub fn all(
    authenticator: &Arc<Authenticator>,
    _authorizer: &Arc<Authorizer>,
) -> Vec<Arc<dyn Creater>> {
    vec![
        Arc::new(SelfSubjectReviews::default()),
        Arc::new(TokenReviews::new(authenticator.clone())),
    ]
}
