//! Max-in-flight, without API Priority and Fairness: at most --max-requests-inflight read-only
//! and --max-mutating-requests-inflight mutating non-long-running requests at once; the rest
//! get 429, except system:masters, who always get an answer (upstream's `WithMaxInFlightLimit`).

use super::{Answer, answer, request_info, too_many_requests};
use crate::auth::UserInfo;
use crate::endpoints::{Request, Response};
use futures::future::Either;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

/// Adds [`MaxInFlight`].
#[derive(Clone, Debug)]
pub struct MaxInFlightLayer {
    readonly: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

impl MaxInFlightLayer {
    /// Seats for `readonly` and `mutating` requests; 0 is unlimited.
    pub fn new(readonly: usize, mutating: usize) -> Self {
        let seats = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        Self {
            readonly: seats(readonly),
            mutating: seats(mutating),
        }
    }
}

impl<S> Layer<S> for MaxInFlightLayer {
    type Service = MaxInFlight<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MaxInFlight {
            inner,
            readonly: self.readonly.clone(),
            mutating: self.mutating.clone(),
        }
    }
}

/// Gives each request a seat of its kind for as long as its response takes, or answers 429
/// when none is free.
#[derive(Clone, Debug)]
pub struct MaxInFlight<S> {
    inner: S,
    readonly: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

/// The inner future, holding the request's seat until it completes.
pub struct Seated<F> {
    future: F,
    _seat: Option<OwnedSemaphorePermit>,
}

// The inner future is authorization's, an immediate answer or a boxed handler future: `Unpin`,
// so it is polled in place without pin projection.
impl<F: Future + Unpin> Future for Seated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        Pin::new(&mut self.future).poll(cx)
    }
}

impl<S> Service<Request> for MaxInFlight<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<Seated<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let info = request_info(req.extensions());
        let limit = if info.is_long_running() {
            None
        } else if info.is_mutating() {
            self.mutating.as_ref()
        } else {
            self.readonly.as_ref()
        };
        let seat = match limit.map(|s| s.clone().try_acquire_owned()) {
            None => None,
            Some(Ok(seat)) => Some(seat),
            Some(Err(_)) => {
                let privileged = req.extensions().get::<UserInfo>().is_some_and(|u| {
                    u.groups
                        .iter()
                        .any(|g| g == crate::auth::authorizer::PRIVILEGED_GROUP)
                });
                if !privileged {
                    return answer(too_many_requests(1));
                }
                None
            }
        };
        Either::Right(Seated {
            future: self.inner.call(req),
            _seat: seat,
        })
    }
}
