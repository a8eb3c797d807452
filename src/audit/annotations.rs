//! Audit annotations: what authorization and admission add to a request's audit event
//! (`authorization.k8s.io/decision`, a webhook's or a policy's `auditAnnotations`), as
//! upstream's `audit.AddAuditAnnotation`. A request that is not audited carries none.

use std::sync::{Arc, Mutex};

/// A request's annotations, shared by the filters and handlers that add them and the audit
/// filter that records them.
#[derive(Clone, Debug, Default)]
pub struct Annotations(Option<Arc<Mutex<Pairs>>>);

/// Annotation keys with their values, in the order added.
type Pairs = Vec<(String, String)>;

impl Annotations {
    /// Annotations that are recorded.
    pub fn recorded() -> Self {
        Self(Some(Arc::default()))
    }

    /// Adds `key`; as upstream, a key keeps its first value.
    pub fn add(&self, key: impl Into<String>, value: impl Into<String>) {
        let Some(all) = &self.0 else { return };
        let mut all = all.lock().unwrap_or_else(|e| e.into_inner());
        let key = key.into();
        if !all.iter().any(|(k, _)| *k == key) {
            all.push((key, value.into()));
        }
    }

    /// Whether anything added is kept.
    pub fn is_recorded(&self) -> bool {
        self.0.is_some()
    }

    /// The annotations added so far.
    pub fn snapshot(&self) -> Vec<(String, String)> {
        self.0
            .as_ref()
            .map(|all| all.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }
}
