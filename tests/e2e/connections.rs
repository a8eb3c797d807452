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
