//! Shared test fixtures: a real `kubeboot` process on a loopback port, an HTTPS client, real kubectl.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kubeboot::pki::kubeconfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use serde_json::Value;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The kubeboot binary cargo built for this test run.
pub const KUBEBOOT: &str = env!("CARGO_BIN_EXE_kubeboot");

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Installs the ring provider once for the test process.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A started `kubeboot` process, killed on drop.
pub struct TestServer {
    /// The process.
    pub child: Child,
    /// Its working directory (holds .kubeboot/ and the logs).
    pub dir: tempfile::TempDir,
    /// Its HTTPS port.
    pub port: u16,
}

impl TestServer {
    /// Runs `kubeboot up` on a free loopback port in a fresh directory.
    pub fn up(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_in(dir, &["up"], extra)
    }

    /// Runs `kubeboot <subcommand…> --data-dir … --secure-port … --bind-address 127.0.0.1 <extra>` in `dir`.
    pub fn spawn_in(dir: tempfile::TempDir, subcommand: &[&str], extra: &[&str]) -> Self {
        install_crypto();
        let port = free_port();
        let stdout = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(KUBEBOOT)
            .args(subcommand)
            .arg(format!(
                "--data-dir={}",
                dir.path().join(".kubeboot").display()
            ))
            .arg(format!("--secure-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        Self { child, dir, port }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join(".kubeboot")
    }

    /// The admin kubeconfig `up` wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir().join("admin.kubeconfig")
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// An HTTPS client trusting the cluster CA, without a client certificate.
    pub fn anonymous(&self) -> Https {
        let ca = std::fs::read(self.data_dir().join("pki/ca.crt")).unwrap();
        Https::new(self.addr(), &ca, None)
    }

    /// An HTTPS client authenticated as the admin kubeconfig's user.
    pub fn admin(&self) -> Https {
        let text = std::fs::read_to_string(self.kubeconfig()).unwrap();
        let (ca, cert, key) = kubeconfig::from_yaml(&text)
            .and_then(|k| kubeconfig::credentials(&k))
            .unwrap();
        Https::new(
            self.addr(),
            ca.as_bytes(),
            Some((cert.as_bytes(), key.as_bytes())),
        )
    }

    /// Waits until /readyz answers 200, failing with the server's log after `timeout`.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "kubeboot exited with {status} before becoming ready:\n{}",
                    self.stderr()
                );
            }
            if self.data_dir().join("pki/ca.crt").exists()
                && let Ok((200, _)) = self
                    .anonymous()
                    .get("/readyz")
                    .await
                    .map(|r| (r.status, ()))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kubeboot not ready after 60s:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "kubeboot still running after {timeout:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs kubectl `bin` against this server with the admin kubeconfig.
    pub fn kubectl(&self, bin: &Path, args: &[&str]) -> Output {
        Command::new(bin)
            .arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .args(args)
            .output()
            .unwrap()
    }

    /// A kube-rs client from the admin kubeconfig.
    pub async fn kube_client(&self) -> kube::Client {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(self.kubeconfig()).unwrap(),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `kubeboot <args>` to completion in `dir`.
pub fn run_kubeboot(dir: &Path, args: &[&str]) -> Output {
    Command::new(KUBEBOOT)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

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

/// The `(type, object name)` of each watch event.
pub fn types_and_names(events: &[Value]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect()
}

/// A minimal HTTPS/1.1 client for requests kubectl cannot make (raw headers, custom certificates).
#[derive(Clone)]
pub struct Https {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

impl Https {
    /// A client trusting `ca_pem`, presenting `client` (cert PEM, key PEM) when given.
    pub fn new(addr: SocketAddr, ca_pem: &[u8], client: Option<(&[u8], &[u8])>) -> Self {
        install_crypto();
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

    /// Opens a TLS connection (HTTP/1.1: no ALPN) for a test to speak on itself.
    pub async fn tls(
        &self,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let name = ServerName::IpAddress(self.addr.ip().into());
        connector.connect(name, tcp).await
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
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender
            .send_request(req.body(Full::new(body)).unwrap())
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
        Ok(Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            bytes: body,
        })
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

/// The versioned kubectl binaries of the `kubectl` Debian package, plus v1.35 from the npm layer
/// that scripts/test installs. A missing binary fails the test: these are required, not optional.
pub fn kubectls() -> Vec<(&'static str, PathBuf)> {
    let debian =
        std::env::var("KUBECTL_DIR").unwrap_or_else(|_| "/usr/lib/google-cloud-sdk/bin".into());
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
    let list = vec![
        ("1.27", Path::new(&debian).join("kubectl.1.27")),
        ("1.32", Path::new(&debian).join("kubectl.1.32")),
        ("1.35", tools.join("layer-v35/kubectl/kubectl")),
    ];
    for (version, path) in &list {
        assert!(
            path.exists(),
            "kubectl {version} not found at {} — run scripts/test, which installs it",
            path.display()
        );
    }
    list
}

/// The kubectl of `version` among [`kubectls`].
pub fn kubectl_version(version: &str) -> PathBuf {
    kubectls()
        .into_iter()
        .find(|(v, _)| *v == version)
        .unwrap_or_else(|| panic!("no kubectl {version}"))
        .1
}

/// The newest kubectl.
pub fn newest_kubectl() -> PathBuf {
    kubectls().pop().unwrap().1
}

/// The stdout of a command that must have succeeded; fails with both streams otherwise.
pub fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The stderr of a command that must have failed; fails with both streams otherwise.
pub fn failed(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what} succeeded but must fail:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Polls `check` every 100ms until it returns Some, failing with `what` after 30s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until GET `path` answers `status`.
pub async fn answers(admin: &Https, path: &str, status: u16) -> Reply {
    eventually(&format!("GET {path} → {status}"), || async {
        let r = admin.get(path).await.ok()?;
        (r.status == status).then_some(r)
    })
    .await
}
