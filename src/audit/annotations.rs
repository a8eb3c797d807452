//! What filters and handlers add to a request's audit event: annotations
//! (`authorization.k8s.io/decision`, a webhook's or a policy's `auditAnnotations`), as
//! upstream's `audit.AddAuditAnnotation`, and the user impersonation turned it into, as
//! upstream's `audit.LogImpersonatedUser`. A request that is not audited carries none.

use crate::auth::UserInfo;
use std::sync::{Arc, Mutex};

/// A request's additions, shared by the filters and handlers that add them and the audit
/// filter that records them.
#[derive(Clone, Debug, Default)]
pub struct Annotations(Option<Arc<Mutex<Added>>>);

/// Annotation keys with their values, in the order added, and the impersonated user.
#[derive(Clone, Debug, Default)]
pub struct Added {
    /// The annotations.
    pub pairs: Vec<(String, String)>,
    /// Whom the request impersonates.
    pub impersonated: Option<UserInfo>,
}

impl Annotations {
    /// Annotations that are recorded.
    pub fn recorded() -> Self {
        Self(Some(Arc::default()))
    }

    fn with(&self, f: impl FnOnce(&mut Added)) {
        if let Some(all) = &self.0 {
            f(&mut all.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// Adds `key`; as upstream, a key keeps its first value.
    pub fn add(&self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.with(|all| {
            if !all.pairs.iter().any(|(k, _)| *k == key) {
                all.pairs.push((key, value.into()));
            }
        });
    }

    /// Records whom the request impersonates.
    pub fn impersonated(&self, user: &UserInfo) {
        self.with(|all| all.impersonated = Some(user.clone()));
    }

    /// Whether anything added is kept.
    pub fn is_recorded(&self) -> bool {
        self.0.is_some()
    }

    /// What was added so far.
    pub fn snapshot(&self) -> Added {
        self.0
            .as_ref()
            .map(|all| all.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }
}
