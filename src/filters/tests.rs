//! Each filter on its own, behind request info, in front of a test handler.

use super::*;
use crate::endpoints::{Request, call, full, handler_fn, text};
use http::StatusCode;
use http_body_util::BodyExt;
use tower::Layer;

fn get(path: &str) -> Request {
    http::Request::get(path).body(full("")).unwrap()
}

/// `layer` behind request info, in front of `handler`.
fn chain<L>(layer: L, handler: Handler) -> Handler
where
    L: Layer<Handler>,
    L::Service: tower::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request>>::Future: Send + 'static,
{
    Handler::new(
        ServiceBuilder::new()
            .layer(request_info::RequestInfoLayer)
            .layer(layer)
            .service(handler),
    )
}

fn ok() -> Handler {
    handler_fn(|_req| async { text(StatusCode::OK, "ok") })
}

/// A handler that waits for `release` before answering.
fn held(release: Arc<tokio::sync::Notify>) -> Handler {
    handler_fn(move |_req| {
        let release = release.clone();
        async move {
            release.notified().await;
            text(StatusCode::OK, "done")
        }
    })
}

async fn body(resp: Response) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_panic_in_a_handler_or_while_calling_it_is_a_500_with_upstreams_text() {
    let in_future = handler_fn(|_req| async { panic!("in the future") });
    let in_call = Handler::new(tower::service_fn(
        |_req: Request| -> futures::future::Ready<Result<Response, Infallible>> {
            panic!("in call")
        },
    ));
    for handler in [in_future, in_call] {
        let resp = call(
            &chain(panic_recovery::PanicRecoveryLayer, handler),
            get("/x"),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            body(resp).await,
            "This request caused apiserver to panic. Look in the logs for details.\n"
        );
    }
    let resp = call(&chain(panic_recovery::PanicRecoveryLayer, ok()), get("/x")).await;
    assert_eq!(
        (resp.status(), body(resp).await.as_str()),
        (StatusCode::OK, "ok")
    );
}

#[tokio::test]
async fn requests_past_the_timeout_get_504_but_watches_are_not_timed() {
    let release = Arc::new(tokio::sync::Notify::new());
    let handler = chain(
        timeout::TimeoutLayer::new(Duration::from_millis(100)),
        held(release.clone()),
    );
    let resp = call(&handler, get("/api/v1/namespaces")).await;
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);

    let watch = tokio::spawn(call(&handler, get("/api/v1/namespaces?watch=true")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.notify_waiters();
    assert_eq!(watch.await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn the_tracker_counts_non_long_running_requests_until_their_response() {
    let tracker = TaskTracker::new();
    let release = Arc::new(tokio::sync::Notify::new());
    let handler = chain(
        in_flight::InFlightLayer::new(tracker.clone()),
        held(release.clone()),
    );
    let request = tokio::spawn(call(&handler, get("/api/v1/namespaces")));
    let watch = tokio::spawn(call(&handler, get("/api/v1/namespaces?watch=true")));
    tokio::task::yield_now().await;
    assert_eq!(tracker.len(), 1);
    tracker.close();
    assert!(!tracker.is_empty());
    release.notify_waiters();
    tracker.wait().await;
    request.await.unwrap();
    watch.await.unwrap();
}

#[tokio::test]
async fn a_full_kind_of_seats_answers_429_and_long_running_requests_need_none() {
    let release = Arc::new(tokio::sync::Notify::new());
    let handler = chain(
        max_in_flight::MaxInFlightLayer::new(1, 1),
        held(release.clone()),
    );
    let read = tokio::spawn(call(&handler, get("/api/v1/namespaces")));
    tokio::task::yield_now().await;
    let resp = call(&handler, get("/api/v1/pods")).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    // system:masters always get an answer.
    let mut admin = get("/api/v1/pods");
    admin.extensions_mut().insert(crate::auth::UserInfo {
        name: "admin".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    });
    let admin = tokio::spawn(call(&handler, admin));

    let create = http::Request::post("/api/v1/namespaces")
        .body(full(""))
        .unwrap();
    let write = tokio::spawn(call(&handler, create));
    let watch = tokio::spawn(call(&handler, get("/api/v1/pods?watch=true")));
    tokio::task::yield_now().await;
    release.notify_waiters();
    for task in [read, admin, write, watch] {
        assert_eq!(task.await.unwrap().status(), StatusCode::OK);
    }
    // The seat is free again once the response is ready.
    let handler = chain(max_in_flight::MaxInFlightLayer::new(1, 1), ok());
    for _ in 0..2 {
        assert_eq!(
            call(&handler, get("/api/v1/pods")).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn once_not_accepting_new_requests_they_get_429_except_health_probes() {
    let not_accepting = Signal::new("NotAcceptingNewRequest");
    let handler = chain(
        retry_after::RetryAfterLayer::new(not_accepting.clone()),
        ok(),
    );
    assert_eq!(
        call(&handler, get("/version")).await.status(),
        StatusCode::OK
    );
    not_accepting.signal();
    let resp = call(&handler, get("/version")).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "5");
    assert_eq!(resp.headers()[http::header::CONNECTION], "close");
    for path in ["/readyz", "/livez/ping", "/healthz"] {
        assert_eq!(
            call(&handler, get(path)).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    assert_eq!(
        call(&handler, get("/readyzz")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_panicking_audited_request_records_its_panic_stage_and_still_answers_500() {
    let policy: crate::audit::Policy = serde_json::from_value(serde_json::json!({
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
        "omitStages": ["RequestReceived"], "rules": [{"level": "Metadata"}]}))
    .unwrap();
    let (tx, mut events) = tokio::sync::mpsc::channel(8);
    let auditor = Arc::new(crate::audit::Auditor::new(
        policy,
        vec![crate::audit::Backend::Queued("log", tx)],
    ));
    let layers = tower::layer::util::Stack::new(
        audit::AuditLayer::new(Some(auditor)),
        panic_recovery::PanicRecoveryLayer,
    );
    let handler = chain(
        layers,
        handler_fn(|_req| async { panic!("the handler broke") }),
    );
    let resp = call(&handler, get("/api/v1/namespaces")).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let event = events.try_recv().expect("the Panic stage");
    assert_eq!(event["stage"], "Panic");
    assert_eq!(
        event["responseStatus"]["message"],
        "APIServer panic'd: the handler broke"
    );
    assert_eq!(event["responseStatus"]["code"], 500);
    assert!(
        events.try_recv().is_err(),
        "no ResponseComplete after a panic"
    );
}

#[tokio::test]
async fn a_goaway_is_asked_of_http2_connections_only() {
    let handler = chain(goaway::GoawayLayer::new(1.0), ok());
    let asked = Arc::new(crate::server::serving::Goaway::default());
    let mut h1 = get("/version");
    h1.extensions_mut().insert(asked.clone());
    assert_eq!(call(&handler, h1).await.status(), StatusCode::OK);
    let mut h2 = get("/version");
    *h2.version_mut() = http::Version::HTTP_2;
    h2.extensions_mut().insert(asked.clone());
    assert_eq!(call(&handler, h2).await.status(), StatusCode::OK);
    // Exactly one ask is pending: the HTTP/2 request's.
    assert!(asked.take_asked());
    assert!(!asked.take_asked());
}

#[tokio::test]
async fn watches_end_at_shutdown_are_waited_for_and_new_ones_get_503() {
    use watch_termination::{WatchDrain, WatchTermination, WatchTerminationLayer};
    let not_accepting = Signal::new("NotAcceptingNewRequest");
    let drain = WatchDrain::new(std::time::Duration::from_secs(30));
    // A watch whose stream ends when the filter says so; other requests are told nothing.
    let handler = handler_fn(|req: Request| async move {
        let Some(termination) = req.extensions().get::<WatchTermination>().cloned() else {
            return text(StatusCode::OK, "not a watch");
        };
        let ended = futures::StreamExt::map(futures::stream::once(termination.ending()), |()| {
            Ok::<_, crate::endpoints::BoxError>(hyper::body::Frame::data(bytes::Bytes::from(
                "ended",
            )))
        });
        http::Response::new(BodyExt::boxed_unsync(http_body_util::StreamBody::new(
            ended,
        )))
    });
    let handler = chain(
        WatchTerminationLayer::new(drain.clone(), not_accepting.clone()),
        handler,
    );
    let body = |resp: Response| async move {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let list = call(&handler, get("/api/v1/pods")).await;
    assert_eq!(body(list).await, "not a watch");
    let watches: Vec<Response> =
        futures::future::join_all((0..3).map(|_| call(&handler, get("/api/v1/pods?watch=true"))))
            .await;
    let bodies = tokio::spawn(futures::future::join_all(watches.into_iter().map(body)));

    not_accepting.signal();
    assert!(
        drain.drain().await,
        "every watch ended within the grace period"
    );
    assert_eq!(bodies.await.unwrap(), ["ended", "ended", "ended"]);
    let refused = call(&handler, get("/api/v1/pods?watch=true")).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()[http::header::RETRY_AFTER], "1");
    let status: serde_json::Value = serde_json::from_str(&body(refused).await).unwrap();
    assert_eq!(status["reason"], "ServiceUnavailable");
    assert_eq!(status["message"], "apiserver is shutting down");
}
