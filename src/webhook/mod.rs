//! Calling webhooks, as upstream's `k8s.io/apiserver/pkg/util/webhook`. [`WebhookClient`] POSTs
//! JSON over kept-alive connections; it is described by a kubeconfig-format file for the
//! authorization (and later the token and audit) webhooks — the current context's cluster gives
//! the URL and the CA that verifies it, the context's user the client certificate or bearer
//! token — where a request the server could not answer (connection reset, 429, 500, 504) is
//! retried with upstream's backoff (500 ms, ×1.5, 5 attempts). [`Endpoint`] is a webhook named
//! by an API object's `clientConfig` (admission and CRD conversion webhooks), a Service's
//! resolved by [`ServiceResolver`].

mod endpoint;
mod resolve;

pub use endpoint::{CallError, ClientConfig, Endpoint};
pub use resolve::{ServiceResolver, ready_endpoint};

use crate::proxy::{Backend, ClientIdentity};
use base64::Engine;
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kube::config::Kubeconfig;
use rustls::pki_types::ServerName;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a webhook call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The kubeconfig-format file is unreadable or incomplete.
    #[error("invalid webhook configuration {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The request did not get an answer (connect, TLS, I/O, timeout), in Go's url.Error words.
    #[error("Post {url:?}: {reason}")]
    Transport {
        /// The webhook's URL.
        url: String,
        /// Why.
        reason: String,
        /// Whether trying again may help (the connection was reset or closed mid-request).
        retriable: bool,
    },
    /// The webhook answered with a status other than 2xx.
    #[error(
        "the server responded with the status code {code} but did not return more information: {body}"
    )]
    Status {
        /// The HTTP status.
        code: u16,
        /// The body, as text, for the log and the error.
        body: String,
    },
}

impl WebhookError {
    /// Whether upstream's `DefaultShouldRetry` would try again.
    fn retriable(&self) -> bool {
        match self {
            Self::Config { .. } => false,
            Self::Transport { retriable, .. } => *retriable,
            Self::Status { code, .. } => matches!(*code, 429 | 500 | 504),
        }
    }
}

/// A webhook endpoint and how to reach it.
pub struct WebhookClient {
    url: Uri,
    host: String,
    port: u16,
    /// TLS to speak, or `None` for an `http://` server.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    token: Option<String>,
    timeout: Duration,
    /// The first wait before a failed call is tried again.
    backoff: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

/// Upstream's retry backoff for authentication and authorization webhooks.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_FACTOR: f64 = 1.5;
const ATTEMPTS: u32 = 5;

impl WebhookClient {
    /// A client POSTing to `url`, connecting to `address` (the URL's host and port when `None`;
    /// a Service's endpoint otherwise) and speaking `tls` there, each call given `timeout`.
    pub fn new(
        url: Uri,
        address: Option<(String, u16)>,
        tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
        timeout: Duration,
    ) -> Self {
        let (host, port) = address.unwrap_or_else(|| {
            let host = url.host().unwrap_or("").trim_start_matches('[');
            let port = url
                .port_u16()
                .unwrap_or(if tls.is_some() { 443 } else { 80 });
            (host.trim_end_matches(']').to_string(), port)
        });
        Self {
            url,
            host,
            port,
            tls,
            token: None,
            timeout,
            backoff: BACKOFF_FIRST,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Reads the kubeconfig-format `path` (relative file names are relative to it) and prepares
    /// calls that each give up after `timeout`.
    pub fn from_kubeconfig_file(path: &Path, timeout: Duration) -> Result<Self, WebhookError> {
        let invalid = |reason: String| WebhookError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let config = Kubeconfig::read_from(path).map_err(|e| invalid(e.to_string()))?;
        let context_name = config
            .current_context
            .clone()
            .ok_or_else(|| invalid("no current-context is set".into()))?;
        let context = config
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.clone())
            .ok_or_else(|| invalid(format!("context {context_name:?} does not exist")))?;
        let cluster = config
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .and_then(|c| c.cluster.clone())
            .ok_or_else(|| invalid(format!("cluster {:?} does not exist", context.cluster)))?;
        let user = match &context.user {
            Some(name) => Some(
                config
                    .auth_infos
                    .iter()
                    .find(|u| &u.name == name)
                    .and_then(|u| u.auth_info.clone())
                    .ok_or_else(|| invalid(format!("user {name:?} does not exist")))?,
            ),
            None => None,
        };
        let server = cluster
            .server
            .clone()
            .ok_or_else(|| invalid(format!("cluster {:?} has no server", context.cluster)))?;
        let url: Uri = server
            .parse()
            .map_err(|e| invalid(format!("server {server:?}: {e}")))?;
        let https = match url.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid(format!("server {server:?} is not an http(s) URL"))),
        };
        let host = url
            .host()
            .ok_or_else(|| invalid(format!("server {server:?} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });

        let data = |inline: Option<&str>, file: Option<&String>, what: &str| {
            load(inline, file).map_err(|e| invalid(format!("{what}: {e}")))
        };
        let tls = if https {
            let ca = data(
                cluster.certificate_authority_data.as_deref(),
                cluster.certificate_authority.as_ref(),
                "certificate-authority",
            )?;
            let identity = match &user {
                Some(u) => {
                    let key = u.client_key_data.as_ref().map(|k| {
                        use secrecy::ExposeSecret;
                        k.expose_secret().to_string()
                    });
                    let cert = data(
                        u.client_certificate_data.as_deref(),
                        u.client_certificate.as_ref(),
                        "client-certificate",
                    )?;
                    let key = data(key.as_deref(), u.client_key.as_ref(), "client-key")?;
                    cert.zip(key)
                }
                None => None,
            };
            let identity = match identity {
                Some((cert, key)) => Some(
                    ClientIdentity::from_pem(&cert, &key).map_err(|e| invalid(e.to_string()))?,
                ),
                None => None,
            };
            let config = crate::proxy::tls_config(
                ca.as_deref(),
                cluster.insecure_skip_tls_verify == Some(true),
                identity.as_ref(),
            )
            .map_err(|e| invalid(e.to_string()))?;
            let name = cluster.tls_server_name.clone().unwrap_or(host.clone());
            let name =
                ServerName::try_from(name).map_err(|e| invalid(format!("server name: {e}")))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        let token = match &user {
            Some(u) => match (&u.token, &u.token_file) {
                (Some(t), _) => {
                    use secrecy::ExposeSecret;
                    Some(t.expose_secret().to_string())
                }
                (None, Some(file)) => Some(
                    std::fs::read_to_string(file)
                        .map_err(|e| invalid(format!("tokenFile {file}: {e}")))?
                        .trim()
                        .to_string(),
                ),
                (None, None) => None,
            },
            None => None,
        };
        Ok(Self {
            url,
            host,
            port,
            tls,
            token,
            timeout,
            backoff: BACKOFF_FIRST,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The client waiting `first` before its first retry (upstream's `retryBackoff`).
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// POSTs the JSON `body` and returns the 2xx answer's body, retrying as upstream does.
    pub async fn post_json(&self, body: Bytes) -> Result<Bytes, WebhookError> {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match self.post_once(body.clone()).await {
                Err(e) if e.retriable() && attempt < ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "webhook call failed; retrying");
                    tokio::time::sleep(jittered(wait)).await;
                    wait = wait.mul_f64(BACKOFF_FACTOR);
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    /// One POST within the client's timeout.
    async fn post_once(&self, body: Bytes) -> Result<Bytes, WebhookError> {
        self.post_within(body, self.timeout).await
    }

    /// One POST of the JSON `body` that gives up after `timeout`, as admission webhooks are
    /// called (no retries: a webhook's failure policy decides).
    pub async fn post_within(&self, body: Bytes, timeout: Duration) -> Result<Bytes, WebhookError> {
        match tokio::time::timeout(timeout, self.exchange(body)).await {
            Ok(answer) => answer,
            Err(_) => Err(self.transport(
                &"context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                false,
            )),
        }
    }

    async fn exchange(&self, body: Bytes) -> Result<Bytes, WebhookError> {
        let mut sender = self.connection().await?;
        let path = self.url.path_and_query().map_or("/", |p| p.as_str());
        let mut req = http::Request::post(path)
            .header(http::header::HOST, self.authority())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, */*")
            .header(http::header::USER_AGENT, "kubeboot");
        if let Some(token) = &self.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| self.transport(&e, false))?;
        // A kept-alive connection the server closed fails before any byte is answered: retriable.
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.transport(&e, true))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| self.transport(&e, true))?
            .to_bytes();
        if !sender.is_closed() {
            self.idle.lock().unwrap().push(sender);
        }
        if status.is_success() {
            Ok(body)
        } else {
            Err(WebhookError::Status {
                code: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        }
    }

    /// A kept-alive connection that is ready, or a new one.
    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, WebhookError> {
        loop {
            let Some(mut sender) = self.idle.lock().unwrap().pop() else {
                break;
            };
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                let retriable = e.kind() == std::io::ErrorKind::ConnectionReset;
                let addr = Backend::authority_of(&self.host, self.port);
                self.transport(
                    &format!("dial tcp {addr}: {}", go_dial_error(&e)),
                    retriable,
                )
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some((config, name)) => {
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| self.transport(&format!("tls: {e}"), false))?;
                self.handshake(stream).await
            }
            None => self.handshake(tcp).await,
        }
    }

    async fn handshake<S>(&self, stream: S) -> Result<SendRequest<Full<Bytes>>, WebhookError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.transport(&e, false))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "webhook connection ended");
            }
        });
        Ok(sender)
    }

    fn authority(&self) -> String {
        match self.url.authority() {
            Some(a) => a.to_string(),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    fn transport(&self, reason: &dyn std::fmt::Display, retriable: bool) -> WebhookError {
        WebhookError::Transport {
            url: self.url.to_string(),
            reason: reason.to_string(),
            retriable,
        }
    }
}

/// A connect failure in Go's words (`connect: connection refused`), else the system's.
fn go_dial_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        _ => e.to_string(),
    }
}

/// `d` ± up to 20%, upstream's jitter, so that retries of many requests spread out.
fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(1.0 + 0.2 * f64::from(nanos % 1000) / 1000.0)
}

/// The bytes of an inline base64 field, else of its file; `None` when neither is set.
fn load(inline: Option<&str>, file: Option<&String>) -> Result<Option<Vec<u8>>, String> {
    match (inline, file) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map(Some)
            .map_err(|e| e.to_string()),
        (None, Some(file)) => std::fs::read(file)
            .map(Some)
            .map_err(|e| format!("{file}: {e}")),
        (None, None) => Ok(None),
    }
}
