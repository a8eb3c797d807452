//! API Priority and Fairness (upstream's `WithPriorityAndFairness`): each request is
//! classified, waits for a seat of its priority level and holds it while it executes (a watch
//! until its response starts); the response names the matched FlowSchema and priority level
//! by UID. Long-running requests other than watches pass untouched, as upstream's do.

use super::{request_info, too_many_requests};
use crate::auth::UserInfo;
use crate::endpoints::request_info::{RequestInfo, Verb};
use crate::endpoints::{Request, Response};
use crate::flowcontrol::queueset::{Descr, Seat};
use crate::flowcontrol::{Admission, Classification, FlowControl};
use crate::metrics::GaugeGuard;
use futures::future::{BoxFuture, Either, Ready};
use http::HeaderValue;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Upstream's header naming the matched FlowSchema's UID.
pub const FLOW_SCHEMA_UID: &str = "X-Kubernetes-PF-FlowSchema-UID";
/// Upstream's header naming the matched priority level's UID.
pub const PRIORITY_LEVEL_UID: &str = "X-Kubernetes-PF-PriorityLevel-UID";
/// The longest a request waits in a queue, as upstream caps it.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Adds [`PriorityAndFairness`].
#[derive(Clone)]
pub struct PriorityAndFairnessLayer {
    flow_control: Arc<FlowControl>,
    wait_limit: Duration,
}

impl PriorityAndFairnessLayer {
    /// Flow control by `flow_control`; a request waits at most a quarter of `request_timeout`.
    pub fn new(flow_control: Arc<FlowControl>, request_timeout: Duration) -> Self {
        Self {
            flow_control,
            wait_limit: (request_timeout / 4).min(MAX_WAIT),
        }
    }
}

impl<S> Layer<S> for PriorityAndFairnessLayer {
    type Service = PriorityAndFairness<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PriorityAndFairness {
            inner,
            flow_control: self.flow_control.clone(),
            wait_limit: self.wait_limit,
        }
    }
}

/// Classifies each request and gives it a seat, or answers 429.
#[derive(Clone)]
pub struct PriorityAndFairness<S> {
    inner: S,
    flow_control: Arc<FlowControl>,
    wait_limit: Duration,
}

/// The classification's response headers.
type Headers = Option<(HeaderValue, HeaderValue)>;

/// The inner future of a request that had a seat at once: it keeps the seat and counts as
/// executing until the response is ready, which then gains the classification headers.
pub struct Executing<F> {
    future: F,
    headers: Headers,
    _seat: Option<(Seat, GaugeGuard)>,
}

impl<F> Future for Executing<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Ok(mut resp) = std::task::ready!(Pin::new(&mut self.future).poll(cx));
        set_headers(&mut resp, self.headers.take());
        Poll::Ready(Ok(resp))
    }
}

fn set_headers(resp: &mut Response, headers: Headers) {
    if let Some((schema, level)) = headers {
        resp.headers_mut().insert(PRIORITY_LEVEL_UID, level);
        resp.headers_mut().insert(FLOW_SCHEMA_UID, schema);
    }
}

fn rejected(retry_after: i64, headers: Headers) -> Response {
    let mut resp = too_many_requests(retry_after);
    set_headers(&mut resp, headers);
    resp
}

fn describe(user: &UserInfo, info: &RequestInfo, c: &Classification) -> Descr {
    Descr {
        flow_schema: c.schema.name.clone(),
        distinguisher: c.distinguisher.clone(),
        user: user.name.clone(),
        request: [
            info.verb.as_str().to_string(),
            info.path.clone(),
            info.namespace.clone(),
            info.name.clone(),
            if info.api_group.is_empty() {
                info.api_version.clone()
            } else {
                format!("{}/{}", info.api_group, info.api_version)
            },
            info.resource.clone(),
            info.subresource.clone(),
        ],
    }
}

/// The inner future boxed outside the async block that awaits it: awaiting the associated
/// type there trips rustc's higher-ranked `Send` check.
fn boxed<F>(future: F) -> BoxFuture<'static, Result<Response, Infallible>>
where
    F: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    Box::pin(future)
}

/// The future: the filter's own 429, an admitted request, or one that waits first.
type Flow<F> = Either<
    Ready<Result<Response, Infallible>>,
    Either<Executing<F>, BoxFuture<'static, Result<Response, Infallible>>>,
>;

impl<S> Service<Request> for PriorityAndFairness<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Unpin + Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Flow<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let info = request_info(req.extensions());
        if info.is_long_running() && info.verb != Verb::Watch {
            return Either::Right(Either::Left(Executing {
                future: self.inner.call(req),
                headers: None,
                _seat: None,
            }));
        }
        let anonymous = UserInfo::default();
        let user = req.extensions().get::<UserInfo>().unwrap_or(&anonymous);
        let c = self.flow_control.classify(user, info);
        let headers = HeaderValue::from_str(&c.schema.uid)
            .ok()
            .zip(HeaderValue::from_str(&c.level.uid).ok());
        let descr = Arc::new(describe(user, info, &c));
        let seats = self
            .flow_control
            .estimate(&c, info, req.uri().query().unwrap_or(""));
        match self.flow_control.start(&c, seats, descr) {
            Err(rejection) => Either::Left(futures::future::ok(rejected(
                rejection.retry_after,
                headers,
            ))),
            Ok(Admission::Now(seat)) => {
                let executing = crate::metrics::metrics()
                    .flowcontrol
                    .executing(&c.schema.name, &c.level.name);
                Either::Right(Either::Left(Executing {
                    future: self.inner.call(req),
                    headers,
                    _seat: Some((seat, executing)),
                }))
            }
            Ok(Admission::Later(ticket)) => {
                let (mut inner, fc) = (self.inner.clone(), self.flow_control.clone());
                let deadline = tokio::time::Instant::now() + self.wait_limit;
                Either::Right(Either::Right(Box::pin(async move {
                    match fc.wait(&c, ticket, deadline).await {
                        Err(rejection) => Ok(rejected(rejection.retry_after, headers)),
                        Ok(seat) => {
                            let _executing = crate::metrics::metrics()
                                .flowcontrol
                                .executing(&c.schema.name, &c.level.name);
                            let Ok(mut resp) = boxed(inner.call(req)).await;
                            drop(seat);
                            set_headers(&mut resp, headers);
                            Ok(resp)
                        }
                    }
                })))
            }
        }
    }
}
