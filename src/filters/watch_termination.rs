//! `--shutdown-watch-termination-grace-period` (upstream's `WithWatchTerminationDuringShutdown`):
//! once the server stops taking new requests its watches end, so their clients re-watch on
//! another server from their last resourceVersion, and the shutdown waits up to the grace period
//! for them to be gone. Watches end at a bounded rate (at least 200 a second, faster when that
//! would not drain them within the grace period), so their clients do not all come back at once.
//! New watches during the shutdown get upstream's 503 with `Retry-After: 1`.

use super::{Answer, Mapped, answer, request_info};
use crate::endpoints::observed_body::ObservedBody;
use crate::endpoints::request_info::Verb;
use crate::endpoints::status::ApiError;
use crate::endpoints::{Request, Response};
use crate::server::lifecycle::Signal;
use futures::future::{BoxFuture, Either, FutureExt};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tower::{Layer, Service};

/// Fewest watches ended a second while draining (upstream's floor).
const MIN_DRAIN_RATE: f64 = 200.0;

/// The server's open watches and how they drain at shutdown.
#[derive(Debug)]
pub struct WatchDrain {
    watches: TaskTracker,
    grace: Duration,
    /// When the next watch may end.
    next_end: Mutex<Option<Instant>>,
}

impl WatchDrain {
    /// Drains within `grace` (positive).
    pub fn new(grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            watches: TaskTracker::new(),
            grace,
            next_end: Mutex::new(None),
        })
    }

    /// Takes no new watches and waits up to the grace period for the open ones to end; whether
    /// they all did.
    pub async fn drain(&self) -> bool {
        self.watches.close();
        let open = self.watches.len();
        let drained = tokio::time::timeout(self.grace, self.watches.wait())
            .await
            .is_ok();
        tracing::info!(
            open,
            left = self.watches.len(),
            grace = ?self.grace,
            "[graceful-termination] active watch request(s) have drained"
        );
        drained
    }

    /// Waits for this watch's turn to end: one every 1/rate seconds, the rate enough to end all
    /// open watches within the grace period and at least [`MIN_DRAIN_RATE`].
    async fn turn_to_end(&self) {
        let rate = (self.watches.len() as f64 / self.grace.as_secs_f64()).max(MIN_DRAIN_RATE);
        let at = {
            let mut next = self.next_end.lock().unwrap_or_else(|e| e.into_inner());
            let at = next.map_or_else(Instant::now, |n| n.max(Instant::now()));
            *next = Some(at + Duration::from_secs_f64(1.0 / rate));
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// What a watch handler ends its stream on: the server shutting down, then its turn.
#[derive(Clone)]
pub struct WatchTermination(Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>);

impl WatchTermination {
    /// Resolves when the watch should end.
    pub fn ending(&self) -> BoxFuture<'static, ()> {
        (self.0)()
    }
}

/// Adds [`TerminateWatches`].
#[derive(Clone, Debug)]
pub struct WatchTerminationLayer {
    drain: Arc<WatchDrain>,
    shutting_down: Signal,
}

impl WatchTerminationLayer {
    /// Ends the watches of `drain` once `shutting_down` (NotAcceptingNewRequest) is signaled.
    pub fn new(drain: Arc<WatchDrain>, shutting_down: Signal) -> Self {
        Self {
            drain,
            shutting_down,
        }
    }
}

impl<S> Layer<S> for WatchTerminationLayer {
    type Service = TerminateWatches<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TerminateWatches {
            inner,
            drain: self.drain.clone(),
            shutting_down: self.shutting_down.clone(),
        }
    }
}

/// Counts each watch until its response ends and tells its handler when to end it.
#[derive(Clone, Debug)]
pub struct TerminateWatches<S> {
    inner: S,
    drain: Arc<WatchDrain>,
    shutting_down: Signal,
}

impl<S> Service<Request> for TerminateWatches<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<Either<S::Future, Mapped<S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        if request_info(req.extensions()).verb != Verb::Watch {
            return Either::Right(Either::Left(self.inner.call(req)));
        }
        if self.drain.watches.is_closed() {
            let mut resp =
                ApiError::service_unavailable("apiserver is shutting down").into_response();
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
            return answer(resp);
        }
        let watch = self.drain.watches.token();
        let (drain, shutting_down) = (self.drain.clone(), self.shutting_down.clone());
        req.extensions_mut()
            .insert(WatchTermination(Arc::new(move || {
                let (drain, shutting_down) = (drain.clone(), shutting_down.clone());
                async move {
                    shutting_down.wait().await;
                    drain.turn_to_end().await;
                }
                .boxed()
            })));
        Either::Right(Either::Right(self.inner.call(req).map(Box::new(
            move |resp: Result<Response, Infallible>| {
                resp.map(|r| {
                    r.map(|body| ObservedBody::wrap(body, 0, Box::new(move |_| drop(watch))))
                })
            },
        ))))
    }
}
