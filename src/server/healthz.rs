//! /healthz, /livez and /readyz: named checks, `?verbose`, `?exclude=`, and `/<endpoint>/<check>`.

use crate::endpoints::{Response, text};
use futures::future::BoxFuture;
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A named health check, as upstream's `healthz.HealthChecker`.
pub trait HealthCheck: Send + Sync {
    /// The check's name, shown as `[+]name ok`.
    fn name(&self) -> &str;
    /// `Err(reason)` when unhealthy; the reason is logged, never shown to clients.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// A shared, type-erased check.
pub type Check = Arc<dyn HealthCheck>;

/// `ping`: always healthy; proves the handler chain answers.
pub struct Ping;

impl HealthCheck for Ping {
    fn name(&self) -> &str {
        "ping"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// `log`: fails when the log writer has not been flushed for a minute, as upstream's LogHealthz
/// (a wedged stderr would otherwise block every request that logs).
pub struct LogHealth {
    last_flush_unix_ms: Arc<AtomicU64>,
}

const LOG_FLUSH_PERIOD: Duration = Duration::from_secs(5);
const LOG_STALE_AFTER: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl LogHealth {
    /// Starts the flusher on a blocking thread, since a blocked write must not stall the runtime.
    pub fn start() -> Self {
        let last = Arc::new(AtomicU64::new(now_ms()));
        let writer = last.clone();
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                loop {
                    use std::io::Write;
                    if std::io::stderr().flush().is_ok() {
                        writer.store(now_ms(), Ordering::Relaxed);
                    }
                    std::thread::sleep(LOG_FLUSH_PERIOD);
                }
            })
            .expect("spawning a thread");
        Self {
            last_flush_unix_ms: last,
        }
    }
}

impl HealthCheck for LogHealth {
    fn name(&self) -> &str {
        "log"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let since = now_ms().saturating_sub(self.last_flush_unix_ms.load(Ordering::Relaxed));
        Box::pin(async move {
            if since > LOG_STALE_AFTER.as_millis() as u64 {
                Err(format!("logging blocked: last flush {since}ms ago"))
            } else {
                Ok(())
            }
        })
    }
}

/// A check that fails until a signal is set (post-start hooks) or once it is set (shutdown).
pub struct SignalCheck {
    /// The check's name.
    pub name: String,
    /// The latch it watches.
    pub signal: super::lifecycle::Signal,
    /// Healthy when the latch is set (true) or when it is not (false).
    pub healthy_when_signaled: bool,
    /// The failure reason.
    pub reason: &'static str,
}

impl HealthCheck for SignalCheck {
    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let ok = self.signal.is_signaled() == self.healthy_when_signaled;
        Box::pin(async move {
            if ok {
                Ok(())
            } else {
                Err(self.reason.to_string())
            }
        })
    }
}

/// A check healthy once a flag on a channel turns true (a controller's first pass done).
pub struct FlagCheck {
    /// The check's name.
    pub name: &'static str,
    /// The flag.
    pub done: tokio::sync::watch::Receiver<bool>,
    /// The failure reason.
    pub reason: &'static str,
}

impl HealthCheck for FlagCheck {
    fn name(&self) -> &str {
        self.name
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let ok = *self.done.borrow();
        Box::pin(async move {
            if ok {
                Ok(())
            } else {
                Err(self.reason.to_string())
            }
        })
    }
}

/// One health endpoint (`healthz`, `livez` or `readyz`) with its checks.
#[derive(Clone)]
pub struct HealthEndpoint {
    name: &'static str,
    checks: Arc<Vec<Check>>,
}

impl HealthEndpoint {
    /// An endpoint named `name` serving `checks` in order.
    pub fn new(name: &'static str, checks: Vec<Check>) -> Self {
        Self {
            name,
            checks: Arc::new(checks),
        }
    }

    /// The path this endpoint owns.
    pub fn path(&self) -> String {
        format!("/{}", self.name)
    }

    /// The names of its checks, in order.
    pub fn check_names(&self) -> Vec<String> {
        self.checks.iter().map(|c| c.name().to_string()).collect()
    }

    /// Serves `/<name>` and `/<name>/<check>`; `None` if the path is not this endpoint's.
    pub async fn serve(&self, path: &str, query: Option<&str>) -> Option<Response> {
        let rest = path.strip_prefix('/')?.strip_prefix(self.name)?;
        if rest.is_empty() || rest == "/" {
            return Some(self.serve_all(query).await);
        }
        let check_name = rest.strip_prefix('/')?;
        let check = self.checks.iter().find(|c| c.name() == check_name)?;
        Some(match check.check().await {
            Ok(()) => text(StatusCode::OK, "ok"),
            Err(reason) => {
                tracing::info!(endpoint = self.name, check = check_name, %reason, "health check failed");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal server error: {reason}\n"),
                )
            }
        })
    }

    async fn serve_all(&self, query: Option<&str>) -> Response {
        let mut verbose = false;
        let mut excluded: Vec<String> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "verbose" => verbose = true,
                "exclude" => excluded.push(v.into_owned()),
                _ => {}
            }
        }
        let mut out = String::new();
        let mut failed = Vec::new();
        for check in self.checks.iter() {
            if let Some(pos) = excluded.iter().position(|e| e == check.name()) {
                excluded.remove(pos);
                out.push_str(&format!("[+]{} excluded: ok\n", check.name()));
                continue;
            }
            let result = check.check().await;
            crate::metrics::slis::slis().observe(check.name(), self.name, result.is_ok());
            match result {
                Ok(()) => out.push_str(&format!("[+]{} ok\n", check.name())),
                Err(reason) => {
                    out.push_str(&format!("[-]{} failed: reason withheld\n", check.name()));
                    failed.push(format!("{}: {reason}", check.name()));
                }
            }
        }
        if !excluded.is_empty() {
            let quoted: Vec<String> = excluded.iter().map(|e| format!("{e:?}")).collect();
            out.push_str(&format!(
                "warn: some health checks cannot be excluded: no matches for {}\n",
                quoted.join(",")
            ));
        }
        if !failed.is_empty() {
            tracing::info!(endpoint = self.name, failed = %failed.join("; "), "health check failed");
            // Upstream is always verbose on failure.
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{out}{} check failed\n", self.name),
            );
        }
        if !verbose {
            return text(StatusCode::OK, "ok");
        }
        text(StatusCode::OK, format!("{out}{} check passed\n", self.name))
    }
}
