//! HTTPS serving: rustls (ALPN h2 + http/1.1, client certificates optional) and hyper's auto connection.

use super::connection::{Activity, Due, Watched};
use super::lifecycle::Signal;
use crate::auth::ConnInfo;
use crate::endpoints::observed_body::ObservedBody;
use crate::endpoints::{Handler, call};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Go's default `MaxConcurrentStreams` of an HTTP/2 connection, kube-apiserver's unless
/// --http2-max-streams-per-connection says otherwise.
const HTTP2_MAX_STREAMS: u32 = 250;

/// Waits until the connection's timeouts may call for something.
async fn due(activity: &Activity) {
    if let Due::Wait(at) = activity.due(Instant::now()) {
        tokio::time::sleep_until(at).await;
    }
}

/// A connection's GOAWAY: a request asks for it (`--goaway-chance`) and the connection, once
/// asked, takes no new requests and closes when those in flight are done.
#[derive(Debug, Default)]
pub struct Goaway(tokio::sync::Notify);

impl Goaway {
    /// Asks the connection to go away.
    pub fn ask(&self) {
        // A permit is stored if the connection is not waiting at this instant.
        self.0.notify_one();
    }

    /// Whether a GOAWAY was asked for and not yet taken (for tests of the asking side).
    #[cfg(test)]
    pub fn take_asked(&self) -> bool {
        use futures::FutureExt;
        self.0.notified().now_or_never().is_some()
    }
}

/// Errors building the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The serving certificate or key could not be read or parsed.
    #[error("--{flag} {}: {reason}", path.display())]
    Load {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls rejected the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Builds the rustls server configuration from the serving certificate and the client verifier.
pub fn tls_config(
    cert_file: &Path,
    key_file: &Path,
    versions: &[&'static SupportedProtocolVersion],
    suites: Vec<SupportedCipherSuite>,
    client_verifier: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let load = |flag, path: &Path, reason: String| TlsError::Load {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect())
        .map_err(|e| load("tls-cert-file", cert_file, e.to_string()))?;
    if chain.is_empty() {
        return Err(load(
            "tls-cert-file",
            cert_file,
            "no certificate found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| load("tls-private-key-file", key_file, e.to_string()))?;
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: suites,
        ..rustls::crypto::ring::default_provider()
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts connections until `stop` is signaled, then lets open connections finish their
/// in-flight requests (hyper's graceful shutdown) for at most `drain_timeout`. An HTTP/2
/// connection carries at most `max_streams` requests at once (0: Go's default).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    handler: Handler,
    stop: Signal,
    drain_timeout: Duration,
    max_streams: u32,
) {
    let max_streams = if max_streams == 0 {
        HTTP2_MAX_STREAMS
    } else {
        max_streams
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (tcp, remote_addr) = tokio::select! {
            _ = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%remote_addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote_addr, "TLS handshake timed out");
                    return;
                }
            };
            let conn_info = Arc::new(ConnInfo::new(
                remote_addr,
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.to_vec())
                    .unwrap_or_default(),
            ));
            let goaway = Arc::new(Goaway::default());
            let asked = goaway.clone();
            let activity = Activity::new();
            let watched = activity.clone();
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    let conn_info = conn_info.clone();
                    let goaway = goaway.clone();
                    // Busy until the response's body has been sent, a watch's included.
                    let busy = activity.start();
                    async move {
                        let mut req = req.map(|b| b.map_err(Into::into).boxed_unsync());
                        req.extensions_mut().insert(conn_info);
                        req.extensions_mut().insert(goaway);
                        let resp = call(&handler, req)
                            .await
                            .map(|body| ObservedBody::wrap(body, 0, Box::new(move |_| drop(busy))));
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                // The header timeout is the connection task's (see `connection`).
                .header_read_timeout(None);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(max_streams);
            let io = TokioIo::new(Watched::new(tls, watched.clone()));
            let conn = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(conn);
            // Shutdown and a GOAWAY asked for by a request end the connection gracefully: no
            // new requests (an HTTP/2 GOAWAY), the ones in flight finish.
            let mut closing = false;
            let ended = loop {
                tokio::select! {
                    ended = conn.as_mut() => break ended,
                    _ = stop.wait(), if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    _ = asked.0.notified(), if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    _ = due(&watched), if !closing => match watched.due(Instant::now()) {
                        Due::Wait(_) => {}
                        Due::Idle => {
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                        Due::SlowHead => {
                            tracing::debug!(%remote_addr, "request headers too slow; closing");
                            return;
                        }
                    },
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%remote_addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(drain_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "[graceful-termination] connections still open after {drain_timeout:?}; closing them"
        );
    }
}
