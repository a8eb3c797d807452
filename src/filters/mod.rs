//! The filter chain in front of the server chain, outermost first, in upstream's order
//! (`DefaultBuildHandlerChain`): panic recovery → request info → retry-after during shutdown →
//! in-flight tracking → timeout → authentication → max-in-flight → authorization → handler.
//! Inside request info, pretty-printing indents JSON for people, which upstream's
//! serializers do wherever they negotiate an output; one filter covers every body here.

use crate::auth::authorizer::forbidden_message;
use crate::auth::{Authenticator, Authorizer, ConnInfo, Decision};
use crate::endpoints::request_info::RequestInfo;
use crate::endpoints::status::ApiError;
use crate::endpoints::{Handler, Request, Verbatim, call, full, handler_fn, text};
use crate::server::lifecycle::Signal;
use futures::FutureExt;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Body as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Everything the filters need.
pub struct FilterConfig {
    /// Who is asking.
    pub authenticator: Arc<Authenticator>,
    /// May they.
    pub authorizer: Arc<Authorizer>,
    /// --max-requests-inflight (0: unlimited).
    pub max_requests_inflight: usize,
    /// --max-mutating-requests-inflight (0: unlimited).
    pub max_mutating_requests_inflight: usize,
    /// --request-timeout.
    pub request_timeout: Duration,
    /// Set when the server stops taking new requests.
    pub not_accepting_new_requests: Signal,
    /// --shutdown-send-retry-after.
    pub send_retry_after: bool,
    /// Counts in-flight non-long-running requests for the shutdown drain.
    pub in_flight: InFlight,
}

/// Wraps `handler` in the whole filter chain.
pub fn build_handler_chain(handler: Handler, c: FilterConfig) -> Handler {
    let handler = with_authorization(handler, c.authorizer);
    let handler = with_max_in_flight(
        handler,
        c.max_requests_inflight,
        c.max_mutating_requests_inflight,
    );
    let handler = with_authentication(handler, c.authenticator);
    let handler = with_timeout(handler, c.request_timeout);
    let handler = with_in_flight_tracking(handler, c.in_flight);
    let handler = if c.send_retry_after {
        with_retry_after(handler, c.not_accepting_new_requests)
    } else {
        handler
    };
    let handler = with_pretty_json(handler);
    let handler = with_request_info(handler);
    with_panic_recovery(handler)
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

/// Indents whole JSON bodies (not watch streams, not proxied ones) for requests that want it,
/// two spaces and no trailing newline, as Go's `json.MarshalIndent`.
fn with_pretty_json(inner: Handler) -> Handler {
    handler_fn(move |req: Request| {
        let inner = inner.clone();
        async move {
            let pretty = wants_pretty(&req) && request_info(&req).verb != "watch";
            let resp = call(&inner, req).await;
            let json = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/json"));
            if !pretty
                || !json
                || resp.extensions().get::<Verbatim>().is_some()
                || resp.body().size_hint().exact().is_none()
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
    })
}

fn request_info(req: &Request) -> RequestInfo {
    req.extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_default()
}

/// Turns a panicking handler into a 500 instead of a dropped connection.
fn with_panic_recovery(inner: Handler) -> Handler {
    handler_fn(move |req: Request| {
        let inner = inner.clone();
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            match AssertUnwindSafe(call(&inner, req)).catch_unwind().await {
                Ok(resp) => resp,
                Err(_) => {
                    tracing::error!(%method, %path, "handler panicked");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "This request caused apiserver to panic. Look in the logs for details.\n",
                    )
                }
            }
        }
    })
}

fn with_request_info(inner: Handler) -> Handler {
    handler_fn(move |mut req: Request| {
        let inner = inner.clone();
        async move {
            let info = RequestInfo::parse(req.method(), req.uri().path(), req.uri().query());
            req.extensions_mut().insert(info);
            call(&inner, req).await
        }
    })
}

/// Paths a load balancer must keep reaching while the server drains.
const RETRY_AFTER_EXEMPT: &[&str] = &["/readyz", "/livez", "/healthz"];

/// During shutdown with --shutdown-send-retry-after, new requests get 429 and `Connection: close`.
fn with_retry_after(inner: Handler, not_accepting: Signal) -> Handler {
    handler_fn(move |req: Request| {
        let inner = inner.clone();
        let not_accepting = not_accepting.clone();
        async move {
            let path = req.uri().path();
            let exempt = RETRY_AFTER_EXEMPT
                .iter()
                .any(|p| path == *p || path.starts_with(&format!("{p}/")));
            if not_accepting.is_signaled() && !exempt {
                let mut resp = ApiError::too_many_requests(
                    "The apiserver is shutting down, please try again later.",
                    5,
                )
                .into_response();
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                return resp;
            }
            call(&inner, req).await
        }
    })
}

/// The number of in-flight non-long-running requests, awaited by the shutdown drain.
#[derive(Clone, Default)]
pub struct InFlight(Arc<(AtomicUsize, Notify)>);

impl InFlight {
    /// Waits until no non-long-running request is in flight.
    pub async fn drained(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.0.0.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.0.0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.0.1.notify_waiters();
        }
    }
}

fn with_in_flight_tracking(inner: Handler, in_flight: InFlight) -> Handler {
    handler_fn(move |req: Request| {
        let inner = inner.clone();
        let in_flight = in_flight.clone();
        async move {
            if request_info(&req).is_long_running() {
                return call(&inner, req).await;
            }
            in_flight.0.0.fetch_add(1, Ordering::SeqCst);
            let _guard = InFlightGuard(in_flight);
            call(&inner, req).await
        }
    })
}

fn with_timeout(inner: Handler, timeout: Duration) -> Handler {
    handler_fn(move |req: Request| {
        let inner = inner.clone();
        async move {
            if request_info(&req).is_long_running() {
                return call(&inner, req).await;
            }
            match tokio::time::timeout(timeout, call(&inner, req)).await {
                Ok(resp) => resp,
                Err(_) => ApiError::timeout("request did not complete within the allotted timeout")
                    .into_response(),
            }
        }
    })
}

fn with_authentication(inner: Handler, authn: Arc<Authenticator>) -> Handler {
    handler_fn(move |mut req: Request| {
        let inner = inner.clone();
        let authn = authn.clone();
        async move {
            let Some(conn) = req.extensions().get::<Arc<ConnInfo>>().cloned() else {
                return ApiError::internal("request without connection information")
                    .into_response();
            };
            match authn.authenticate(&conn, req.headers()) {
                Ok(user) => {
                    // Credentials must not leak to handlers that proxy the request onwards.
                    req.headers_mut().remove(http::header::AUTHORIZATION);
                    req.extensions_mut().insert(user);
                    call(&inner, req).await
                }
                Err(e) => {
                    tracing::debug!(path = req.uri().path(), error = %e, "authentication failed");
                    ApiError::unauthorized().into_response()
                }
            }
        }
    })
}

fn with_max_in_flight(inner: Handler, readonly: usize, mutating: usize) -> Handler {
    let semaphore = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
    let (readonly, mutating) = (semaphore(readonly), semaphore(mutating));
    handler_fn(move |req: Request| {
        let inner = inner.clone();
        let (readonly, mutating) = (readonly.clone(), mutating.clone());
        async move {
            let info = request_info(&req);
            let limit = if info.is_long_running() {
                None
            } else if info.is_mutating() {
                mutating
            } else {
                readonly
            };
            let _permit = match limit.as_ref().map(|s| s.clone().try_acquire_owned()) {
                None => None,
                Some(Ok(permit)) => Some(permit),
                Some(Err(_)) => {
                    return ApiError::too_many_requests(
                        "Too many requests, please try again later.",
                        1,
                    )
                    .into_response();
                }
            };
            call(&inner, req).await
        }
    })
}

fn with_authorization(inner: Handler, authz: Arc<Authorizer>) -> Handler {
    handler_fn(move |req: Request| {
        let inner = inner.clone();
        let authz = authz.clone();
        async move {
            let info = request_info(&req);
            let Some(user) = req.extensions().get::<crate::auth::UserInfo>().cloned() else {
                return ApiError::internal("request without user information").into_response();
            };
            let reason = match authz.authorize(&user, &info) {
                Decision::Allow => return call(&inner, req).await,
                Decision::Deny(reason) => reason,
                Decision::NoOpinion => String::new(),
            };
            let kind = info.is_resource_request.then(|| info.resource.clone());
            let name = (!info.name.is_empty()).then(|| info.name.clone());
            ApiError::forbidden(forbidden_message(&user, &info, &reason), kind, name)
                .into_response()
        }
    })
}
