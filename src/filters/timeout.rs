//! Timeout: a non-long-running request that outlives --request-timeout gets 504.

use super::request_info;
use crate::endpoints::status::ApiError;
use crate::endpoints::{Request, Response};
use futures::FutureExt;
use futures::future::{Either, Map};
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::error::Elapsed;
use tower::{Layer, Service};

/// Adds [`Timeout`].
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl TimeoutLayer {
    /// Answers 504 after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// Bounds non-long-running requests by a deadline (upstream's
/// `WithTimeoutForNonLongRunningRequests`).
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

/// The inner future's result, or its deadline.
type Deadlined = Result<Result<Response, Infallible>, Elapsed>;

fn timed_out(result: Deadlined) -> Result<Response, Infallible> {
    result.unwrap_or_else(|_| {
        Ok(
            ApiError::timeout("request did not complete within the allotted timeout")
                .into_response(),
        )
    })
}

impl<S> Service<Request> for Timeout<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        S::Future,
        Map<tokio::time::Timeout<S::Future>, fn(Deadlined) -> Result<Response, Infallible>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if request_info(req.extensions()).is_long_running() {
            return Either::Left(self.inner.call(req));
        }
        let resp = tokio::time::timeout(self.timeout, self.inner.call(req));
        Either::Right(resp.map(timed_out as fn(Deadlined) -> _))
    }
}
