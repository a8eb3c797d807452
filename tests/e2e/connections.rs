//! Connection limits as upstream's http.Server sets them: a client that starts a request and
//! never finishes its headers is cut off (ReadHeaderTimeout, 32 s) instead of holding the
//! connection forever; an idle one is closed after 90 s; HTTP/2 connections carry
//! --http2-max-streams-per-connection streams and go away by --goaway-chance.

use crate::support::kubeboot::TestServer;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let mut tls = server.admin().tls().await.unwrap();
    tls.write_all(b"GET /version HTTP/1.1\r\nHost: kubeboot\r\n")
        .await
        .unwrap();
    // The server closes the connection (possibly after a 408) well within a minute; without a
    // header timeout this read would wait forever.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(60), tls.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection was still open after 60 s");
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

/// The server's SETTINGS_MAX_CONCURRENT_STREAMS, as an HTTP/2 client sees it after one request.
async fn max_streams(server: &TestServer) -> usize {
    let tls = server.admin().tls().await.unwrap();
    let (mut client, mut connection) = h2::client::handshake(tls).await.unwrap();
    let request = http::Request::get(format!("https://{}/version", server.addr()))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    // The connection is driven until the response arrives; the server's settings came first.
    let response = tokio::select! {
        r = response => r.unwrap(),
        e = &mut connection => panic!("connection ended: {e:?}"),
    };
    assert_eq!(response.status(), 200);
    connection.max_concurrent_send_streams()
}

#[tokio::test]
async fn an_http2_connection_carries_as_many_streams_as_the_flag_allows() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    assert_eq!(max_streams(&server).await, 250, "Go's default");
    let mut server = TestServer::up(&["--http2-max-streams-per-connection=7"]);
    server.wait_ready().await;
    assert_eq!(max_streams(&server).await, 7);
}

#[tokio::test]
async fn with_a_goaway_chance_an_http2_connection_is_sent_away_after_finishing_its_requests() {
    let mut server = TestServer::up(&["--goaway-chance=0.02"]);
    server.wait_ready().await;
    let tls = server.admin().tls().await.unwrap();
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    let connection = tokio::spawn(connection);
    // Each request asks for a GOAWAY with probability 0.02: all 3000 escaping it has a
    // probability of 0.98^3000 ≈ 5e-27.
    let mut served = 0;
    for _ in 0..3000 {
        let Ok(mut client) = client.clone().ready().await else {
            break;
        };
        let request = http::Request::get(format!("https://{}/version", server.addr()))
            .body(())
            .unwrap();
        let Ok((response, _)) = client.send_request(request, true) else {
            break;
        };
        match response.await {
            Ok(r) => {
                assert_eq!(
                    r.status(),
                    200,
                    "a request sent before the GOAWAY is served"
                );
                served += 1;
            }
            Err(e) => {
                assert!(e.is_go_away() || e.is_remote(), "{e}");
                break;
            }
        }
    }
    assert!(served < 3000, "no GOAWAY in 3000 requests");
    // The server ends the connection. A frame the client sends while the server closes (a
    // window update, a ping's ack) can meet a closed socket (a broken pipe, a reset), as with Go's
    // server, so an I/O error is an ending too; a protocol error is not.
    let ended = tokio::time::timeout(Duration::from_secs(30), connection)
        .await
        .expect("the connection closes")
        .unwrap();
    if let Err(e) = ended {
        assert!(e.is_io(), "the connection ended with {e}");
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_upstreams_ninety_seconds() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let mut tls = server.admin().tls().await.unwrap();
    tls.write_all(b"GET /version HTTP/1.1\r\nHost: kubeboot\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Kept alive well past the header timeout (32 s)...
    let early = tokio::time::timeout(Duration::from_secs(60), tls.read(&mut buf)).await;
    assert!(early.is_err(), "closed before 60 s idle: {early:?}");
    // ...and closed once idle for 90 s.
    let closed = tokio::time::timeout(Duration::from_secs(60), tls.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "still open after 120 s idle: {closed:?}"
    );
}
