//! `Endpoint`: a webhook named by an API object's `clientConfig` (admission webhooks, CRD
//! conversion webhooks): a `url`, or a `service` whose endpoints are resolved at each call, TLS
//! verified against the `caBundle` (the system's roots when empty), connections kept alive per
//! resolved address. One call is one POST within a timeout, without retries: the caller's
//! failure policy decides.

use super::WebhookClient;
use super::resolve::ServiceResolver;
use bytes::Bytes;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a webhook is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `clientConfig.url`.
    Url(http::Uri),
    /// `clientConfig.service`.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The path requests go to (`/` when unset).
        path: String,
        /// The Service port (443 when unset).
        port: u16,
    },
}

/// Why a call failed, in upstream's words.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No client could be made (a bad caBundle or URL).
    #[error("could not get REST client: {0}")]
    Client(String),
    /// The POST got no usable answer: `Post "<url>": <why>`.
    #[error("{0}")]
    Post(String),
}

/// A `clientConfig`, as the API types of both webhook kinds spell it.
pub struct ClientConfig {
    /// `url`.
    pub url: Option<String>,
    /// `service`: namespace, name, path and port.
    pub service: Option<(String, String, Option<String>, Option<i32>)>,
    /// `caBundle`, PEM.
    pub ca_bundle: Option<Vec<u8>>,
}

/// One webhook endpoint, ready to be called.
pub struct Endpoint {
    target: Target,
    tls: Result<Arc<rustls::ClientConfig>, String>,
    timeout: Duration,
    clients: Mutex<HashMap<(String, u16), Arc<WebhookClient>>>,
}

impl Endpoint {
    /// The endpoint of `config`, each call given `timeout`.
    pub fn new(config: ClientConfig, timeout: Duration) -> Self {
        let target = match (config.url, config.service) {
            (Some(url), _) => Target::Url(url.parse().unwrap_or_default()),
            (None, Some((namespace, name, path, port))) => Target::Service {
                namespace,
                name,
                path: path.filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into()),
                port: port.map_or(443, |p| p.clamp(1, 65535) as u16),
            },
            (None, None) => Target::Url(http::Uri::default()),
        };
        let ca = config.ca_bundle.filter(|b| !b.is_empty());
        let tls = crate::proxy::tls_config(ca.as_deref(), false, None)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        Self {
            target,
            tls,
            timeout,
            clients: Mutex::default(),
        }
    }

    /// The URL a call goes to, as upstream's client shows it: a Service's as
    /// `https://<name>.<namespace>.svc:<port><path>`, with `?timeout=` of the call.
    pub fn url(&self) -> String {
        let base = match &self.target {
            Target::Url(u) => u.to_string(),
            Target::Service {
                namespace,
                name,
                path,
                port,
            } => format!("https://{name}.{namespace}.svc:{port}{path}"),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}timeout={}s", self.timeout.as_secs())
    }

    /// POSTs the JSON `body` and returns the answer.
    pub async fn post(&self, resolver: &ServiceResolver, body: Bytes) -> Result<Bytes, CallError> {
        let address = match &self.target {
            Target::Url(_) => None,
            Target::Service {
                namespace,
                name,
                port,
                ..
            } => Some(
                resolver
                    .resolve(namespace, name, *port)
                    .await
                    .map_err(|e| CallError::Post(format!("Post {:?}: {e}", self.url())))?,
            ),
        };
        let client = self.client(address).map_err(CallError::Client)?;
        client
            .post_within(body, self.timeout)
            .await
            .map_err(|e| CallError::Post(e.to_string()))
    }

    /// The name the server's certificate must carry.
    fn server_name(&self) -> String {
        match &self.target {
            Target::Url(u) => u.host().unwrap_or("").trim_matches(['[', ']']).to_string(),
            Target::Service {
                namespace, name, ..
            } => format!("{name}.{namespace}.svc"),
        }
    }

    /// The kept-alive client for the webhook at `address` (the URL's own host when `None`).
    fn client(&self, address: Option<(String, u16)>) -> Result<Arc<WebhookClient>, String> {
        let url: http::Uri = self.url().parse().map_err(|e| format!("{e}"))?;
        let https = url.scheme_str() == Some("https");
        let key = address.clone().unwrap_or_else(|| {
            let host = url.host().unwrap_or("").to_string();
            (host, url.port_u16().unwrap_or(if https { 443 } else { 80 }))
        });
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let tls = if https {
            let config = self.tls.clone()?;
            let name = ServerName::try_from(self.server_name()).map_err(|e| e.to_string())?;
            Some((config, name))
        } else {
            None
        };
        let client = Arc::new(WebhookClient::new(url, address, tls, self.timeout));
        clients.insert(key, client.clone());
        Ok(client)
    }
}
