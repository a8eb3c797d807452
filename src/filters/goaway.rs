//! `--goaway-chance` (upstream's `WithProbabilisticGoaway`): with that probability an HTTP/2
//! request asks its connection to go away, so that a client behind a load balancer reconnects
//! and its load spreads over the servers; requests in flight finish, new ones reconnect.

use crate::endpoints::{Request, Response};
use crate::server::serving::Goaway;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Adds [`ProbabilisticGoaway`].
#[derive(Clone, Debug)]
pub struct GoawayLayer {
    chance: f64,
}

impl GoawayLayer {
    /// Sends GOAWAY after an HTTP/2 request with probability `chance`.
    pub fn new(chance: f64) -> Self {
        Self { chance }
    }
}

impl<S> Layer<S> for GoawayLayer {
    type Service = ProbabilisticGoaway<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProbabilisticGoaway {
            inner,
            chance: self.chance,
        }
    }
}

/// Rolls the dice for each HTTP/2 request and passes it on either way.
#[derive(Clone, Debug)]
pub struct ProbabilisticGoaway<S> {
    inner: S,
    chance: f64,
}

impl<S> Service<Request> for ProbabilisticGoaway<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.version() == http::Version::HTTP_2
            && fastrand::f64() < self.chance
            && let Some(goaway) = req.extensions().get::<Arc<Goaway>>()
        {
            goaway.ask();
        }
        self.inner.call(req)
    }
}
