//! Proxying a request to an extension API server, as upstream's `proxyHandler`: TLS verified
//! against the APIService's CA bundle with ServerName `<service>.<namespace>.svc`, the
//! front-proxy client certificate presented, the caller's identity in X-Remote-* headers
//! (never the caller's own), and the response streamed back.

use super::routes::Target;
use crate::auth::UserInfo;
use crate::endpoints::{Request, Response, text};
use crate::proxy::{Backend, ClientIdentity, HOP_BY_HOP, ProxyError};
use http::{HeaderName, HeaderValue, StatusCode};
use rustls::pki_types::ServerName;
use std::sync::Arc;

/// The TLS client configuration for `target`: its CA bundle (or none when it is insecure), the
/// front-proxy client certificate presented.
pub fn tls_config(
    target: &Target,
    identity: &ClientIdentity,
) -> Result<rustls::ClientConfig, ProxyError> {
    crate::proxy::tls_config(target.ca_bundle.as_deref(), target.insecure, Some(identity))
}

/// The extension server of `target` at `address`, verified as `<service>.<namespace>.svc`.
pub fn backend(
    target: &Target,
    address: &(String, u16),
    identity: &ClientIdentity,
) -> Result<Backend, ProxyError> {
    let name =
        ServerName::try_from(target.server_name()).map_err(|e| ProxyError::Tls(e.to_string()))?;
    Ok(Backend {
        host: address.0.clone(),
        port: address.1,
        tls: Some((Arc::new(tls_config(target, identity)?), name)),
    })
}

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

/// Proxies `req` (already authenticated) to `target`.
pub async fn proxy(target: &Target, identity: &ClientIdentity, mut req: Request) -> Response {
    let state = target.state();
    let Some(address) = state.address.filter(|_| state.available) else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "service unavailable\n");
    };
    let backend = match backend(target, &address, identity) {
        Ok(backend) => backend,
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    };
    let user = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_default();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    // The upgrade is taken before identity_headers drops the hop-by-hop headers that ask for it.
    let upgrade = crate::proxy::upgrade_of(req.headers());
    identity_headers(req.headers_mut(), &user);
    if let Some(protocol) = upgrade {
        req.headers_mut().insert(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        );
        req.headers_mut().insert(http::header::UPGRADE, protocol);
    }
    let client_upgrade = crate::proxy::prepare(&mut req, &backend, &path);
    // The extension is addressed by its service name, as its serving certificate names it.
    if let Ok(v) = HeaderValue::from_str(&format!("{}:{}", target.server_name(), target.port)) {
        req.headers_mut().insert(http::header::HOST, v);
    }
    match crate::proxy::send(&backend, req, client_upgrade).await {
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
