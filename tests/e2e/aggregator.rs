//! The aggregator end to end: local APIServices, and a real extension API server in its own
//! process (this test binary, re-run with an environment variable) behind an ExternalName
//! Service, reached through kubeboot's proxy with the front-proxy client certificate.

use crate::common::{kubectls, newest_kubectl, ok};
use crate::support::kubeboot::{TestServer, install_crypto};
use crate::support::scrape::Scrape;
use crate::support::socket::{loopback_listener, spawn_with_listener};
use crate::support::wait::{answers, eventually};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kubeboot::pki::certs::{LeafSpec, new_ca, new_leaf};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set in the extension process: the directory with its certificates and request log. Its
/// listening socket is fd 3, passed as kubeboot's are (socket activation).
const DIR_ENV: &str = "KUBEBOOT_TEST_EXTENSION_DIR";
/// What the extension logs once it serves.
const SERVING: &str = "extension: serving";
/// The CN of the front-proxy client certificate the extension accepts, as upstream's default
/// --requestheader-allowed-names.
const FRONT_PROXY_CLIENT: &str = "front-proxy-client";
const METRICS: &str = "v1beta1.metrics.k8s.io";
const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";

// ---------------------------------------------------------------------------------------------
// The extension API server (runs in a separate process).
// ---------------------------------------------------------------------------------------------

/// Not a test: the extension API server's process. Returns at once unless the test that spawns
/// it set KUBEBOOT_TEST_EXTENSION_DIR; then it serves on the socket passed as fd 3 until killed.
#[test]
fn extension_apiserver_process() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    use std::os::fd::FromRawFd;
    // SAFETY: the spawning test passed its listening socket as fd 3 (Extension::start), for
    // this process alone to use.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(serve_extension(listener, PathBuf::from(dir)));
}

/// Serves metrics.k8s.io/v1beta1 over TLS, accepting only clients whose certificate chains to
/// the front-proxy CA and names front-proxy-client, as an extension server's requestheader
/// authenticator does.
async fn serve_extension(listener: std::net::TcpListener, dir: PathBuf) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("front-proxy-ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain = CertificateDer::pem_file_iter(dir.join("serving.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("serving.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    eprintln!("{SERVING}");
    let log = dir.join("requests.log");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, log) = (acceptor.clone(), log.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    eprintln!("extension: TLS handshake failed: {e}");
                    return;
                }
            };
            let client_cn = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| common_name(c));
            if client_cn.as_deref() != Some(FRONT_PROXY_CLIENT) {
                eprintln!("extension: refusing client {client_cn:?}");
                return;
            }
            let service = hyper::service::service_fn(move |req| {
                let log = log.clone();
                async move { Ok::<_, Infallible>(respond(req, &log)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades()
                .await;
        });
    }
}

/// The extension's body type: whole documents or a stream.
type ExtBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Answers a request: `exec` upgrades switch to an echo protocol, `watch=true` on nodes streams
/// one event at once and a second only once the test creates `release-watch` (so a proxy that
/// buffered the stream would never show the first), anything else is `answer`ed.
fn respond(mut req: hyper::Request<Incoming>, log: &Path) -> hyper::Response<ExtBody> {
    use http_body_util::BodyExt;
    let path = req.uri().path().to_string();
    let upgrade = req.headers().get("upgrade").cloned();
    if path.ends_with("/exec")
        && let Some(protocol) = upgrade
    {
        let _ = answer(&req, log);
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        return hyper::Response::builder()
            .status(101)
            .header("connection", "Upgrade")
            .header("upgrade", protocol)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap();
    }
    if path == NODES && req.uri().query().unwrap_or("").contains("watch=true") {
        let _ = answer(&req, log);
        let release = log.with_file_name("release-watch");
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        tokio::spawn(async move {
            let event = |kind: &str, cpu: &str| {
                let mut node = node_metrics()["items"][0].clone();
                node["usage"]["cpu"] = json!(cpu);
                Bytes::from(format!("{}\n", json!({"type": kind, "object": node})))
            };
            let _ = tx.send(event("ADDED", "100m")).await;
            let deadline = Instant::now() + Duration::from_secs(30);
            while !release.exists() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = tx.send(event("MODIFIED", "200m")).await;
        });
        let frames = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, Infallible>(hyper::body::Frame::data(b)), rx))
        });
        return hyper::Response::builder()
            .header("content-type", "application/json")
            .body(http_body_util::StreamBody::new(frames).boxed())
            .unwrap();
    }
    answer(&req, log).map(|b| b.boxed())
}

fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Logs the request's identity headers and answers it.
fn answer(req: &hyper::Request<Incoming>, log: &Path) -> hyper::Response<Full<Bytes>> {
    let headers = req.headers();
    let all = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix("x-remote-extra-") {
            extra
                .entry(key.to_string())
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
    }
    let path = req.uri().path().to_string();
    let line = json!({
        "method": req.method().as_str(),
        "path": path,
        "query": req.uri().query().unwrap_or(""),
        "host": all("host"),
        "user": all("x-remote-user"),
        "groups": all("x-remote-group"),
        "extra": extra,
        "authorization": all("authorization"),
        "impersonate": all("impersonate-user").into_iter().chain(all("impersonate-group")).collect::<Vec<_>>(),
    });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    file.write_all(format!("{line}\n").as_bytes()).unwrap();

    let (status, body) = match path.trim_end_matches('/') {
        "/apis/metrics.k8s.io/v1beta1" => (200, resource_list()),
        "/apis/metrics.k8s.io/v1beta1/nodes" => (200, node_metrics()),
        "/apis/metrics.k8s.io/v1beta1/pods" => (200, pod_metrics()),
        p if p.starts_with("/apis/metrics.k8s.io/v1beta1/namespaces/") && p.ends_with("/pods") => {
            (200, pod_metrics())
        }
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource",
                "reason": "NotFound", "code": 404}),
        ),
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "metrics.k8s.io/v1beta1",
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics",
             "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics",
             "verbs": ["get", "list"]}
        ]
    })
}

fn node_metrics() -> Value {
    json!({
        "kind": "NodeMetricsList",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [{
            "metadata": {"name": "extension-node-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"served-by": "test-extension"}},
            "timestamp": "2026-01-01T00:00:00Z",
            "window": "10.5s",
            "usage": {"cpu": "123m", "memory": "456Ki"}
        }]
    })
}

fn pod_metrics() -> Value {
    json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
           "items": []})
}

// ---------------------------------------------------------------------------------------------
// Driving the extension from the tests.
// ---------------------------------------------------------------------------------------------

/// Writes the extension's files into `dir`: a fresh CA, a serving certificate for
/// `<service>.<namespace>.svc` signed by it, and the front-proxy CA it trusts for clients.
/// Returns the extension CA (PEM), the APIService's caBundle.
fn prepare_extension(dir: &Path, front_proxy_ca: &Path, service: &str, namespace: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let ca = new_ca("test-extension-ca").unwrap();
    let serving = new_leaf(
        &LeafSpec {
            common_name: format!("{service}.{namespace}.svc"),
            organizations: vec![],
            dns_names: vec![format!("{service}.{namespace}.svc")],
            ips: vec![],
            usage: rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        },
        &ca,
    )
    .unwrap();
    std::fs::write(dir.join("serving.crt"), &serving.cert_pem).unwrap();
    std::fs::write(dir.join("serving.key"), &serving.key_pem).unwrap();
    std::fs::copy(front_proxy_ca, dir.join("front-proxy-ca.crt")).unwrap();
    ca.cert_pem
}

/// A running extension process, killed on drop.
struct Extension {
    child: Child,
    dir: PathBuf,
}

impl Extension {
    /// Starts the extension on `listener` with the files of `dir`, and waits until it serves.
    async fn start(dir: &Path, listener: std::net::TcpListener) -> Self {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("extension.log"))
            .unwrap();
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "aggregator::extension_apiserver_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().unwrap())
            .stderr(stderr);
        // The log is kept across restarts: this start is one more SERVING line.
        let started = std::fs::read_to_string(dir.join("extension.log"))
            .unwrap_or_default()
            .matches(SERVING)
            .count();
        let mut ext = Self {
            child: spawn_with_listener(command, listener).unwrap(),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = ext.child.try_wait().unwrap() {
                panic!("extension exited with {status}:\n{}", ext.log());
            }
            if ext.log().matches(SERVING).count() > started {
                return ext;
            }
            assert!(
                Instant::now() < deadline,
                "extension not serving after 30s:\n{}",
                ext.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("extension.log")).unwrap_or_default()
    }

    /// Every request the extension answered so far (across restarts).
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Kills the process and waits for it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Extension {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// kubectl with a discovery cache private to this server.
fn k(server: &TestServer, bin: &Path, args: &[&str]) -> Output {
    let cache = format!(
        "--cache-dir={}",
        server.dir.path().join("kube-cache").display()
    );
    let mut all = vec![cache.as_str()];
    all.extend_from_slice(args);
    server.kubectl(bin, &all)
}

/// Writes `text` into the server's directory and runs `kubectl apply -f` on it.
fn apply(server: &TestServer, name: &str, text: &str) -> String {
    let path = server.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    ok(
        &k(
            server,
            &newest_kubectl(),
            &["apply", "-f", path.to_str().unwrap()],
        ),
        &format!("kubectl apply {name}"),
    )
}

/// The APIService `name` as kubectl shows it in JSON, None when it does not exist.
fn get_apiservice(server: &TestServer, name: &str) -> Option<Value> {
    let out = k(
        server,
        &newest_kubectl(),
        &["get", "apiservice", name, "-o", "json"],
    );
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("NotFound"), "get apiservice {name}: {err}");
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The Available condition of an APIService.
fn available(a: &Value) -> Option<Value> {
    a["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Available")
        .cloned()
}

/// Waits until the APIService's Available condition has `status` and `reason`; returns it.
async fn wait_available(
    server: &TestServer,
    name: &str,
    status: &str,
    reason: &str,
    limit: Duration,
) -> Value {
    let mut last = Value::Null;
    let what = format!("{name} Available={status} ({reason})");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(c) = get_apiservice(server, name).and_then(|a| available(&a)) {
            if c["status"] == status && c["reason"] == reason {
                return c;
            }
            last = c;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last condition: {last}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Changes a label of the APIService, which makes the availability controller check it again.
fn touch(server: &TestServer, name: &str, value: &str) {
    ok(
        &k(
            server,
            &newest_kubectl(),
            &[
                "label",
                "apiservice",
                name,
                &format!("touched={value}"),
                "--overwrite",
            ],
        ),
        "touch apiservice",
    );
}

/// The rows of `kubectl get apiservices` (or of one), split on whitespace.
fn apiservice_rows(server: &TestServer, bin: &Path, args: &[&str]) -> Vec<Vec<String>> {
    let mut all = vec!["get", "apiservices"];
    all.extend_from_slice(args);
    let table = ok(&k(server, bin, &all), "kubectl get apiservices");
    let rows: Vec<Vec<String>> = table
        .lines()
        .map(|l| {
            // AVAILABLE may be "False (Reason)": columns are separated by 2+ spaces.
            l.split("  ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect();
    assert_eq!(rows[0], ["NAME", "SERVICE", "AVAILABLE", "AGE"], "{table}");
    rows[1..].to_vec()
}

/// The groups /apis lists.
async fn api_groups(server: &TestServer) -> Vec<String> {
    let r = server.admin().get("/apis").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect()
}

/// `kubectl api-resources --api-group=metrics.k8s.io` rows as (name, namespaced, kind).
fn metrics_resources(server: &TestServer, bin: &Path) -> Vec<(String, String, String)> {
    let out = ok(
        &k(
            server,
            bin,
            &[
                "api-resources",
                "--api-group=metrics.k8s.io",
                "--no-headers",
            ],
        ),
        "kubectl api-resources",
    );
    let mut rows: Vec<(String, String, String)> = out
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // NAME SHORTNAMES(empty) APIVERSION NAMESPACED KIND
            let n = cols.len();
            (
                cols[0].to_string(),
                cols[n - 2].to_string(),
                cols[n - 1].to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_apiservices_cover_every_served_group_and_follow_crds() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();

    // The aggregator's hooks are part of readiness.
    let r = admin.get("/readyz?verbose").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    for hook in [
        "start-kube-aggregator-informers",
        "apiservice-registration-controller",
        "apiservice-status-available-controller",
        "kube-apiserver-autoregistration",
    ] {
        assert!(
            r.body.contains(&format!("[+]poststarthook/{hook} ok\n")),
            "{hook} missing from /readyz?verbose:\n{}",
            r.body
        );
    }
    // As upstream, a check of its own, not a hook.
    assert!(
        r.body.contains("\n[+]autoregister-completion ok\n"),
        "{}",
        r.body
    );

    // Every group/version discovery lists has a Local, available APIService.
    let mut expected = vec!["v1.".to_string()];
    let apis = admin.get("/apis").await.unwrap().json();
    for group in apis["groups"].as_array().unwrap() {
        for v in group["versions"].as_array().unwrap() {
            expected.push(format!(
                "{}.{}",
                v["version"].as_str().unwrap(),
                group["name"].as_str().unwrap()
            ));
        }
    }
    for must in [
        "v1.apps",
        "v1.batch",
        "v1.rbac.authorization.k8s.io",
        "v1.apiextensions.k8s.io",
        "v1.apiregistration.k8s.io",
        "v1.coordination.k8s.io",
    ] {
        assert!(expected.iter().any(|e| e == must), "{must} not in /apis");
    }
    for (version, bin) in kubectls() {
        let rows = apiservice_rows(&server, &bin, &[]);
        let by_name: BTreeMap<&str, &Vec<String>> =
            rows.iter().map(|r| (r[0].as_str(), r)).collect();
        for name in &expected {
            let row = by_name
                .get(name.as_str())
                .unwrap_or_else(|| panic!("kubectl {version}: no APIService {name}: {rows:?}"));
            assert_eq!(row[1..3], ["Local", "True"], "kubectl {version}: {row:?}");
        }
        assert_eq!(
            rows.len(),
            expected.len(),
            "kubectl {version}: APIServices {rows:?} vs discovery {expected:?}"
        );
    }

    // Upstream's priorities and labels.
    for (name, group, version, gp, vp) in [
        ("v1.", "", "v1", 18000, 1),
        ("v1.apps", "apps", "v1", 17800, 15),
        ("v1.batch", "batch", "v1", 17400, 15),
        (
            "v1.apiextensions.k8s.io",
            "apiextensions.k8s.io",
            "v1",
            16700,
            15,
        ),
    ] {
        let a = get_apiservice(&server, name).unwrap();
        assert_eq!(
            a["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"], "onstart",
            "{a}"
        );
        assert_eq!(a["spec"]["group"].as_str().unwrap_or(""), group, "{a}");
        assert_eq!(a["spec"]["version"], version, "{a}");
        assert_eq!(a["spec"]["groupPriorityMinimum"], gp, "{a}");
        assert_eq!(a["spec"]["versionPriority"], vp, "{a}");
        assert!(a["spec"].get("service").is_none_or(Value::is_null), "{a}");
        let c = available(&a).unwrap();
        assert_eq!(c["status"], "True", "{a}");
        assert_eq!(c["reason"], "Local", "{a}");
    }

    // A CRD's served versions get APIServices while it exists.
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.agg.example.com}
spec:
  group: agg.example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  - {name: v1alpha1, served: false, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
"#;
    apply(&server, "crd", crd);
    for name in ["v1.agg.example.com", "v1beta1.agg.example.com"] {
        let a = eventually(&format!("APIService {name}"), || async {
            get_apiservice(&server, name)
        })
        .await;
        assert_eq!(
            a["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"], "true",
            "{a}"
        );
        assert_eq!(a["spec"]["group"], "agg.example.com", "{a}");
        assert_eq!(a["spec"]["groupPriorityMinimum"], 1000, "{a}");
        assert_eq!(a["spec"]["versionPriority"], 100, "{a}");
        wait_available(&server, name, "True", "Local", Duration::from_secs(30)).await;
    }
    for (version, bin) in kubectls() {
        let rows = apiservice_rows(&server, &bin, &["v1.agg.example.com"]);
        assert_eq!(rows.len(), 1, "kubectl {version}: {rows:?}");
        assert_eq!(
            rows[0][..3],
            ["v1.agg.example.com", "Local", "True"],
            "kubectl {version}"
        );
    }
    assert!(
        get_apiservice(&server, "v1alpha1.agg.example.com").is_none(),
        "an unserved version has no APIService"
    );

    ok(
        &k(
            &server,
            &newest_kubectl(),
            &["delete", "crd", "gadgets.agg.example.com"],
        ),
        "delete crd",
    );
    for name in ["v1.agg.example.com", "v1beta1.agg.example.com"] {
        eventually(&format!("APIService {name} gone"), || async {
            get_apiservice(&server, name).is_none().then_some(())
        })
        .await;
    }
}

/// The Service and APIService of the metrics extension on `port`, trusting `ca_pem`.
fn metrics_manifest(port: u16, ca_pem: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: metrics-server, namespace: kube-system}}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{{port: {port}}}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: {METRICS}}}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {{namespace: kube-system, name: metrics-server, port: {port}}}
  caBundle: {ca}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_apiserver_is_proxied_with_the_callers_identity_and_tracked_for_availability() {
    install_crypto();
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let dir = server.dir.path().join("extension");
    let ca = prepare_extension(
        &dir,
        &server.data_dir().join("pki/front-proxy-ca.crt"),
        "metrics-server",
        "kube-system",
    );
    let listener = loopback_listener();
    let port = listener.local_addr().unwrap().port();
    let mut ext = Extension::start(&dir, listener).await;

    // A caBundle that did not sign the extension's certificate: the probe fails TLS verification.
    let wrong_ca = new_ca("some-other-ca").unwrap().cert_pem;
    let out = apply(
        &server,
        "metrics-wrong-ca",
        &metrics_manifest(port, &wrong_ca),
    );
    assert_eq!(
        out,
        format!(
            "service/metrics-server created\napiservice.apiregistration.k8s.io/{METRICS} created\n"
        )
    );
    let c = wait_available(
        &server,
        METRICS,
        "False",
        "FailedDiscoveryCheck",
        Duration::from_secs(30),
    )
    .await;
    let url = format!("https://localhost:{port}/apis/metrics.k8s.io/v1beta1");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("failing or missing response from {url}: ")),
        "{c}"
    );
    assert!(ext.requests().is_empty(), "{:?}", ext.requests());
    let r = admin.get(NODES).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.body);

    // The right caBundle: the discovery probe passes.
    let out = apply(&server, "metrics", &metrics_manifest(port, &ca));
    assert_eq!(
        out,
        format!(
            "service/metrics-server unchanged\napiservice.apiregistration.k8s.io/{METRICS} configured\n"
        )
    );
    let c = wait_available(&server, METRICS, "True", "Passed", Duration::from_secs(30)).await;
    assert_eq!(c["message"], "all checks passed", "{c}");
    for (version, bin) in kubectls() {
        let rows = apiservice_rows(&server, &bin, &[METRICS]);
        assert_eq!(
            rows[0][..3],
            [METRICS, "kube-system/metrics-server", "True"],
            "kubectl {version}: {rows:?}"
        );
    }
    // The probe came as the aggregator itself, over the front-proxy client certificate.
    let probes: Vec<Value> = ext
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/apis/metrics.k8s.io/v1beta1")
        .collect();
    assert!(!probes.is_empty());
    for p in &probes {
        assert_eq!(p["user"], json!(["system:kube-aggregator"]), "{p}");
        assert_eq!(p["groups"], json!(["system:masters"]), "{p}");
        assert_eq!(
            p["host"],
            json!([format!("metrics-server.kube-system.svc:{port}")]),
            "{p}"
        );
    }

    // kubectl reaches the extension through the proxy, as its own user.
    let out = ok(
        &k(&server, &newest_kubectl(), &["get", "--raw", NODES]),
        "kubectl get --raw nodes",
    );
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list, node_metrics());
    let seen = ext
        .requests()
        .into_iter()
        .rfind(|r| r["path"] == NODES)
        .unwrap();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["user"], json!(["kubernetes-admin"]), "{seen}");
    let groups: Vec<&str> = seen["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(groups.contains(&"system:masters"), "{seen}");
    assert!(groups.contains(&"system:authenticated"), "{seen}");
    assert_eq!(seen["authorization"], json!([]), "{seen}");

    // A caller cannot choose the identity the extension sees.
    let r = admin
        .request(
            "GET",
            &format!("{NODES}?marker=injected"),
            &[
                ("x-remote-user", "evil"),
                ("x-remote-group", "evil-group"),
                ("x-remote-extra-scopes", "evil-scope"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), node_metrics());
    let seen = ext
        .requests()
        .into_iter()
        .rfind(|r| r["query"] == "marker=injected")
        .unwrap();
    assert_eq!(seen["user"], json!(["kubernetes-admin"]), "{seen}");
    let groups = seen["groups"].as_array().unwrap();
    assert!(!groups.contains(&json!("evil-group")), "{seen}");
    assert!(groups.contains(&json!("system:masters")), "{seen}");
    assert_eq!(seen["extra"], json!({}), "{seen}");

    // An impersonated request reaches the extension as the impersonated user, without the
    // Impersonate-* headers.
    let r = admin
        .request(
            "GET",
            &format!("{NODES}?marker=impersonated"),
            &[
                ("impersonate-user", "bob"),
                ("impersonate-group", "system:masters"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = ext
        .requests()
        .into_iter()
        .rfind(|r| r["query"] == "marker=impersonated")
        .unwrap();
    assert_eq!(seen["user"], json!(["bob"]), "{seen}");
    assert_eq!(
        seen["groups"],
        json!(["system:masters", "system:authenticated"]),
        "{seen}"
    );
    assert_eq!(seen["impersonate"], json!([]), "{seen}");

    // The aggregator authorizes before proxying: an anonymous caller never reaches the extension.
    let before = ext.requests().len();
    let r = server.anonymous().get(NODES).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["reason"], "Forbidden", "{}", r.body);
    assert_eq!(ext.requests().len(), before, "{:?}", ext.requests());

    // Discovery: /apis lists the group, the group/version answers the extension's document,
    // kubectl api-resources lists its resources.
    assert!(
        api_groups(&server)
            .await
            .contains(&"metrics.k8s.io".to_string())
    );
    let r = admin.get("/apis/metrics.k8s.io/v1beta1").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), resource_list());
    // The extension's bytes pass through as it sent them, even to a client that would get
    // kubeboot's own JSON indented.
    let r = admin
        .request(
            "GET",
            "/apis/metrics.k8s.io/v1beta1?pretty=true",
            &[("user-agent", "curl/8.5.0")],
        )
        .await
        .unwrap();
    assert_eq!(r.body, resource_list().to_string());
    for (version, bin) in kubectls() {
        assert_eq!(
            metrics_resources(&server, &bin),
            [
                ("nodes".into(), "false".into(), "NodeMetrics".into()),
                ("pods".into(), "true".into(), "PodMetrics".into()),
            ],
            "kubectl {version}"
        );
    }

    // The extension goes away: the periodic check (every 30s) marks the APIService unavailable
    // and the proxy answers 503.
    ext.kill();
    let r = admin.get(NODES).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    let c = wait_available(
        &server,
        METRICS,
        "False",
        "FailedDiscoveryCheck",
        Duration::from_secs(45),
    )
    .await;
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("failing or missing response from {url}: ")),
        "{c}"
    );
    let r = admin.get(NODES).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body, "service unavailable\n");
    // The aggregator's metrics say so: the gauge, and one transition to unavailable counted
    // with its reason.
    let scraped = Scrape::of(&admin).await;
    let name = [("name", METRICS)];
    assert_eq!(
        scraped.value("aggregator_unavailable_apiservice", &name),
        1.0
    );
    assert_eq!(
        scraped.value(
            "aggregator_unavailable_apiservice_total",
            &[("name", METRICS), ("reason", "FailedDiscoveryCheck")]
        ),
        1.0
    );
    assert_eq!(
        scraped.value("aggregator_unavailable_apiservice_total", &name),
        1.0
    );
    let rows = apiservice_rows(&server, &newest_kubectl(), &[METRICS]);
    assert_eq!(
        rows[0][..3],
        [
            METRICS,
            "kube-system/metrics-server",
            "False (FailedDiscoveryCheck)"
        ],
        "{rows:?}"
    );

    // It comes back on the port its APIService names; a change to the APIService makes the
    // controller look again at once.
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut ext = Extension::start(&dir, listener).await;
    touch(&server, METRICS, "1");
    wait_available(&server, METRICS, "True", "Passed", Duration::from_secs(30)).await;
    let out = ok(
        &k(&server, &newest_kubectl(), &["get", "--raw", NODES]),
        "kubectl get --raw nodes after restart",
    );
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), node_metrics());

    // The APIService is deleted: the group/version is gone.
    ok(
        &k(
            &server,
            &newest_kubectl(),
            &["delete", "apiservice", METRICS],
        ),
        "delete apiservice",
    );
    // Nobody owns the group any more: Go's plain NotFound, as upstream.
    let r = answers(&admin, NODES, 404).await;
    assert_eq!(r.body, "404 page not found\n");
    eventually("metrics.k8s.io gone from /apis", || async {
        (!api_groups(&server)
            .await
            .contains(&"metrics.k8s.io".to_string()))
        .then_some(())
    })
    .await;
    assert_eq!(metrics_resources(&server, &newest_kubectl()), []);
    let before = ext.requests().len();
    assert_eq!(admin.get(NODES).await.unwrap().status, 404);
    assert_eq!(
        ext.requests().len(),
        before,
        "nothing proxied after the delete"
    );
    ext.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_apiservices_name_the_missing_service_port_or_endpoints() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let name = "v1.reasons.example.com";
    let apiservice = |port: u16| {
        format!(
            r#"apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: {name}}}
spec:
  group: reasons.example.com
  version: v1
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {{namespace: default, name: reasons, port: {port}}}
"#
        )
    };
    apply(&server, "apiservice", &apiservice(443));
    let c = wait_available(
        &server,
        name,
        "False",
        "ServiceNotFound",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        c["message"], r#"service/reasons in "default" is not present"#,
        "{c}"
    );
    let rows = apiservice_rows(&server, &newest_kubectl(), &[name]);
    assert_eq!(
        rows[0][..3],
        [name, "default/reasons", "False (ServiceNotFound)"],
        "{rows:?}"
    );
    let r = server
        .admin()
        .get("/apis/reasons.example.com/v1/things")
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body, "service unavailable\n");

    // A ClusterIP Service that does not listen on the APIService's port.
    apply(
        &server,
        "service",
        "apiVersion: v1\nkind: Service\nmetadata: {name: reasons, namespace: default}\nspec:\n  ports: [{name: https, port: 8443}]\n",
    );
    touch(&server, name, "1");
    let c = wait_available(
        &server,
        name,
        "False",
        "ServicePortError",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        c["message"], r#"service/reasons in "default" is not listening on port 443"#,
        "{c}"
    );

    // The port matches but no endpoint is ready.
    apply(&server, "apiservice", &apiservice(8443));
    let c = wait_available(
        &server,
        name,
        "False",
        "MissingEndpoints",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        c["message"],
        r#"endpoints for service/reasons in "default" have no addresses with port name "https""#,
        "{c}"
    );
}

/// Upstream's /apis lists the group of every APIService, available or not (its apisHandler
/// reads the APIService lister), which is why `kubectl api-resources` reports
/// "unable to retrieve the complete list of server APIs: <group>/<version>: the server is
/// currently unable to handle the request" when an extension is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_apiservices_stay_listed_in_legacy_discovery() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let name = "v1.down.example.com";
    apply(
        &server,
        "apiservice",
        &format!(
            "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: {name}}}\nspec:\n  group: down.example.com\n  version: v1\n  groupPriorityMinimum: 100\n  versionPriority: 100\n  service: {{namespace: default, name: down, port: 443}}\n"
        ),
    );
    wait_available(
        &server,
        name,
        "False",
        "ServiceNotFound",
        Duration::from_secs(30),
    )
    .await;
    let apis = server.admin().get("/apis").await.unwrap().json();
    let group = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "down.example.com")
        .unwrap_or_else(|| panic!("down.example.com missing from /apis: {apis}"));
    assert_eq!(
        group["preferredVersion"],
        json!({"groupVersion": "down.example.com/v1", "version": "v1"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_streams_watches_and_joins_upgraded_connections() {
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    install_crypto();
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let dir = server.dir.path().join("extension");
    let ca = prepare_extension(
        &dir,
        &server.data_dir().join("pki/front-proxy-ca.crt"),
        "metrics-server",
        "kube-system",
    );
    let listener = loopback_listener();
    let port = listener.local_addr().unwrap().port();
    let ext = Extension::start(&dir, listener).await;
    apply(&server, "metrics", &metrics_manifest(port, &ca));
    wait_available(&server, METRICS, "True", "Passed", Duration::from_secs(30)).await;
    let admin = server.admin();

    // A watch: its first event comes through while the extension still holds the stream open.
    let mut sender = admin.connect().await.unwrap();
    let req = http::Request::get(format!("{NODES}?watch=true"))
        .header("host", "kubeboot")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut received = Vec::new();
    let read_line = async {
        while !received.contains(&b'\n') {
            let frame = body.frame().await.expect("stream open").unwrap();
            if let Ok(data) = frame.into_data() {
                received.extend_from_slice(&data);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_line)
        .await
        .expect("the first watch event arrives before the stream ends");
    let first: Value = serde_json::from_slice(&received).unwrap();
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["usage"]["cpu"].as_str()
        ),
        (Some("ADDED"), Some("100m"))
    );
    std::fs::write(dir.join("release-watch"), "").unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(20), body.collect())
        .await
        .expect("the stream ends")
        .unwrap()
        .to_bytes();
    let second: Value = serde_json::from_slice(&rest).unwrap();
    assert_eq!(
        (
            second["type"].as_str(),
            second["object"]["usage"]["cpu"].as_str()
        ),
        (Some("MODIFIED"), Some("200m"))
    );

    // An upgrade: kubeboot answers 101 and joins the client to the extension's connection.
    let (head, mut tls) = admin
        .switch(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/p/exec",
            "test-echo",
        )
        .await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: test-echo"), "{head}");
    tls.write_all(b"ping through the aggregator\n")
        .await
        .unwrap();
    let mut echo = vec![0u8; "ping through the aggregator\n".len()];
    tokio::time::timeout(Duration::from_secs(20), tls.read_exact(&mut echo))
        .await
        .expect("the echo")
        .unwrap();
    assert_eq!(echo, b"ping through the aggregator\n");
    // The exec request reached the extension with the caller's identity.
    let exec: Vec<Value> = ext
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/exec")))
        .collect();
    assert_eq!(exec.len(), 1, "{exec:?}");
    assert_eq!(exec[0]["user"], json!(["kubernetes-admin"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explains_apiservices_from_the_openapi_documents() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let out = ok(
        &k(
            &server,
            &newest_kubectl(),
            &["explain", "apiservice.spec.groupPriorityMinimum"],
        ),
        "explain",
    );
    assert!(out.contains("KIND:       APIService"), "{out}");
    assert!(
        out.contains("FIELD: groupPriorityMinimum <integer>"),
        "{out}"
    );
}
