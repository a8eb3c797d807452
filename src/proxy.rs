//! Upgrade-aware proxying, as upstream's `apimachinery/pkg/util/proxy`: a request is sent to a
//! backend (an extension API server, a kubelet, a pod or a service endpoint) over HTTP/1.1, with
//! TLS and a client certificate where the backend wants them; the response streams back, and a
//! protocol switch (exec, attach, port-forward over SPDY or WebSocket) joins the two upgraded
//! connections byte for byte.

use crate::endpoints::{BoxError, Response};
use crate::pki::insecure::AnyServerCertificate;
use http::{HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use std::time::Duration;

/// How long connecting to a backend may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// Errors of the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A client certificate or key could not be loaded.
    #[error("loading the proxy client certificate {path}: {reason}")]
    Identity {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TLS configuration for a backend could not be built.
    #[error("{0}")]
    Tls(String),
    /// Connecting or talking to the backend failed.
    #[error("{0}")]
    Upstream(String),
}

/// A client certificate and key presented to backends.
#[derive(Clone)]
pub struct ClientIdentity {
    certs: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl ClientIdentity {
    /// Loads a PEM certificate chain and key (`--proxy-client-*-file`, `--kubelet-client-*`).
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, ProxyError> {
        use rustls::pki_types::pem::PemObject;
        let err = |path: &std::path::Path, reason: String| ProxyError::Identity {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| err(cert, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(cert, e.to_string()))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| err(key, e.to_string()))?;
        Ok(Self {
            certs,
            key: Arc::new(key),
        })
    }

    /// A PEM certificate chain and key given inline (a kubeconfig's `client-*-data`).
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, ProxyError> {
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProxyError::Tls(format!("client-certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| ProxyError::Tls(format!("client-key: {e}")))?;
        Ok(Self {
            certs,
            key: Arc::new(key),
        })
    }
}

/// The system's trusted CAs (Debian's bundle), Go's default roots when no CA is configured.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TLS client configuration verifying servers against the PEM bundle `ca` (the system's
/// roots when `None`, not at all when `insecure`) and presenting `identity` when given.
pub fn tls_config(
    ca: Option<&[u8]>,
    insecure: bool,
    identity: Option<&ClientIdentity>,
) -> Result<rustls::ClientConfig, ProxyError> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProxyError::Tls(e.to_string()))?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem).flatten() {
                    let _ = roots.add(cert);
                }
            }
            None => {
                for cert in CertificateDer::pem_file_iter(SYSTEM_ROOTS)
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let _ = roots.add(cert);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    match identity {
        Some(id) => builder
            .with_client_auth_cert(id.certs.clone(), id.key.clone_key())
            .map_err(|e| ProxyError::Tls(e.to_string())),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Where a request goes: an address, and the TLS to speak there (none for plain HTTP).
pub struct Backend {
    /// Host name or IP to connect to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS configuration and the name to verify, for HTTPS.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl Backend {
    /// `host:port` as a Host header and in error messages (IPv6 in brackets).
    pub fn authority(&self) -> String {
        Self::authority_of(&self.host, self.port)
    }

    /// `host:port`, IPv6 in brackets.
    pub fn authority_of(host: &str, port: u16) -> String {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

/// The protocol a request asks to switch to (`Connection: Upgrade` + `Upgrade: …`).
pub fn upgrade_of(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let connection_upgrade = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade
        .then(|| headers.get(http::header::UPGRADE).cloned())
        .flatten()
}

/// Prepares `req` to go to `backend` at `path_and_query`: hop-by-hop headers removed (but a
/// protocol switch kept), Host set, HTTP/1.1. Returns the client's side of a switch, if asked.
pub fn prepare(
    req: &mut http::Request<crate::endpoints::Body>,
    backend: &Backend,
    path_and_query: &str,
) -> Option<hyper::upgrade::OnUpgrade> {
    let upgrade = upgrade_of(req.headers());
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut *req));
    for h in HOP_BY_HOP {
        req.headers_mut().remove(*h);
    }
    if let Some(protocol) = upgrade {
        req.headers_mut().insert(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        );
        req.headers_mut().insert(http::header::UPGRADE, protocol);
    }
    if let Ok(v) = HeaderValue::from_str(&backend.authority()) {
        req.headers_mut().insert(http::header::HOST, v);
    }
    *req.uri_mut() = path_and_query.parse().unwrap_or_default();
    *req.version_mut() = http::Version::HTTP_11;
    client_upgrade
}

/// Opens a connection to `backend` and sends `req` over HTTP/1.1. When the backend switches
/// protocols, the two upgraded connections of `client_upgrade` and the backend are joined.
pub async fn send(
    backend: &Backend,
    req: http::Request<crate::endpoints::Body>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ProxyError> {
    let upstream = |e: &dyn std::fmt::Display| ProxyError::Upstream(e.to_string());
    let authority = backend.authority();
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((backend.host.as_str(), backend.port)),
    )
    .await
    .map_err(|_| ProxyError::Upstream(format!("dial tcp {authority}: i/o timeout")))?
    .map_err(|e| ProxyError::Upstream(format!("dial tcp {authority}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let resp = match &backend.tls {
        Some((tls, name)) => {
            let stream = tokio_rustls::TlsConnector::from(tls.clone())
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| upstream(&e))?;
            exchange(stream, req).await?
        }
        None => exchange(tcp, req).await?,
    };
    Ok(finish(resp, client_upgrade))
}

async fn exchange<S>(
    stream: S,
    req: http::Request<crate::endpoints::Body>,
) -> Result<http::Response<hyper::body::Incoming>, ProxyError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let upstream = |e: &dyn std::fmt::Display| ProxyError::Upstream(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| upstream(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "proxy connection ended");
        }
    });
    sender.send_request(req).await.map_err(|e| upstream(&e))
}

/// The backend's response as ours: a protocol switch joined with the client's, anything else
/// streamed without its hop-by-hop headers.
fn finish(
    mut resp: http::Response<hyper::body::Incoming>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                Err(e) => tracing::debug!(error = %e, "upgrading a proxied connection failed"),
            }
        });
        // The 101 keeps its Connection and Upgrade headers: they are the switch itself.
        return resp.map(|b| b.map_err(BoxError::from).boxed_unsync());
    }
    let mut resp = resp.map(|b| b.map_err(BoxError::from).boxed_unsync());
    for h in HOP_BY_HOP {
        resp.headers_mut().remove(*h);
    }
    resp.extensions_mut().insert(crate::endpoints::Verbatim);
    resp
}
