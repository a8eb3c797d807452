//! Auditing (`--audit-policy-file`, `--audit-log-*`, `--audit-webhook-*`): each request the
//! policy selects is recorded as audit.k8s.io/v1 Events at its stages, as upstream's
//! `WithAudit` records them, and handed to each backend — the log, written as JSON lines by a
//! background writer, and the webhook, sent in batches. Recording never waits on a backend:
//! the events go through bounded queues, and when one is full an event is dropped and counted
//! (`apiserver_audit_error_total`), never a request held up.

mod annotations;
pub mod log;
pub mod policy;
pub mod webhook;

pub use annotations::Annotations;
pub use policy::{Decision, Level, Policy, Stage};

use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events the writer may fall behind by before new ones are dropped (upstream's default
/// batch buffer size).
pub const QUEUE: usize = 10_000;

/// A backend's queue and its name in the metrics (`log`, `webhook`).
pub type Backend = (&'static str, mpsc::Sender<Arc<Value>>);

/// The policy and where its events go.
pub struct Auditor {
    policy: Policy,
    backends: Vec<Backend>,
}

impl Auditor {
    /// Audits by `policy` into each of `backends`.
    pub fn new(policy: Policy, backends: Vec<Backend>) -> Self {
        Self { policy, backends }
    }

    /// What the policy says of a request with these authorization attributes.
    pub fn decide(&self, attributes: &crate::auth::authorizer::Attributes<'_>) -> Decision {
        self.policy.evaluate(attributes)
    }

    /// Queues `event` for every backend; a full queue drops it there and counts the loss.
    pub fn record(&self, event: Value) {
        let event = Arc::new(event);
        let m = crate::metrics::metrics();
        m.audit_events.inc();
        for (plugin, queue) in &self.backends {
            if queue.try_send(event.clone()).is_err() {
                m.audit_errors
                    .get_or_create(&crate::metrics::PluginLabels {
                        plugin: plugin.to_string(),
                    })
                    .inc();
            }
        }
    }
}
