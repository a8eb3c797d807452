//! A real HTTPS server for the backends kubeboot calls out to (an authorization webhook, a
//! kubelet), run on its own thread and runtime so that a test may block on kubectl meanwhile.
//! It serves a fresh CA's certificate for 127.0.0.1, can demand client certificates from a
//! given CA, and hands each request with its client's CommonName to the test's handler;
//! protocol switches are supported. Stopping it drops every connection.

use super::kubeboot::install_crypto;
use super::socket::loopback_listener;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kubeboot::pki::certs::{LeafSpec, Pair, new_ca, new_leaf};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// A response body: whole or streamed.
pub type Body = BoxBody<Bytes, Infallible>;
/// What the handler returns.
pub type Reply = Pin<Box<dyn Future<Output = hyper::Response<Body>> + Send>>;
/// The test's handler: a request and its client certificate's CommonName.
pub type Handler = Arc<dyn Fn(hyper::Request<Incoming>, Option<String>) -> Reply + Send + Sync>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes.into()).boxed()
}

/// A running backend, stopped on drop.
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its CA (PEM), for the caller's trust.
    pub ca_pem: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    /// Starts serving `handler`; with `client_ca` (PEM), only clients it signed may connect.
    pub fn start(client_ca: Option<&str>, handler: Handler) -> Self {
        Self::start_as(&["localhost"], client_ca, handler)
    }

    /// As [`Backend::start`], its certificate valid for 127.0.0.1 and the DNS `names` (a
    /// Service's `<name>.<namespace>.svc`, say).
    pub fn start_as(names: &[&str], client_ca: Option<&str>, handler: Handler) -> Self {
        install_crypto();
        let ca = new_ca("test-backend-ca").unwrap();
        let serving: Pair = new_leaf(
            &LeafSpec {
                common_name: "test-backend".into(),
                organizations: vec![],
                dns_names: names.iter().map(|n| n.to_string()).collect(),
                ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                usage: rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            },
            &ca,
        )
        .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.add(cert.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let chain = vec![CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
            builder.with_single_cert(chain, key).unwrap(),
        ));
        let listener = loopback_listener();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::pin!(stopped);
                loop {
                    let tcp = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((tcp, _)) => tcp,
                            Err(_) => continue,
                        },
                    };
                    let (acceptor, handler) = (acceptor.clone(), handler.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let client = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(common_name);
                        let service = hyper::service::service_fn(move |req| {
                            let reply = handler(req, client.clone());
                            async move { Ok::<_, Infallible>(reply.await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .with_upgrades()
                            .await;
                    });
                }
            });
            // Dropping the runtime closes every connection still open.
        });
        Self {
            addr,
            ca_pem: ca.cert_pem,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Publishes this backend as Service `name` in `namespace` (port 443, named https) of the
    /// server `admin` speaks to: a Service without selector and its EndpointSlice by hand, so
    /// that what resolves Services (webhooks, conversion) reaches it.
    pub async fn publish_as_service(
        &self,
        admin: &super::https::Https,
        namespace: &str,
        name: &str,
    ) {
        let port = self.addr.port();
        admin
            .create(
                &format!("/api/v1/namespaces/{namespace}/services"),
                &serde_json::json!({"metadata": {"name": name},
                    "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}}),
            )
            .await;
        admin
            .create(
                &format!("/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"),
                &serde_json::json!({"metadata": {"name": format!("{name}-1"),
                        "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
            )
            .await;
    }

    /// Stops serving and closes every connection.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The subject CommonName of a DER certificate.
fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(String::from)
}
