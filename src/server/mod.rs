//! The generic API server: delegation chain, health checks, hooks, and the run loop with graceful shutdown.
//!
//! As upstream's `GenericAPIServer`, each link of the chain owns some paths and hands every other
//! request to its delegate; health checks and hooks of the whole chain are collected by the
//! outermost link, which is the one prepared and run.

pub mod connection;
pub mod healthz;
pub mod lifecycle;
pub mod listener;
pub mod profiling;
pub mod resource_config;
mod run;
pub mod serving;
pub mod storage_factory;

pub use run::{PreparedApiServer, RunConfig, ServerError};

use crate::endpoints::{Handler, call, handler_fn};
use futures::future::BoxFuture;
use healthz::Check;
use lifecycle::LifecycleSignals;
use std::sync::Arc;

/// What a hook is handed: the lifecycle signals, to wait for shutdown.
#[derive(Clone)]
pub struct HookContext {
    /// The running server's lifecycle signals.
    pub signals: LifecycleSignals,
    /// The whole filtered handler, for in-process clients (requests carrying a loopback
    /// [`crate::auth::ConnInfo`] are served as the privileged loopback user).
    pub loopback: Handler,
}

/// A hook body; `Err` is a failure with a reason.
pub type HookFn = Arc<dyn Fn(HookContext) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A post-start hook that spawns `task` once, when the server starts, and is done at once.
pub fn spawn_once<F>(task: F) -> HookFn
where
    F: FnOnce(HookContext) -> BoxFuture<'static, ()> + Send + 'static,
{
    let task = std::sync::Mutex::new(Some(task));
    Arc::new(move |ctx| {
        if let Some(task) = task.lock().expect("poisoned").take() {
            tokio::spawn(task(ctx));
        }
        Box::pin(async { Ok(()) })
    })
}

/// A post-start hook that is done once `done` turns true (a controller's first sync), so
/// /readyz stays red until then.
pub fn wait_until(done: tokio::sync::watch::Receiver<bool>) -> HookFn {
    Arc::new(move |_ctx| {
        let mut done = done.clone();
        Box::pin(async move {
            done.wait_for(|d| *d)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    })
}

/// A named hook, run once after the listener is up (post-start) or once at shutdown (pre-shutdown).
#[derive(Clone)]
pub struct Hook {
    /// The hook's name; post-start hooks appear as `poststarthook/<name>` in health checks.
    pub name: String,
    /// The hook's body.
    pub run: HookFn,
}

/// What a link of the chain offers the link in front of it (upstream's `DelegationTarget`).
pub trait DelegationTarget: Send + Sync {
    /// The handler for every path this link or its delegates own, without filters.
    fn unprotected_handler(&self) -> Handler;
    /// Health checks of this link and its delegates (for /healthz, /livez and /readyz).
    fn health_checks(&self) -> Vec<Check>;
    /// Checks of this link and its delegates that only /readyz runs.
    fn readyz_checks(&self) -> Vec<Check>;
    /// Post-start hooks of this link and its delegates.
    fn post_start_hooks(&self) -> Vec<Hook>;
    /// Pre-shutdown hooks of this link and its delegates.
    fn pre_shutdown_hooks(&self) -> Vec<Hook>;
}

/// The end of the chain: answers 404 with a NotFound Status, owns nothing else.
pub struct EmptyDelegate;

impl DelegationTarget for EmptyDelegate {
    fn unprotected_handler(&self) -> Handler {
        handler_fn(|_req| async { crate::endpoints::status::page_not_found() })
    }
    fn health_checks(&self) -> Vec<Check> {
        Vec::new()
    }
    fn readyz_checks(&self) -> Vec<Check> {
        Vec::new()
    }
    fn post_start_hooks(&self) -> Vec<Hook> {
        Vec::new()
    }
    fn pre_shutdown_hooks(&self) -> Vec<Hook> {
        Vec::new()
    }
}

/// A path a server owns: exact, or a prefix that matches whole segments.
#[derive(Clone)]
struct Route {
    path: String,
    prefix: bool,
    handler: Handler,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        if self.prefix {
            path == self.path
                || path
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        } else {
            path == self.path
        }
    }
}

/// One link of the server chain.
pub struct GenericApiServer {
    name: &'static str,
    routes: Vec<Route>,
    health_checks: Vec<Check>,
    readyz_checks: Vec<Check>,
    post_start_hooks: Vec<Hook>,
    pre_shutdown_hooks: Vec<Hook>,
    delegate: Arc<dyn DelegationTarget>,
}

impl GenericApiServer {
    /// A new link named `name` in front of `delegate`.
    pub fn new(name: &'static str, delegate: Arc<dyn DelegationTarget>) -> Self {
        Self {
            name,
            routes: Vec::new(),
            health_checks: Vec::new(),
            readyz_checks: Vec::new(),
            post_start_hooks: Vec::new(),
            pre_shutdown_hooks: Vec::new(),
            delegate,
        }
    }

    /// The link's name, for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Serves `path` exactly.
    pub fn handle(&mut self, path: &str, handler: Handler) {
        self.routes.push(Route {
            path: path.into(),
            prefix: false,
            handler,
        });
    }

    /// Serves `prefix` and every path below it.
    pub fn handle_prefix(&mut self, prefix: &str, handler: Handler) {
        self.routes.push(Route {
            path: prefix.trim_end_matches('/').into(),
            prefix: true,
            handler,
        });
    }

    /// The handler of the rest of the chain, for paths this link shares with later links.
    pub fn delegate_handler(&self) -> Handler {
        self.delegate.unprotected_handler()
    }

    /// Adds a health check to /healthz, /livez and /readyz.
    pub fn add_health_check(&mut self, check: Check) {
        self.health_checks.push(check);
    }

    /// Adds a check only /readyz runs.
    pub fn add_readyz_check(&mut self, check: Check) {
        self.readyz_checks.push(check);
    }

    /// Adds a hook run once the server listens; /readyz stays red until it returns.
    pub fn add_post_start_hook(&mut self, name: &str, run: HookFn) {
        self.post_start_hooks.push(Hook {
            name: name.into(),
            run,
        });
    }

    /// Adds a hook run when shutdown begins.
    pub fn add_pre_shutdown_hook(&mut self, name: &str, run: HookFn) {
        self.pre_shutdown_hooks.push(Hook {
            name: name.into(),
            run,
        });
    }
}

impl DelegationTarget for GenericApiServer {
    fn unprotected_handler(&self) -> Handler {
        let routes = Arc::new(self.routes.clone());
        let next = self.delegate.unprotected_handler();
        handler_fn(move |req| {
            let routes = routes.clone();
            let next = next.clone();
            async move {
                let owner = routes.iter().find(|r| r.matches(req.uri().path()));
                match owner {
                    Some(route) => call(&route.handler, req).await,
                    None => call(&next, req).await,
                }
            }
        })
    }

    fn health_checks(&self) -> Vec<Check> {
        let mut checks = self.delegate.health_checks();
        checks.extend(self.health_checks.iter().cloned());
        checks
    }

    fn readyz_checks(&self) -> Vec<Check> {
        let mut checks = self.delegate.readyz_checks();
        checks.extend(self.readyz_checks.iter().cloned());
        checks
    }

    fn post_start_hooks(&self) -> Vec<Hook> {
        let mut hooks = self.delegate.post_start_hooks();
        hooks.extend(self.post_start_hooks.iter().cloned());
        hooks
    }

    fn pre_shutdown_hooks(&self) -> Vec<Hook> {
        let mut hooks = self.pre_shutdown_hooks.clone();
        hooks.extend(self.delegate.pre_shutdown_hooks());
        hooks
    }
}
