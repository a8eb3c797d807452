//! HTTP-facing pieces shared by every server of the chain: body and handler types, request info, Status errors.

pub mod discovery;
pub mod handlers;
pub mod negotiation;
pub mod observed_body;
pub mod openapi;
pub mod patch;
pub mod request_info;
pub mod status;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use std::convert::Infallible;

/// Error type carried by bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request or response body: hyper's, a buffered one, or a stream.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;
/// A request as handlers see it.
pub type Request = http::Request<Body>;
/// A response as handlers produce it.
pub type Response = http::Response<Body>;
/// A cloneable, type-erased handler: what every link of the server chain and every filter is.
pub type Handler = tower::util::BoxCloneSyncService<Request, Response, Infallible>;

/// Marks a response whose body must reach the client byte for byte (a proxied extension's,
/// a cached OpenAPI document), so no filter rewrites it.
#[derive(Debug, Clone, Copy)]
pub struct Verbatim;

/// Marks a streamed response whose body ends by itself (a streamed list, unlike a watch or a
/// followed log), so a filter may read it whole, as it does a body of known length.
#[derive(Debug, Clone, Copy)]
pub struct Finite;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body sent as the chunks of `chunks`, each made only when the connection can take it; an
/// error ends the body unfinished.
pub fn chunked<I>(chunks: I) -> Body
where
    I: Iterator<Item = Result<Bytes, BoxError>> + Send + 'static,
{
    StreamBody::new(futures::stream::iter(chunks.map(|c| c.map(Frame::data)))).boxed_unsync()
}

/// Builds a [`Handler`] from an async function.
pub fn handler_fn<F, Fut>(f: F) -> Handler
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response> + Send + 'static,
{
    tower::util::BoxCloneSyncService::new(tower::service_fn(move |req| {
        let fut = f(req);
        async move { Ok::<_, Infallible>(fut.await) }
    }))
}

/// Calls a handler; handlers cannot fail, errors are responses.
///
/// The returned future owns a clone of the handler, so it is `'static` and can be held across
/// awaits inside other handlers without higher-ranked lifetime trouble.
pub fn call(
    handler: &Handler,
    req: Request,
) -> impl std::future::Future<Output = Response> + Send + 'static {
    use tower::Service;
    let mut handler = handler.clone();
    // Every handler is a `service_fn`, always ready, so `call` needs no `poll_ready` first; calling
    // it here, outside the async block, keeps the returned future free of borrowed lifetimes.
    let fut = handler.call(req);
    async move {
        match fut.await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    }
}

/// A response with a plain-text body.
pub fn text(status: http::StatusCode, body: impl Into<Bytes>) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(full(body))
        .expect("static headers are valid")
}

/// A response with a JSON body.
pub fn json(status: http::StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("API types always serialize");
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .expect("static headers are valid")
}
