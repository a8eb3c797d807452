//! Auditing (`--audit-policy-file`, `--audit-log-*`, `--audit-webhook-*`): each request the
//! policy selects is recorded as audit.k8s.io/v1 Events at its stages, as upstream's
//! `WithAudit` records them, and handed to each backend — the log, written as JSON lines by a
//! background writer, and the webhook, sent in batches. Recording does not wait on those: the
//! events go through bounded queues, and when one is full an event is dropped and counted
//! (`apiserver_audit_error_total`), never a request held up. Only a webhook in a blocking mode
//! (`--audit-webhook-mode=blocking|blocking-strict`) is waited for, as upstream waits: see
//! [`Delivery`].

mod annotations;
pub mod log;
pub mod policy;
pub mod webhook;

pub use annotations::Annotations;
pub use policy::{Decision, Level, Policy, Stage};

use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events the writer may fall behind by before new ones are dropped (upstream's default
/// batch buffer size).
pub const QUEUE: usize = 10_000;

/// Where an audit backend takes events.
pub enum Backend {
    /// A queue drained in the background, and the backend's name in the metrics (`log`,
    /// `webhook`).
    Queued(&'static str, mpsc::Sender<Arc<Value>>),
    /// A webhook each event is sent to before the request goes on.
    Blocking(Arc<webhook::Blocking>),
}

/// What became of an event handed to the backends.
#[must_use = "a blocking backend sends only when the delivery is awaited or detached"]
pub enum Delivery {
    /// Every backend took it.
    Taken,
    /// A blocking webhook is to send it; the future tells whether the request may go on.
    Sending(BoxFuture<'static, bool>),
}

impl Delivery {
    /// Whether the request may go on once every blocking backend has sent the event: false
    /// only when a `blocking-strict` webhook could not store it.
    pub async fn stored(self) -> bool {
        match self {
            Delivery::Taken => true,
            Delivery::Sending(sending) => sending.await,
        }
    }

    /// Lets the sending finish on its own, for a stage whose response is already on its way.
    /// Outside a runtime (a body dropped as the server shuts down) the event is given up.
    pub fn detach(self) {
        if let Delivery::Sending(sending) = self
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(sending);
        }
    }
}

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

    /// Whether a backend makes requests wait for their events (a blocking webhook).
    pub fn blocks(&self) -> bool {
        self.backends
            .iter()
            .any(|b| matches!(b, Backend::Blocking(_)))
    }

    /// What the policy says of a request with these authorization attributes.
    pub fn decide(&self, attributes: &crate::auth::authorizer::Attributes<'_>) -> Decision {
        self.policy.evaluate(attributes)
    }

    /// Queues `event` for every queued backend, where a full queue drops it and counts the
    /// loss; the sending to blocking ones, to be awaited.
    pub fn record(&self, event: Value) -> Delivery {
        let event = Arc::new(event);
        let m = crate::metrics::metrics();
        m.audit_events.inc();
        let mut blocking = Vec::new();
        for backend in &self.backends {
            match backend {
                Backend::Queued(plugin, queue) => {
                    if queue.try_send(event.clone()).is_err() {
                        m.audit_errors
                            .get_or_create(&crate::metrics::PluginLabels {
                                plugin: plugin.to_string(),
                            })
                            .inc();
                    }
                }
                Backend::Blocking(webhook) => blocking.push(webhook.clone()),
            }
        }
        if blocking.is_empty() {
            return Delivery::Taken;
        }
        Delivery::Sending(Box::pin(async move {
            let mut stored = true;
            for webhook in blocking {
                stored &= webhook.send(&event).await;
            }
            stored
        }))
    }
}
