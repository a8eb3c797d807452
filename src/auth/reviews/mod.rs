//! The review APIs: create-only resources that answer questions about identity and access
//! (authentication.k8s.io and authorization.k8s.io), served by the kube API server link.

mod access_review;
mod self_subject_review;
mod token_review;

pub use access_review::AccessReviews;
pub use self_subject_review::SelfSubjectReviews;
pub use token_review::TokenReviews;

use crate::auth::{Authenticator, Authorizer};
use crate::registry::rest::Creater;
use std::sync::Arc;

/// Every review resource the kube API server link serves; token reviews ask `authenticator`,
/// access reviews `authorizer`.
pub fn all(
    authenticator: &Arc<Authenticator>,
    authorizer: &Arc<Authorizer>,
) -> Vec<Arc<dyn Creater>> {
    let mut all: Vec<Arc<dyn Creater>> = vec![
        Arc::new(SelfSubjectReviews::default()),
        Arc::new(TokenReviews::new(authenticator.clone())),
    ];
    for review in AccessReviews::all(authorizer) {
        all.push(Arc::new(review));
    }
    all
}
