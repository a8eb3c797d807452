//! In-flight tracking: the shutdown drain waits for every non-long-running request
//! (upstream's `WithWaitGroup`).

use super::request_info;
use crate::endpoints::{Request, Response};
use futures::future::Either;
use std::convert::Infallible;
use std::task::{Context, Poll};
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TrackedFuture;
use tower::{Layer, Service};

/// Adds [`InFlight`].
#[derive(Clone, Debug)]
pub struct InFlightLayer {
    tracker: TaskTracker,
}

impl InFlightLayer {
    /// Tracks requests in `tracker`.
    pub fn new(tracker: TaskTracker) -> Self {
        Self { tracker }
    }
}

impl<S> Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InFlight {
            inner,
            tracker: self.tracker.clone(),
        }
    }
}

/// Counts a non-long-running request in the tracker until its response is ready; watches and
/// proxies would hold the drain forever, so they are not counted.
#[derive(Clone, Debug)]
pub struct InFlight<S> {
    inner: S,
    tracker: TaskTracker,
}

impl<S> Service<Request> for InFlight<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, TrackedFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if request_info(req.extensions()).is_long_running() {
            return Either::Left(self.inner.call(req));
        }
        Either::Right(self.tracker.track_future(self.inner.call(req)))
    }
}
