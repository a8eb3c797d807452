//! Pretty-printing: indents JSON for people, which upstream's serializers do wherever they
//! negotiate an output; this one filter covers every body.

use super::request_info;
use crate::endpoints::request_info::Verb;
use crate::endpoints::status::ApiError;
use crate::endpoints::{Finite, Request, Response, Verbatim, full};
use futures::FutureExt;
use futures::future::{BoxFuture, Either, Then};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Adds [`PrettyJson`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PrettyJsonLayer;

impl<S> Layer<S> for PrettyJsonLayer {
    type Service = PrettyJson<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PrettyJson { inner }
    }
}

/// Indents whole JSON bodies (not watch streams, not proxied ones) for requests that want it,
/// two spaces and no trailing newline, as Go's `json.MarshalIndent`.
#[derive(Clone, Debug)]
pub struct PrettyJson<S> {
    inner: S,
}

impl<S> Service<Request> for PrettyJson<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        S::Future,
        Then<S::Future, Indenting, fn(Result<Response, Infallible>) -> Indenting>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let pretty = wants_pretty(&req) && request_info(req.extensions()).verb != Verb::Watch;
        let resp = self.inner.call(req);
        if !pretty {
            return Either::Left(resp);
        }
        Either::Right(resp.then(indenting as fn(_) -> _))
    }
}

/// Indenting a response; only requests for indented JSON, from people, pay for its box.
type Indenting = BoxFuture<'static, Result<Response, Infallible>>;

fn indenting(resp: Result<Response, Infallible>) -> Indenting {
    let Ok(resp) = resp;
    async move { Ok(indent(resp).await) }.boxed()
}

/// Whether a request asks for indented JSON: `pretty=1` on an accepted media type; else the
/// first `?pretty=` when not empty (Go's ParseBool; anything else is false); else a
/// User-Agent of a browser or a command-line HTTP tool, as upstream's negotiation and
/// `isPrettyPrint`.
fn wants_pretty(req: &Request) -> bool {
    let accept_pretty = req
        .headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .skip(1)
                .any(|param| param.trim() == "pretty=1")
        });
    if accept_pretty {
        return true;
    }
    let pretty = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "pretty")
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    });
    if let Some(v) = pretty {
        return matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True");
    }
    let agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ["curl", "Wget", "Mozilla/5.0"]
        .iter()
        .any(|p| agent.starts_with(p))
}

/// Indents `resp`'s body if it is JSON that ends by itself (of known length, or a streamed
/// list) and that no one asked to keep verbatim.
async fn indent(resp: Response) -> Response {
    let json = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json
        || resp.extensions().get::<Verbatim>().is_some()
        || (resp.body().size_hint().exact().is_none()
            && resp.extensions().get::<Finite>().is_none())
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await else {
        return ApiError::internal("reading a response body failed").into_response();
    };
    let bytes = collected.to_bytes();
    let indented = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| serde_json::to_vec_pretty(&v).ok());
    let mut resp =
        http::Response::from_parts(parts, full(indented.unwrap_or_else(|| bytes.to_vec())));
    resp.headers_mut().remove(http::header::CONTENT_LENGTH);
    resp
}
