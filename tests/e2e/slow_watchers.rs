//! What a watcher that stops reading costs: it holds no more than the watch cache's bounded
//! buffer of other watchers' events, it is dropped once it falls that far behind (its stream
//! ends, as upstream closes a terminated watcher's result channel), and
//! `apiserver_terminated_watchers_total` counts it; watchers that read get every event.

use crate::common::WITHOUT_CONTROLLERS;
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use crate::support::scrape::Scrape;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes in all: past the 1,024 events a watcher may fall behind, plus what the stalled
/// connection's buffers hold (a 16 KiB receive window, the server's send buffer of at most
/// 4 MiB, hyper's write buffer), about 450 events of this size.
const WRITES: usize = 2_500;
const WRITERS: usize = 8;
/// Bytes of data per ConfigMap.
const FILLER: usize = 10 * 1024;
/// Bounds a hung test; nothing waits for it to pass.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Opens a watch on `path`; once it answers, a task reads its events as they arrive until
/// there are `want` of them, and counts them.
async fn reading_watcher(admin: &Https, path: &str, want: usize) -> tokio::task::JoinHandle<usize> {
    let mut sender = admin.connect().await.unwrap();
    let req = http::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    tokio::spawn(async move {
        let _connection = sender;
        count_lines(resp.into_body(), want).await
    })
}

/// Newline-ended lines of `body`, read until there are `want` or it ends.
async fn count_lines(mut body: hyper::body::Incoming, want: usize) -> usize {
    let mut lines = 0;
    while lines < want {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.unwrap().into_data() {
            lines += data.iter().filter(|b| **b == b'\n').count();
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_is_dropped_counted_and_costs_the_others_nothing() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create("/api/v1/namespaces", &json!({"metadata": {"name": "slow"}}))
        .await;
    let base = "/api/v1/namespaces/slow/configmaps";
    let start = admin
        .create(base, &json!({"metadata": {"name": "start"}}))
        .await;
    let rv = start["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let watch = format!("{base}?watch=true&resourceVersion={rv}&timeoutSeconds=600");
    let labels = [("group", ""), ("resource", "configmaps")];
    let metric = "apiserver_terminated_watchers_total";
    assert_eq!(Scrape::of(&admin).await.value(metric, &labels), 0.0);

    // The stalled watcher: it reads the response head, then nothing.
    let mut stalled = admin.tls_with_receive_buffer(16 * 1024).await.unwrap();
    let request =
        format!("GET {watch} HTTP/1.1\r\nHost: kubeboot\r\nAccept: application/json\r\n\r\n");
    stalled.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 512];
        let n = stalled.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the watch closed before its head");
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&received)
    );

    // A watcher that reads, from the same revision.
    let reader = reading_watcher(&admin, &watch, WRITES).await;

    let filler = "x".repeat(FILLER);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (admin, filler) = (admin.clone(), filler.clone());
            tokio::spawn(async move {
                let mut sender = admin.connect().await.unwrap();
                for i in (w..WRITES).step_by(WRITERS) {
                    let cm = json!({"metadata": {"name": format!("cm-{i:04}")}, "data": {"filler": filler}});
                    let r = Https::send_body(
                        &mut sender,
                        "POST",
                        base,
                        &[("content-type", "application/json")],
                        Bytes::from(cm.to_string()),
                    )
                    .await
                    .unwrap();
                    assert_eq!(r.status, 201, "{}", r.body);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let read = tokio::time::timeout(HANG_GUARD, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, WRITES, "a reading watcher gets every event");

    // The stalled watcher reads again: what its buffers held, then the end of its stream
    // (the last chunk of a chunked body) long before its timeout.
    let drain = async {
        loop {
            let mut chunk = vec![0u8; 1 << 16];
            let n = stalled.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed without ending the watch");
            received.extend_from_slice(&chunk[..n]);
            if received.ends_with(b"\r\n0\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, drain)
        .await
        .expect("the stalled watch ends");
    let text = String::from_utf8_lossy(&received);
    let got = text.matches("\"type\":\"ADDED\"").count();
    assert!(
        got > 0 && got < WRITES,
        "the stalled watcher got {got} of {WRITES} events"
    );
    assert_eq!(Scrape::of(&admin).await.value(metric, &labels), 1.0);
}
