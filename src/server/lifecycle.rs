//! Lifecycle signals of a running server, as upstream's `lifecycleSignals`.

use std::sync::Arc;
use tokio::sync::watch;

/// A one-way latch: once signaled it stays signaled; any number of tasks can wait on it.
#[derive(Clone, Debug)]
pub struct Signal {
    name: &'static str,
    tx: Arc<watch::Sender<bool>>,
}

impl Signal {
    /// A new, unsignaled latch.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// The latch's name, for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Sets the latch; later calls do nothing.
    pub fn signal(&self) {
        if !self.tx.send_replace(true) {
            tracing::info!(
                signal = self.name,
                "[graceful-termination] lifecycle signal"
            );
        }
    }

    /// Whether the latch is set.
    pub fn is_signaled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Waits until the latch is set.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|set| *set).await;
    }
}

/// The steps of start-up and graceful termination, in the order they happen.
#[derive(Clone, Debug)]
pub struct LifecycleSignals {
    /// The first SIGTERM/SIGINT arrived; /readyz turns red.
    pub shutdown_initiated: Signal,
    /// --shutdown-delay-duration has passed since `shutdown_initiated`.
    pub after_shutdown_delay_duration: Signal,
    /// The listener no longer takes new requests (or answers them 429 with --shutdown-send-retry-after).
    pub not_accepting_new_requests: Signal,
    /// Every pre-shutdown hook has returned.
    pub pre_shutdown_hooks_stopped: Signal,
    /// In-flight requests have drained.
    pub in_flight_requests_drained: Signal,
}

impl Default for LifecycleSignals {
    fn default() -> Self {
        Self {
            shutdown_initiated: Signal::new("ShutdownInitiated"),
            after_shutdown_delay_duration: Signal::new("AfterShutdownDelayDuration"),
            not_accepting_new_requests: Signal::new("NotAcceptingNewRequest"),
            pre_shutdown_hooks_stopped: Signal::new("PreShutdownHooksStopped"),
            in_flight_requests_drained: Signal::new("InFlightRequestsDrained"),
        }
    }
}
