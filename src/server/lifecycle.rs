//! Lifecycle signals of a running server, as upstream's `lifecycleSignals`.

use tokio_util::sync::CancellationToken;

/// A named one-way latch: once signaled it stays signaled; any number of tasks can wait on it.
#[derive(Clone, Debug)]
pub struct Signal {
    name: &'static str,
    token: CancellationToken,
    logged: bool,
}

impl Signal {
    /// A new, unsignaled latch, logged when it is set.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            token: CancellationToken::new(),
            logged: true,
        }
    }

    /// A new, unsignaled latch set without a log line (one of many, reported together).
    pub fn quiet(name: &'static str) -> Self {
        Self {
            logged: false,
            ..Self::new(name)
        }
    }

    /// The latch's name, for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Sets the latch; later calls do nothing.
    pub fn signal(&self) {
        // Each latch has one owner that sets it (the run loop, a hook, the OS signal handler),
        // so checking first logs the transition once.
        if !self.token.is_cancelled() {
            self.token.cancel();
            if !self.logged {
                return;
            }
            tracing::info!(
                signal = self.name,
                "[graceful-termination] lifecycle signal"
            );
        }
    }

    /// Whether the latch is set.
    pub fn is_signaled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Waits until the latch is set.
    pub async fn wait(&self) {
        self.token.cancelled().await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_stays_set_and_wakes_every_waiter_including_later_ones() {
        let signal = Signal::new("Test");
        assert!(!signal.is_signaled());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.wait().await }
        });
        signal.signal();
        signal.signal();
        waiter.await.unwrap();
        assert!(signal.is_signaled());
        signal.wait().await;
    }
}
