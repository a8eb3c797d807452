//! HTTPS serving: rustls (ALPN h2 + http/1.1, client certificates optional) and hyper's auto connection.

use super::lifecycle::Signal;
use crate::auth::ConnInfo;
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

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Upstream's `ReadHeaderTimeout`: a client that has not sent a request's headers in this time
/// loses its connection ("just shy of requestTimeoutUpperBound").
const READ_HEADER_TIMEOUT: Duration = Duration::from_secs(32);

/// Go's default `MaxConcurrentStreams` of an HTTP/2 connection, kube-apiserver's unless
/// --http2-max-streams-per-connection says otherwise.
const HTTP2_MAX_STREAMS: u32 = 250;

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
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
        let watcher = graceful.watcher();
        tokio::spawn(async move {
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
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    let conn_info = conn_info.clone();
                    async move {
                        let mut req = req.map(|b| b.map_err(Into::into).boxed_unsync());
                        req.extensions_mut().insert(conn_info);
                        Ok::<_, std::convert::Infallible>(call(&handler, req).await)
                    }
                });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_HEADER_TIMEOUT);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(max_streams);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%remote_addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "[graceful-termination] connections still open after {drain_timeout:?}; closing them"
        );
    }
}
