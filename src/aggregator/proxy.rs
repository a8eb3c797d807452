//! Proxying a request to an extension API server, as upstream's `proxyHandler`: TLS verified
//! against the APIService's CA bundle with ServerName `<service>.<namespace>.svc`, the
//! front-proxy client certificate presented, the caller's identity in X-Remote-* headers
//! (never the caller's own), and the response streamed back.

use super::routes::Target;
use crate::auth::UserInfo;
use crate::endpoints::{BoxError, Request, Response, text};
use crate::pki::insecure::AnyServerCertificate;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use std::time::Duration;

/// How long connecting to an extension server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The front-proxy client identity the aggregator presents.
#[derive(Clone)]
pub struct ProxyIdentity {
    certs: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

/// Errors of the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The front-proxy client certificate or key could not be loaded.
    #[error("loading the proxy client certificate {path}: {reason}")]
    Identity {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TLS configuration for a target could not be built.
    #[error("{0}")]
    Tls(String),
    /// Connecting or talking to the extension server failed.
    #[error("{0}")]
    Upstream(String),
}

impl ProxyIdentity {
    /// Loads `--proxy-client-cert-file` and `--proxy-client-key-file`.
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

    /// The TLS client configuration for `target`.
    pub fn tls_config(&self, target: &Target) -> Result<rustls::ClientConfig, ProxyError> {
        use rustls::pki_types::pem::PemObject;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Tls(e.to_string()))?;
        let builder = if target.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_slice_iter(target.ca_bundle.as_deref().unwrap_or(&[])).flatten()
            {
                let _ = roots.add(cert);
            }
            builder.with_root_certificates(roots)
        };
        builder
            .with_client_auth_cert(self.certs.clone(), self.key.clone_key())
            .map_err(|e| ProxyError::Tls(e.to_string()))
    }
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// Replaces the caller's X-Remote-* headers and credentials with the authenticated identity,
/// as upstream's proxy does (a client must never choose the user the extension sees).
pub fn identity_headers(headers: &mut http::HeaderMap, user: &UserInfo) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| {
            let n = n.as_str();
            n.starts_with("x-remote-") || n == "authorization" || HOP_BY_HOP.contains(&n)
        })
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
    if let Ok(v) = HeaderValue::from_str(&user.name) {
        headers.insert("x-remote-user", v);
    }
    if !user.uid.is_empty()
        && let Ok(v) = HeaderValue::from_str(&user.uid)
    {
        headers.insert("x-remote-uid", v);
    }
    for g in &user.groups {
        if let Ok(v) = HeaderValue::from_str(g) {
            headers.append("x-remote-group", v);
        }
    }
    for (key, values) in &user.extra {
        let escaped: String =
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .to_lowercase();
        let Ok(name) = HeaderName::from_bytes(format!("x-remote-extra-{escaped}").as_bytes())
        else {
            continue;
        };
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.append(name.clone(), v);
            }
        }
    }
}

/// Opens a TLS connection to `target` at `address` and sends `req` over HTTP/1.1. When the
/// extension switches protocols (exec, port-forward), the two upgraded connections of
/// `client_upgrade` and the extension are joined.
pub async fn send(
    target: &Target,
    address: &(String, u16),
    tls: Arc<rustls::ClientConfig>,
    req: http::Request<crate::endpoints::Body>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ProxyError> {
    let upstream = |e: &dyn std::fmt::Display| ProxyError::Upstream(e.to_string());
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((address.0.as_str(), address.1)),
    )
    .await
    .map_err(|_| {
        ProxyError::Upstream(format!("dial tcp {}:{}: i/o timeout", address.0, address.1))
    })?
    .map_err(|e| ProxyError::Upstream(format!("dial tcp {}:{}: {e}", address.0, address.1)))?;
    let name = ServerName::try_from(target.server_name()).map_err(|e| upstream(&e))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| upstream(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| upstream(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "proxy connection ended");
        }
    });
    let mut resp = sender.send_request(req).await.map_err(|e| upstream(&e))?;
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
        return Ok(resp.map(|b| b.map_err(BoxError::from).boxed_unsync()));
    }
    let mut resp = resp.map(|b| b.map_err(BoxError::from).boxed_unsync());
    for h in HOP_BY_HOP {
        resp.headers_mut().remove(*h);
    }
    resp.extensions_mut().insert(crate::endpoints::Verbatim);
    Ok(resp)
}

/// The protocol a request asks to switch to (`Connection: Upgrade` + `Upgrade: …`).
fn upgrade_of(headers: &http::HeaderMap) -> Option<HeaderValue> {
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

/// Proxies `req` (already authenticated) to `target`.
pub async fn proxy(target: &Target, identity: &ProxyIdentity, mut req: Request) -> Response {
    let state = target.state();
    let Some(address) = state.address.filter(|_| state.available) else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "service unavailable\n");
    };
    let tls = match identity.tls_config(target) {
        Ok(tls) => Arc::new(tls),
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    };
    let user = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_default();
    let upgrade = upgrade_of(req.headers());
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    identity_headers(req.headers_mut(), &user);
    if let Some(protocol) = upgrade {
        req.headers_mut().insert(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        );
        req.headers_mut().insert(http::header::UPGRADE, protocol);
    }
    let host = format!("{}:{}", target.server_name(), target.port);
    if let Ok(v) = HeaderValue::from_str(&host) {
        req.headers_mut().insert(http::header::HOST, v);
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = path.parse().unwrap_or_default();
    *req.version_mut() = http::Version::HTTP_11;
    match send(target, &address, tls, req, client_upgrade).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!(apiservice = target.name, error = %e, "proxying failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("error trying to reach service: {e}\n"),
            )
        }
    }
}
