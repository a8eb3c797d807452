//! Auditing (`--audit-policy-file`, `--audit-log-*`): each request the policy selects is
//! recorded as audit.k8s.io/v1 Events at its stages, as upstream's `WithAudit` records them,
//! and written as JSON lines by a background writer. Recording never waits on the writer: the
//! events go through a bounded queue, and when it is full an event is dropped and counted
//! (`apiserver_audit_error_total`), never a request held up.

mod annotations;
pub mod log;
pub mod policy;

pub use annotations::Annotations;
pub use policy::{Decision, Level, Policy, Stage};

use serde_json::Value;
use tokio::sync::mpsc;

/// Events the writer may fall behind by before new ones are dropped (upstream's default
/// batch buffer size).
pub const QUEUE: usize = 10_000;

/// The policy and where its events go.
pub struct Auditor {
    policy: Policy,
    events: mpsc::Sender<Vec<u8>>,
}

impl Auditor {
    /// Audits by `policy` into `events`, the queue of a writer.
    pub fn new(policy: Policy, events: mpsc::Sender<Vec<u8>>) -> Self {
        Self { policy, events }
    }

    /// What the policy says of a request with these authorization attributes.
    pub fn decide(&self, attributes: &crate::auth::authorizer::Attributes<'_>) -> Decision {
        self.policy.evaluate(attributes)
    }

    /// Queues `event`; a full queue drops it and counts the loss.
    pub fn record(&self, event: &Value) {
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        let m = crate::metrics::metrics();
        match self.events.try_send(line) {
            Ok(()) => m.audit_events.inc(),
            Err(_) => m
                .audit_errors
                .get_or_create(&crate::metrics::PluginLabels {
                    plugin: "log".into(),
                })
                .inc(),
        };
    }
}
