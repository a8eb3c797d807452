//! Connection limits as upstream's http.Server sets them: a client that starts a request and
//! never finishes its headers is cut off (ReadHeaderTimeout, 32 s) instead of holding the
//! connection forever.

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
