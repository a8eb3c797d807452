//! The filter chain in front of the server chain: one tower layer per filter, stacked in one
//! `ServiceBuilder` outermost first, in upstream's order (`DefaultBuildHandlerChain`): panic
//! recovery → request info → metrics → pretty JSON → probabilistic GOAWAY → retry-after during
//! shutdown → in-flight tracking →
//! timeout → authentication → audit → impersonation → priority and fairness (or max-in-flight
//! without it) → authorization → handler.
//!
//! Every filter decides synchronously in `call` whether to answer itself or pass the request
//! on, and wraps the inner future only when it must (a deadline, a seat, in-flight tracking), so
//! a request crosses the whole chain without a clone of a handler or a boxed future per filter.

mod audit;
mod authentication;
mod authorization;
mod deciding;
mod goaway;
mod impersonation;
mod in_flight;
mod max_in_flight;
mod metrics;
mod panic_recovery;
mod pretty;
pub mod priority_and_fairness;
mod request_info;
mod retry_after;
mod timeout;
pub mod watch_termination;

use crate::auth::{Authenticator, Authorizer};
use crate::endpoints::request_info::RequestInfo;
use crate::endpoints::{Handler, Response};
use crate::server::lifecycle::Signal;
use futures::future::{Either, Ready};
use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio_util::task::TaskTracker;
use tower::ServiceBuilder;

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
    /// Tracks in-flight non-long-running requests for the shutdown drain.
    pub in_flight: TaskTracker,
    /// Records the requests the audit policy selects; `None` when auditing is off.
    pub auditor: Option<Arc<crate::audit::Auditor>>,
    /// --goaway-chance (0: never).
    pub goaway_chance: f64,
    /// API Priority and Fairness; `None` (--enable-priority-and-fairness=false) limits by
    /// max-in-flight instead.
    pub flow_control: Option<Arc<crate::flowcontrol::FlowControl>>,
    /// --shutdown-watch-termination-grace-period: the watches ended at shutdown; `None` when 0.
    pub watch_drain: Option<Arc<watch_termination::WatchDrain>>,
}

/// Wraps `handler` in the whole filter chain.
pub fn build_handler_chain(handler: Handler, c: FilterConfig) -> Handler {
    let watch_termination = c.watch_drain.map(|drain| {
        watch_termination::WatchTerminationLayer::new(drain, c.not_accepting_new_requests.clone())
    });
    let retry_after = c
        .send_retry_after
        .then(|| retry_after::RetryAfterLayer::new(c.not_accepting_new_requests));
    let chain = ServiceBuilder::new()
        .layer(panic_recovery::PanicRecoveryLayer)
        .layer(request_info::RequestInfoLayer)
        .layer(metrics::MetricsLayer)
        // Inside request info, so watches are recognised; outside the rest, so every body is.
        .layer(pretty::PrettyJsonLayer)
        .option_layer((c.goaway_chance > 0.0).then(|| goaway::GoawayLayer::new(c.goaway_chance)))
        .option_layer(retry_after)
        .option_layer(watch_termination)
        .layer(in_flight::InFlightLayer::new(c.in_flight))
        .layer(timeout::TimeoutLayer::new(c.request_timeout))
        .layer(authentication::AuthenticationLayer::new(
            c.authenticator,
            c.auditor.clone(),
        ))
        .layer(audit::AuditLayer::new(c.auditor))
        .layer(impersonation::ImpersonationLayer::new(c.authorizer.clone()))
        .option_layer(
            c.flow_control.clone().map(|fc| {
                priority_and_fairness::PriorityAndFairnessLayer::new(fc, c.request_timeout)
            }),
        )
        .option_layer(c.flow_control.is_none().then(|| {
            max_in_flight::MaxInFlightLayer::new(
                c.max_requests_inflight,
                c.max_mutating_requests_inflight,
            )
        }))
        .layer(authorization::AuthorizationLayer::new(c.authorizer))
        .service(handler);
    Handler::new(chain)
}

/// The future of a filter that may answer a request itself: its answer, or the inner future.
type Answer<F> = Either<Ready<Result<Response, Infallible>>, F>;

/// The inner future with its answer passed through a closure, for filters that act on every
/// answer (metrics, audit) without a boxed future of their own.
type Mapped<F> = futures::future::Map<
    F,
    Box<dyn FnOnce(Result<Response, Infallible>) -> Result<Response, Infallible> + Send>,
>;

/// A filter's own answer.
fn answer<F>(resp: Response) -> Answer<F> {
    Either::Left(futures::future::ok(resp))
}

/// Upstream's 429 (`tooManyRequests`): plain text, as Go's `http.Error` writes it, with the
/// seconds to wait in `Retry-After`.
fn too_many_requests(retry_after: i64) -> Response {
    let mut resp = http::Response::new(crate::endpoints::full(
        "Too many requests, please try again later.\n",
    ));
    *resp.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from(retry_after),
    );
    resp
}

/// The request's parsed info; a request that did not pass the request-info filter reads as an
/// empty, non-resource one.
fn request_info(extensions: &http::Extensions) -> &RequestInfo {
    static UNPARSED: LazyLock<RequestInfo> = LazyLock::new(RequestInfo::default);
    extensions.get().unwrap_or(&UNPARSED)
}

#[cfg(test)]
mod tests;
