//! The review APIs: create-only resources that answer questions about identity and access
//! (authentication.k8s.io and authorization.k8s.io), served by the kube API server link.

mod self_subject_review;

pub use self_subject_review::SelfSubjectReviews;

use crate::registry::rest::Creater;
use std::sync::Arc;

/// Every review resource the kube API server link serves.
pub fn all() -> Vec<Arc<dyn Creater>> {
    vec![Arc::new(SelfSubjectReviews::default())]
}
