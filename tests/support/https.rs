//! The one HTTPS client of the tests and benches: HTTP/1.1 over rustls, trusting a given CA,
//! with or without a client certificate, for requests kubectl cannot make (raw headers, custom
//! certificates, timing).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kubeboot::pki::kubeconfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A response, fully read.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body as text.
    pub body: String,
    /// Body as received (protobuf bodies are not text).
    pub bytes: Bytes,
}

impl Reply {
    fn new(status: u16, headers: http::HeaderMap, bytes: Bytes) -> Self {
        Self {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The body as a JSON watch stream: one event a line.
    pub fn json_lines(&self) -> Vec<Value> {
        self.body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A minimal HTTPS/1.1 client; each request opens a connection unless sent on one of [`Https::connect`].
#[derive(Clone)]
pub struct Https {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

impl Https {
    /// A client trusting `ca_pem`, presenting `client` (cert PEM, key PEM) when given.
    pub fn new(addr: SocketAddr, ca_pem: &[u8], client: Option<(&[u8], &[u8])>) -> Self {
        super::kubeboot::install_crypto();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                builder
                    .with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key).unwrap())
                    .unwrap()
            }
        };
        Self {
            addr,
            config: Arc::new(config),
        }
    }

    /// A client for `addr` with the CA and the client certificate of the kubeconfig at `path`.
    pub fn from_kubeconfig(addr: SocketAddr, path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap();
        let (ca, cert, key) = kubeconfig::from_yaml(&text)
            .and_then(|k| kubeconfig::credentials(&k))
            .unwrap();
        Self::new(addr, ca.as_bytes(), Some((cert.as_bytes(), key.as_bytes())))
    }

    /// Opens a TLS connection (HTTP/1.1: no ALPN) for a test to speak on itself.
    pub async fn tls(
        &self,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        // Requests are written in one go; Nagle would only add latency to timed ones.
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let name = ServerName::IpAddress(self.addr.ip().into());
        connector.connect(name, tcp).await
    }

    /// Opens a TLS connection whose socket takes at most about `receive_buffer` bytes before
    /// the server must wait: a client that stops reading stalls the server after that much,
    /// rather than after the tens of MiB the kernel's buffer may grow to.
    pub async fn tls_with_receive_buffer(
        &self,
        receive_buffer: u32,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        // Set before connecting, so the window the server sees never exceeds it.
        socket.set_recv_buffer_size(receive_buffer)?;
        let tcp = socket.connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let name = ServerName::IpAddress(self.addr.ip().into());
        connector.connect(name, tcp).await
    }

    /// Sends `method path` asking to switch to `protocol`; returns the response head (lower
    /// case) and the connection, over which the switched protocol then runs.
    pub async fn switch(
        &self,
        method: &str,
        path: &str,
        protocol: &str,
    ) -> (
        String,
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = self.tls().await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: kubeboot\r\nConnection: Upgrade\r\n\
             Upgrade: {protocol}\r\nContent-Length: 0\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let read_head = async {
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                tls.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(20), read_head)
            .await
            .expect("a response head");
        (String::from_utf8_lossy(&head).to_lowercase(), tls)
    }

    /// Opens a keep-alive connection.
    pub async fn connect(&self) -> std::io::Result<SendRequest<Full<Bytes>>> {
        let tls = self.tls().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request on `sender` and reads the whole response: status, headers, body.
    pub async fn exchange(
        sender: &mut SendRequest<Full<Bytes>>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> std::io::Result<(u16, http::HeaderMap, Bytes)> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).map_err(std::io::Error::other)?;
        sender.ready().await.map_err(std::io::Error::other)?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(std::io::Error::other)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok((status, headers, body))
    }

    /// Sends one request on `sender`.
    pub async fn send(
        sender: &mut SendRequest<Full<Bytes>>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        Self::send_body(sender, method, path, headers, Bytes::new()).await
    }

    /// Sends one request with a body on `sender`.
    pub async fn send_body(
        sender: &mut SendRequest<Full<Bytes>>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> std::io::Result<Reply> {
        let (status, headers, bytes) = Self::exchange(sender, method, path, headers, body).await?;
        Ok(Reply::new(status, headers, bytes))
    }

    /// GETs `path` on a new connection and returns once the response head arrived (for a watch:
    /// once the server has registered it); the task returned reads the rest.
    pub async fn open(
        &self,
        path: &str,
    ) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<Reply>>> {
        let mut sender = self.connect().await?;
        let req = http::Request::get(path)
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .map_err(std::io::Error::other)?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(std::io::Error::other)?;
        Ok(tokio::spawn(async move {
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            // The connection lives as long as its sender.
            drop(sender);
            Ok(Reply::new(status, headers, bytes))
        }))
    }

    /// GET on a new connection.
    pub async fn get(&self, path: &str) -> std::io::Result<Reply> {
        self.request("GET", path, &[]).await
    }

    /// GET with an Accept header on a new connection.
    pub async fn get_as(&self, path: &str, accept: &str) -> Reply {
        self.request("GET", path, &[("accept", accept)])
            .await
            .unwrap()
    }

    /// POSTs `obj` as JSON, failing unless it is created; answers the created object.
    pub async fn create(&self, path: &str, obj: &Value) -> Value {
        let r = self.json("POST", path, obj).await;
        assert_eq!(r.status, 201, "POST {path}: {}", r.body);
        r.json()
    }

    /// A request with a JSON body on a new connection.
    pub async fn json(&self, method: &str, path: &str, body: &Value) -> Reply {
        self.with_body(method, path, "application/json", body.to_string())
            .await
    }

    /// A request with a body of `content_type` on a new connection.
    pub async fn with_body(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut sender = self.connect().await.unwrap();
        Self::send_body(
            &mut sender,
            method,
            path,
            &[("content-type", content_type)],
            body.into(),
        )
        .await
        .unwrap()
    }

    /// A request on a new connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        let mut sender = self.connect().await?;
        Self::send(&mut sender, method, path, headers).await
    }
}
