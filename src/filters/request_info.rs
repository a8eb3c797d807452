//! Request info: parses what the request means once, for every filter and handler after it.

use crate::endpoints::request_info::RequestInfo;
use crate::endpoints::{Request, Response};
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Adds [`WithRequestInfo`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestInfoLayer;

impl<S> Layer<S> for RequestInfoLayer {
    type Service = WithRequestInfo<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithRequestInfo { inner }
    }
}

/// Stores the request's [`RequestInfo`] in its extensions.
#[derive(Clone, Debug)]
pub struct WithRequestInfo<S> {
    inner: S,
}

impl<S> Service<Request> for WithRequestInfo<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let info = RequestInfo::parse(req.method(), req.uri().path(), req.uri().query());
        req.extensions_mut().insert(info);
        self.inner.call(req)
    }
}
