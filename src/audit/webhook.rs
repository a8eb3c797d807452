//! The webhook backend (`--audit-webhook-config-file`). In `batch` mode events are collected
//! into audit.k8s.io/v1 EventLists of at most `--audit-webhook-batch-max-size`, sent when full
//! or `--audit-webhook-batch-max-wait` after their first event. In the blocking modes each
//! event is sent alone, in an EventList of one, while its request waits (upstream's unbuffered
//! backend); with `blocking-strict` a request whose RequestReceived event cannot be stored
//! fails. Either way a send is retried with a doubling backoff from
//! `--audit-webhook-initial-backoff` before its events are given up and counted.

use crate::webhook::WebhookClient;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How many times a batch is sent before it is dropped.
const ATTEMPTS: u32 = 3;
/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// `--audit-webhook-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Events are queued and sent in batches.
    Batch,
    /// Each event is sent while its request waits; a failure is logged and counted.
    Blocking,
    /// As `Blocking`, and a request whose RequestReceived event was not stored fails.
    BlockingStrict,
}

impl Mode {
    /// The mode a flag value names.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "batch" => Some(Mode::Batch),
            "blocking" => Some(Mode::Blocking),
            "blocking-strict" => Some(Mode::BlockingStrict),
            _ => None,
        }
    }
}

/// How the webhook backend sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    /// `--audit-webhook-mode`.
    pub mode: Mode,
    /// `--audit-webhook-batch-buffer-size`: events queued before new ones are dropped.
    pub buffer_size: usize,
    /// `--audit-webhook-batch-max-size`.
    pub max_size: usize,
    /// `--audit-webhook-batch-max-wait`.
    pub max_wait: Duration,
    /// `--audit-webhook-initial-backoff`.
    pub initial_backoff: Duration,
}

/// The backend for `client` as `config.mode` says: batches sent in the background, or a
/// blocking sender.
pub fn backend(client: WebhookClient, config: BatchConfig) -> super::Backend {
    match config.mode {
        Mode::Batch => super::Backend::Queued("webhook", start(client, config)),
        Mode::Blocking | Mode::BlockingStrict => super::Backend::Blocking(Arc::new(Blocking {
            client,
            strict: config.mode == Mode::BlockingStrict,
            initial_backoff: config.initial_backoff,
        })),
    }
}

/// The webhook in a blocking mode.
pub struct Blocking {
    client: WebhookClient,
    strict: bool,
    initial_backoff: Duration,
}

impl Blocking {
    /// Sends `event`; whether its request may go on (always, unless strict).
    pub async fn send(&self, event: &Arc<Value>) -> bool {
        send(
            &self.client,
            std::slice::from_ref(event),
            self.initial_backoff,
        )
        .await
            || !self.strict
    }
}

/// Starts sending batches to `client` on the current runtime; the queue to send events to.
fn start(client: WebhookClient, config: BatchConfig) -> mpsc::Sender<Arc<Value>> {
    let (tx, mut rx) = mpsc::channel::<Arc<Value>>(config.buffer_size.max(1));
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + config.max_wait;
            while batch.len() < config.max_size {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(event)) => batch.push(event),
                    // Timed out, or the server is going away: send what there is.
                    Ok(None) | Err(_) => break,
                }
            }
            let _ = send(&client, &batch, config.initial_backoff).await;
        }
    });
    tx
}

/// Sends one batch, retrying with backoff; a batch that cannot be sent is counted as lost.
/// Whether it was sent.
async fn send(client: &WebhookClient, batch: &[Arc<Value>], initial_backoff: Duration) -> bool {
    let list = json!({
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": batch.iter().map(|e| e.as_ref()).collect::<Vec<_>>(),
    });
    let body = bytes::Bytes::from(serde_json::to_vec(&list).unwrap_or_default());
    let mut backoff = initial_backoff;
    for attempt in 1..=ATTEMPTS {
        match client.post_within(body.clone(), SEND_TIMEOUT).await {
            Ok(_) => return true,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "sending audit events to the webhook failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => {
                tracing::warn!(error = %e, events = batch.len(), "sending audit events to the webhook failed; dropping them")
            }
        }
    }
    crate::metrics::metrics()
        .audit_errors
        .get_or_create(&crate::metrics::PluginLabels {
            plugin: "webhook".into(),
        })
        .inc_by(batch.len() as u64);
    false
}
