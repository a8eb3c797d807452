//! Retry-after during shutdown: with --shutdown-send-retry-after, new requests get 429 and
//! `Connection: close` once the server stops taking them.

use super::{Answer, answer};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Request, Response};
use crate::server::lifecycle::Signal;
use futures::future::Either;
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Paths a load balancer must keep reaching while the server drains.
const RETRY_AFTER_EXEMPT: &[&str] = &["/readyz", "/livez", "/healthz"];

/// Adds [`RetryAfter`].
#[derive(Clone, Debug)]
pub struct RetryAfterLayer {
    not_accepting: Signal,
}

impl RetryAfterLayer {
    /// Answers 429 once `not_accepting` is set.
    pub fn new(not_accepting: Signal) -> Self {
        Self { not_accepting }
    }
}

impl<S> Layer<S> for RetryAfterLayer {
    type Service = RetryAfter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryAfter {
            inner,
            not_accepting: self.not_accepting.clone(),
        }
    }
}

/// Answers new requests 429 with `Retry-After` while the server drains, except health probes.
#[derive(Clone, Debug)]
pub struct RetryAfter<S> {
    inner: S,
    not_accepting: Signal,
}

fn exempt(path: &str) -> bool {
    RETRY_AFTER_EXEMPT.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

impl<S> Service<Request> for RetryAfter<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if !self.not_accepting.is_signaled() || exempt(req.uri().path()) {
            return Either::Right(self.inner.call(req));
        }
        let mut resp = ApiError::too_many_requests(
            "The apiserver is shutting down, please try again later.",
            5,
        )
        .into_response();
        resp.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        answer(resp)
    }
}
