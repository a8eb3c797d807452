//! Graceful termination with a request in flight, on an in-process server (real TLS, real socket)
//! whose chain carries one extra path that holds its request until the test releases it.

use crate::support::https::Https;
use crate::support::kubeboot::install_crypto;
use crate::support::socket::loopback_listener;
use clap::Parser;
use kubeboot::endpoints::{handler_fn, text};
use kubeboot::options::{Mode, ServerRunOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    options: ServerRunOptions,
}

struct Fixture {
    _dir: tempfile::TempDir,
    admin: Https,
    /// Receives one message each time the held path is entered.
    entered: mpsc::UnboundedReceiver<()>,
    release: Arc<Notify>,
    run: tokio::task::JoinHandle<Result<(), kubeboot::app::AppError>>,
    signals: kubeboot::server::lifecycle::LifecycleSignals,
}

async fn start(extra: &[&str]) -> Fixture {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    // The server is served on a socket bound here, so its port is known and stays this test's.
    let listener = loopback_listener();
    let port = listener.local_addr().unwrap().port();
    let mut argv = vec![
        "kubeboot".to_string(),
        format!("--data-dir={}", dir.path().join(".kubeboot").display()),
        format!("--secure-port={port}"),
        "--bind-address=127.0.0.1".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let options = Flags::parse_from(argv)
        .options
        .complete(Mode::Up)
        .validate()
        .unwrap();
    kubeboot::pki::ensure(&options, false).unwrap();

    let (entered_tx, entered) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let mut chain = kubeboot::app::create_server_chain(&options).await.unwrap();
    let held_release = release.clone();
    chain.server.handle(
        "/held",
        handler_fn(move |_req| {
            let (entered_tx, release) = (entered_tx.clone(), held_release.clone());
            async move {
                let released = release.notified();
                let _ = entered_tx.send(());
                released.await;
                text(http::StatusCode::OK, "done")
            }
        }),
    );
    let started = kubeboot::app::prepare_chain(&options, chain, Some(listener), false)
        .await
        .unwrap();
    let signals = started.server.signals().clone();
    let run = tokio::spawn(started.run());
    let admin = Https::from_kubeconfig(
        std::net::SocketAddr::new(options.bind_address, options.secure_port),
        &options.pki.admin_kubeconfig,
    );
    Fixture {
        _dir: dir,
        admin,
        entered,
        release,
        run,
        signals,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_completes_after_the_listener_closes() {
    let mut f = start(&["--shutdown-delay-duration=1s", "--request-timeout=60s"]).await;
    let admin = f.admin.clone();
    let in_flight = tokio::spawn(async move { admin.get("/held").await });
    f.entered.recv().await.unwrap();

    f.signals.shutdown_initiated.signal();
    f.signals.not_accepting_new_requests.wait().await;
    // The listener closes while the held request is still in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.admin.get("/version").await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still accepting after the shutdown delay"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !f.run.is_finished(),
        "server exited with a request in flight"
    );

    f.release.notify_one();
    let reply = in_flight.await.unwrap().unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "done"));
    f.run.await.unwrap().unwrap();
    assert!(f.signals.in_flight_requests_drained.is_signaled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_send_retry_after_new_requests_get_429_until_in_flight_requests_drain() {
    let mut f = start(&[
        "--shutdown-delay-duration=0s",
        "--shutdown-send-retry-after",
        "--request-timeout=60s",
    ])
    .await;
    let admin = f.admin.clone();
    let in_flight = tokio::spawn(async move { admin.get("/held").await });
    f.entered.recv().await.unwrap();

    f.signals.shutdown_initiated.signal();
    f.signals.not_accepting_new_requests.wait().await;
    let r = f.admin.get("/version").await.unwrap();
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.headers.get("retry-after").unwrap(), "5");
    assert_eq!(r.headers.get("connection").unwrap(), "close");
    let status = r.json();
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(
        status["message"],
        "The apiserver is shutting down, please try again later."
    );
    // Health probes are exempt, so a load balancer still sees /readyz red rather than 429.
    let r = f.admin.get("/readyz").await.unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.contains("[-]shutdown failed: reason withheld"));

    f.release.notify_one();
    assert_eq!(in_flight.await.unwrap().unwrap().status, 200);
    f.run.await.unwrap().unwrap();
    assert!(
        f.admin.get("/version").await.is_err(),
        "listener open after the drain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_outliving_request_timeout_get_a_504_timeout_status() {
    let f = start(&["--request-timeout=1s"]).await;
    let r = f.admin.get("/held").await.unwrap();
    assert_eq!(r.status, 504);
    let status = r.json();
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(
        status["message"],
        "Timeout: request did not complete within the allotted timeout"
    );
}
