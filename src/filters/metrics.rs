//! Request metrics (upstream's `endpoints/metrics.MonitorRequest` and the in-flight gauges):
//! every resource request is counted by verb, group, version, resource, subresource, scope and
//! code, its latency observed (long-running ones are counted as running instead) and, for
//! reads, its response size — the body's bytes as they are sent, which also bounds how long a
//! long-running request is counted.

use super::{Mapped, request_info};
use crate::endpoints::observed_body::ObservedBody;
use crate::endpoints::request_info::{RequestInfo, Verb};
use crate::endpoints::{Request, Response};
use crate::metrics::{GaugeGuard, InflightLabels, RequestCodeLabels, RequestLabels, metrics};
use futures::FutureExt;
use futures::future::Either;
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// Adds [`Metrics`].
#[derive(Clone, Debug, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metrics { inner }
    }
}

/// Records each resource request's metrics.
#[derive(Clone, Debug)]
pub struct Metrics<S> {
    inner: S,
}

/// What is known of a request before its answer.
struct Observed {
    labels: RequestLabels,
    started: Instant,
    long_running: bool,
    read: bool,
    _inflight: Option<GaugeGuard>,
}

impl<S> Service<Request> for Metrics<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Mapped<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let info = request_info(req.extensions());
        if !info.is_resource_request {
            return Either::Left(self.inner.call(req));
        }
        let labels = labels(info, &req);
        let long_running = info.is_long_running();
        let read = matches!(labels.verb.as_str(), "GET" | "LIST");
        let kind = if info.is_mutating() {
            "mutating"
        } else {
            "readOnly"
        };
        let inflight = (!long_running).then(|| {
            GaugeGuard::hold(
                metrics()
                    .inflight
                    .get_or_create(&InflightLabels {
                        request_kind: kind.into(),
                    })
                    .clone(),
            )
        });
        let observed = Observed {
            labels,
            started: Instant::now(),
            long_running,
            read,
            _inflight: inflight,
        };
        Either::Right(self.inner.call(req).map(Box::new(
            move |resp: Result<Response, Infallible>| resp.map(|r| record(observed, r)),
        )))
    }
}

/// Upstream's reported verb (`CleanVerb`) and scope (`CleanScope`) of a resource request.
fn labels(info: &RequestInfo, req: &Request) -> RequestLabels {
    let apply = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
    // The connect subresources are CONNECT whatever the method; pods/log is a GET.
    let connect = matches!(
        info.subresource.as_str(),
        "exec" | "attach" | "portforward" | "proxy"
    );
    let verb = match &info.verb {
        _ if connect => "CONNECT",
        Verb::Get => "GET",
        Verb::List => "LIST",
        Verb::Watch => "WATCH",
        Verb::Create => "POST",
        Verb::Update => "PUT",
        Verb::Patch if apply => "APPLY",
        Verb::Patch => "PATCH",
        Verb::Delete => "DELETE",
        Verb::DeleteCollection => "DELETECOLLECTION",
        Verb::Proxy => "CONNECT",
        Verb::Other(_) => "CONNECT",
    };
    let scope = if !info.name.is_empty() {
        "resource"
    } else if !info.namespace.is_empty() {
        "namespace"
    } else {
        "cluster"
    };
    let dry_run = req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "dryRun" && v == "All")
    });
    RequestLabels {
        verb: verb.into(),
        dry_run: if dry_run { "All".into() } else { String::new() },
        group: info.api_group.clone(),
        version: info.api_version.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        scope: scope.into(),
        component: "apiserver".into(),
    }
}

/// Counts the answer; its body observes the rest as it is sent.
fn record(observed: Observed, resp: Response) -> Response {
    let m = metrics();
    m.requests
        .get_or_create(&RequestCodeLabels {
            request: observed.labels.clone(),
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    if !observed.long_running && !observed.read {
        m.request_duration
            .get_or_create(&observed.labels)
            .observe(observed.started.elapsed().as_secs_f64());
        return resp;
    }
    let running = observed
        .long_running
        .then(|| GaugeGuard::hold(m.longrunning.get_or_create(&observed.labels).clone()));
    resp.map(|body| {
        ObservedBody::wrap(
            body,
            0,
            Box::new(move |sent| {
                // The long-running request stops counting when its body ends.
                drop(running);
                if observed.long_running {
                    return;
                }
                let m = metrics();
                m.request_duration
                    .get_or_create(&observed.labels)
                    .observe(observed.started.elapsed().as_secs_f64());
                m.response_sizes
                    .get_or_create(&observed.labels)
                    .observe(sent.bytes as f64);
            }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn verb_and_scope(method: Method, uri: &str, content_type: &str) -> (String, String) {
        let req = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(crate::endpoints::full(Vec::new()))
            .unwrap();
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let info = RequestInfo::parse(&method, path, Some(query));
        let l = labels(&info, &req);
        (l.verb, l.scope)
    }

    #[test]
    fn verbs_and_scopes_are_reported_as_upstreams() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/a/pods",
                "",
                ("LIST", "namespace"),
            ),
            (
                Method::GET,
                "/api/v1/pods?watch=true",
                "",
                ("WATCH", "cluster"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p",
                "",
                ("GET", "resource"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p/log",
                "",
                ("GET", "resource"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p/exec",
                "",
                ("CONNECT", "resource"),
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/pods/p/exec",
                "",
                ("CONNECT", "resource"),
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/pods",
                "application/json",
                ("POST", "namespace"),
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/a/pods/p",
                "application/apply-patch+yaml",
                ("APPLY", "resource"),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                "",
                ("DELETECOLLECTION", "namespace"),
            ),
        ];
        for (method, uri, content_type, (verb, scope)) in cases {
            assert_eq!(
                verb_and_scope(method, uri, content_type),
                (verb.to_string(), scope.to_string()),
                "{uri}"
            );
        }
    }
}
