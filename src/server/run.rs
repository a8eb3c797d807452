//! `prepare_run()` and `run()`: health endpoints, post-start hooks, and graceful termination.

use super::healthz::{Check, HealthEndpoint, LogHealth, Ping, SignalCheck};
use super::lifecycle::{LifecycleSignals, Signal};
use super::{DelegationTarget, GenericApiServer, Hook, HookContext, serving};
use crate::endpoints::{Handler, handler_fn};
use crate::filters::{FilterConfig, build_handler_chain};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// Errors that end a running server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A post-start hook failed; upstream treats this as fatal.
    #[error("PostStartHook {name:?} failed: {reason}")]
    PostStartHook {
        /// The hook.
        name: String,
        /// Its error.
        reason: String,
    },
}

/// Settings of the run loop.
pub struct RunConfig {
    /// --shutdown-delay-duration.
    pub shutdown_delay: Duration,
    /// --shutdown-send-retry-after.
    pub send_retry_after: bool,
    /// --request-timeout: also bounds the drain of in-flight requests.
    pub request_timeout: Duration,
    /// Installs SIGTERM/SIGINT handlers (off in tests that drive the signals themselves).
    pub handle_os_signals: bool,
    /// --http2-max-streams-per-connection (0: Go's default, 250).
    pub http2_max_streams: u32,
    /// The watches to drain before the server stops (--shutdown-watch-termination-grace-period).
    pub watch_drain: Option<Arc<crate::filters::watch_termination::WatchDrain>>,
}

/// A server with its health endpoints and filter chain installed, ready to run.
pub struct PreparedApiServer {
    handler: Handler,
    post_start_hooks: Vec<(Hook, Signal)>,
    pre_shutdown_hooks: Vec<Hook>,
    signals: LifecycleSignals,
    /// Non-long-running requests in flight; closed when the drain starts.
    in_flight: TaskTracker,
    config: RunConfig,
    readyz_checks: Vec<String>,
}

impl GenericApiServer {
    /// Installs /healthz, /livez and /readyz with the chain's checks, and wraps the chain in the filters.
    pub fn prepare_run(
        mut self,
        filters: impl FnOnce(&LifecycleSignals, TaskTracker) -> FilterConfig,
        config: RunConfig,
    ) -> PreparedApiServer {
        let signals = LifecycleSignals::default();
        let post_start_hooks: Vec<(Hook, Signal)> = self
            .post_start_hooks()
            .into_iter()
            .map(|hook| (hook, Signal::quiet("PostStartHookFinished")))
            .collect();

        let mut checks: Vec<Check> = vec![Arc::new(Ping), Arc::new(LogHealth::start())];
        checks.extend(self.health_checks());
        // Upstream's order: its own checks, the readiness-only ones, then the hooks.
        let mut ready_checks = checks.clone();
        ready_checks.extend(self.readyz_checks());
        for (hook, done) in &post_start_hooks {
            let hook_check: Check = Arc::new(SignalCheck {
                name: format!("poststarthook/{}", hook.name),
                signal: done.clone(),
                healthy_when_signaled: true,
                reason: "not finished",
            });
            checks.push(hook_check.clone());
            ready_checks.push(hook_check);
        }
        ready_checks.push(Arc::new(SignalCheck {
            name: "shutdown".into(),
            signal: signals.shutdown_initiated.clone(),
            healthy_when_signaled: false,
            reason: "process is shutting down",
        }));
        let readyz = HealthEndpoint::new("readyz", ready_checks);
        let readyz_checks = readyz.check_names();
        for endpoint in [
            HealthEndpoint::new("healthz", checks.clone()),
            HealthEndpoint::new("livez", checks),
            readyz,
        ] {
            let path = endpoint.path();
            self.handle_prefix(
                &path,
                handler_fn(move |req| {
                    let endpoint = endpoint.clone();
                    let (path, query) = (
                        req.uri().path().to_string(),
                        req.uri().query().map(str::to_string),
                    );
                    async move {
                        match endpoint.serve(&path, query.as_deref()).await {
                            Some(resp) => resp,
                            None => crate::endpoints::status::page_not_found(),
                        }
                    }
                }),
            );
        }

        let in_flight = TaskTracker::new();
        let handler = build_handler_chain(
            self.unprotected_handler(),
            filters(&signals, in_flight.clone()),
        );
        PreparedApiServer {
            handler,
            post_start_hooks,
            pre_shutdown_hooks: self.pre_shutdown_hooks(),
            signals,
            in_flight,
            config,
            readyz_checks,
        }
    }
}

impl PreparedApiServer {
    /// The lifecycle signals, to trigger or observe shutdown.
    pub fn signals(&self) -> &LifecycleSignals {
        &self.signals
    }

    /// The names of /readyz's checks, in order.
    pub fn readyz_checks(&self) -> &[String] {
        &self.readyz_checks
    }

    /// Serves until shutdown, then terminates gracefully as upstream's `preparedGenericAPIServer.Run`:
    /// /readyz turns red at once, requests are still served for the shutdown delay, then the
    /// listener closes (or answers 429 until drained), and in-flight requests finish.
    pub async fn run(
        self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<(), ServerError> {
        let signals = self.signals.clone();
        if self.config.handle_os_signals {
            spawn_signal_handler(signals.shutdown_initiated.clone());
        }
        let stop_serving = Signal::new("StopServing");
        let serving = tokio::spawn(serving::serve(
            listener,
            tls,
            self.handler.clone(),
            stop_serving.clone(),
            self.config.request_timeout,
            self.config.http2_max_streams,
        ));

        let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel();
        let ctx = HookContext {
            signals: signals.clone(),
            loopback: self.handler.clone(),
        };
        let hooks: Vec<(String, Signal)> = self
            .post_start_hooks
            .iter()
            .map(|(hook, done)| (hook.name.to_string(), done.clone()))
            .collect();
        tokio::spawn(async move {
            for (_, done) in &hooks {
                done.wait().await;
            }
            let names: Vec<&str> = hooks.iter().map(|(name, _)| name.as_str()).collect();
            tracing::info!(hooks = %names.join(","), "post-start hooks finished");
        });
        for (hook, done) in self.post_start_hooks {
            let (ctx, failed_tx) = (ctx.clone(), failed_tx.clone());
            tokio::spawn(async move {
                match (hook.run)(ctx).await {
                    Ok(()) => done.signal(),
                    Err(reason) => {
                        let _ = failed_tx.send(ServerError::PostStartHook {
                            name: hook.name,
                            reason,
                        });
                    }
                }
            });
        }
        drop(failed_tx);

        tokio::select! {
            _ = signals.shutdown_initiated.wait() => {}
            Some(err) = failed_rx.recv() => {
                stop_serving.signal();
                return Err(err);
            }
        }

        // Pre-shutdown hooks start with the shutdown, as upstream, so that e.g. removing this
        // server from the `kubernetes` endpoints happens while the delay lets clients move away.
        let pre_shutdown_done = signals.pre_shutdown_hooks_stopped.clone();
        let hooks = self.pre_shutdown_hooks;
        tokio::spawn(async move {
            for hook in hooks {
                if let Err(reason) = (hook.run)(ctx.clone()).await {
                    tracing::error!(hook = %hook.name, %reason, "pre-shutdown hook failed");
                }
            }
            pre_shutdown_done.signal();
        });

        tokio::time::sleep(self.config.shutdown_delay).await;
        signals.after_shutdown_delay_duration.signal();
        signals.not_accepting_new_requests.signal();
        // Closed, the tracker's `wait` returns once no tracked request is left in flight.
        self.in_flight.close();
        // Watches end as of now, alongside the drain of the other requests.
        let watches_drained = self.config.watch_drain.clone().map(|watches| {
            tokio::spawn(async move {
                watches.drain().await;
            })
        });
        let drain = self.config.request_timeout;
        if self.config.send_retry_after {
            // Keep the listener open so clients get a 429 with Retry-After instead of a refused connection.
            let _ = tokio::time::timeout(drain, self.in_flight.wait()).await;
        }
        stop_serving.signal();
        if tokio::time::timeout(drain, self.in_flight.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "[graceful-termination] in-flight requests did not finish within {drain:?}"
            );
        }
        if let Some(watches) = watches_drained {
            let _ = watches.await;
        }
        signals.in_flight_requests_drained.signal();
        let _ = serving.await;
        let _ = tokio::time::timeout(drain, signals.pre_shutdown_hooks_stopped.wait()).await;
        tracing::info!("[graceful-termination] apiserver is exiting");
        Ok(())
    }
}

/// The first SIGTERM or SIGINT starts the graceful shutdown; a second one exits at once with status 1.
fn spawn_signal_handler(shutdown: Signal) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("[graceful-termination] received a termination signal; shutting down");
        shutdown.signal();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::error!("received a second termination signal; exiting now");
        std::process::exit(1);
    });
}
