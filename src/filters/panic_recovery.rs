//! Panic recovery: a panicking handler answers 500 instead of dropping the connection.

use crate::endpoints::{Body, BoxError, Request, Response, text};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::Map;
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt;
use std::any::Any;
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::{Layer, Service};
use tower_http::catch_panic::{CatchPanic, ResponseForPanic, ResponseFuture};

/// Adds [`PanicRecovery`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PanicRecoveryLayer;

impl<S> Layer<S> for PanicRecoveryLayer {
    type Service = PanicRecovery<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PanicRecovery { inner }
    }
}

/// Catches panics of the inner service, in `call` or in its future, with tower-http's
/// [`CatchPanic`].
#[derive(Clone, Debug)]
pub struct PanicRecovery<S> {
    inner: S,
}

/// What a caught panic answers; it names the request in the log, so it is made per request
/// (tower-http's panic handler sees the panic, not the request).
#[derive(Clone, Debug)]
pub struct PanicResponse {
    method: Method,
    uri: Uri,
}

impl ResponseForPanic for PanicResponse {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, _panic: Box<dyn Any + Send>) -> http::Response<Body> {
        tracing::error!(method = %self.method, path = %self.uri.path(), "handler panicked");
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This request caused apiserver to panic. Look in the logs for details.\n",
        )
    }
}

/// [`CatchPanic`]'s response, whose body is tower-http's box.
type Caught = Result<http::Response<tower_http::body::UnsyncBoxBody<Bytes, BoxError>>, Infallible>;

fn into_handler_response(caught: Caught) -> Result<Response, Infallible> {
    caught.map(|resp| resp.map(BodyExt::boxed_unsync))
}

impl<S> Service<Request> for PanicRecovery<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        Map<ResponseFuture<S::Future, PanicResponse>, fn(Caught) -> Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Cheap clones: the URI shares the request's bytes.
        let on_panic = PanicResponse {
            method: req.method().clone(),
            uri: req.uri().clone(),
        };
        CatchPanic::custom(&mut self.inner, on_panic)
            .call(req)
            .map(into_handler_response as fn(Caught) -> _)
    }
}
