//! API benchmark over HTTPS against a started `kubeboot up` on the embedded store: creates/s with
//! 1 and 16 keep-alive clients (1-KiB ConfigMaps) with p50/p99 latency (also as an RBAC user,
//! through one validating webhook or one ValidatingAdmissionPolicy, with every request
//! audited at Metadata, and with max-in-flight instead of priority and fairness), LIST of 10k
//! ConfigMaps
//! (full, paged by 500, and from the watch cache), and watch fan-out latency to 100 watchers.
//! Run with `cargo bench --bench api`; prints one markdown table. Every loop is bounded by a count
//! and a time cap.

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::bench::{
    cpu_time, create_namespaces, median, ms, percentile, request, request_as, start,
};
use support::https::Https;

const SEQUENTIAL_MAX: usize = 2_000;
const SEQUENTIAL_CAP: Duration = Duration::from_secs(15);
const CLIENTS: usize = 16;
const OBJECTS: usize = 10_000;
const CONCURRENT_CAP: Duration = Duration::from_secs(60);
const LIST_RUNS: usize = 5;
const WATCHERS: usize = 100;
const WATCH_EVENTS: usize = 100;
/// Bindings naming other users, present while the RBAC user creates: an index lookup must not
/// pay for them.
const UNRELATED_BINDINGS: usize = 1_000;
/// Simulated kubelets: each renews its Lease every 10 s and patches its Node's status every
/// minute, as kubelets do, for HEARTBEAT_WINDOW.
const NODES: usize = 100;
const LEASE_PERIOD: Duration = Duration::from_secs(10);
const STATUS_PERIOD: Duration = Duration::from_secs(60);
const HEARTBEAT_WINDOW: Duration = Duration::from_secs(60);

/// One simulated kubelet: registers Node `name` and its Lease, then renews the Lease every
/// LEASE_PERIOD and patches the Node's status every STATUS_PERIOD until `end`, starting after
/// `offset` so the nodes spread over the period. Returns the Lease update latencies.
async fn kubelet(
    client: Arc<Https>,
    name: String,
    offset: Duration,
    end: Instant,
) -> Vec<Duration> {
    let mut s = client.connect().await.expect("connect");
    let (code, _) = request(
        &mut s,
        "POST",
        "/api/v1/nodes",
        Some(&json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})),
    )
    .await;
    assert_eq!(code, 201);
    let now = || {
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("time")
    };
    let (code, body) = request(
        &mut s,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        Some(
            &json!({"metadata": {"name": name}, "spec": {"holderIdentity": name,
            "leaseDurationSeconds": 40, "renewTime": now()}}),
        ),
    )
    .await;
    assert_eq!(code, 201);
    let mut lease: Value = serde_json::from_slice(&body).expect("lease");
    tokio::time::sleep(offset).await;
    let mut lat = Vec::new();
    let mut next_status = Instant::now();
    let mut next_lease = Instant::now();
    while Instant::now() < end {
        if Instant::now() >= next_status {
            let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
                "reason": "KubeletReady", "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}});
            let headers = [("content-type", "application/strategic-merge-patch+json")];
            let (code, _, _) = Https::exchange(
                &mut s,
                "PATCH",
                &format!("/api/v1/nodes/{name}/status"),
                &headers,
                Bytes::from(status.to_string()),
            )
            .await
            .expect("status");
            assert_eq!(code, 200);
            next_status += STATUS_PERIOD;
        }
        lease["spec"]["renewTime"] = json!(now());
        let t = Instant::now();
        let (code, body) = request(
            &mut s,
            "PUT",
            &format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"),
            Some(&lease),
        )
        .await;
        lat.push(t.elapsed());
        assert_eq!(code, 200);
        lease = serde_json::from_slice(&body).expect("lease");
        next_lease += LEASE_PERIOD;
        tokio::time::sleep_until(next_lease.min(next_status).into()).await;
    }
    lat
}

/// Creates ConfigMaps named `<prefix>-<n>` in `namespace` one after another on one connection,
/// up to SEQUENTIAL_MAX or SEQUENTIAL_CAP; the rate and the sorted latencies.
async fn sequential_creates(
    s: &mut SendRequest<Full<Bytes>>,
    namespace: &str,
    prefix: &str,
) -> (f64, Vec<Duration>) {
    let path = format!("/api/v1/namespaces/{namespace}/configmaps");
    let mut lat = Vec::new();
    let t0 = Instant::now();
    while lat.len() < SEQUENTIAL_MAX && t0.elapsed() < SEQUENTIAL_CAP {
        let t = Instant::now();
        let (code, _) = request(
            s,
            "POST",
            &path,
            Some(&configmap(&format!("{prefix}-{}", lat.len()))),
        )
        .await;
        assert_eq!(code, 201);
        lat.push(t.elapsed());
    }
    let rate = lat.len() as f64 / t0.elapsed().as_secs_f64();
    lat.sort();
    (rate, lat)
}

/// A table cell: rate, p50, p99 and the share of `baseline`'s rate.
fn relative(rate: f64, lat: &[Duration], baseline: f64) -> String {
    format!(
        "{rate:.0}/s (p50 {}, p99 {}; {:.0}% of the admin's)",
        ms(percentile(lat, 0.5)),
        ms(percentile(lat, 0.99)),
        100.0 * rate / baseline
    )
}

fn configmap(name: &str) -> Value {
    json!({"metadata": {"name": name}, "data": {"v": "x".repeat(1000)}})
}

#[tokio::main]
async fn main() {
    support::kubeboot::install_crypto();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, client, addr) = start(dir.path(), &[]).await;
    let client = Arc::new(client);
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut s = client.connect().await.expect("connect");
    create_namespaces(&mut s, &["bench", "watch", "rbac"]).await;

    // Sequential creates on one keep-alive connection.
    let (rate, lat) = sequential_creates(&mut s, "default", "seq").await;
    rows.push((
        "creates/s, 1 client, sequential".into(),
        format!(
            "{rate:.0}/s (p50 {}, p99 {})",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        ),
    ));

    // The same as a user RBAC allows only that, among many bindings of other users.
    let rbac = "/apis/rbac.authorization.k8s.io/v1";
    for i in 0..UNRELATED_BINDINGS {
        let subjects = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": format!("noise-{i}")}]);
        let (path, binding) = if i % 2 == 0 {
            (
                format!("{rbac}/clusterrolebindings"),
                json!({"metadata": {"name": format!("noise-{i}")}, "subjects": subjects,
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}}),
            )
        } else {
            (
                format!("{rbac}/namespaces/rbac/rolebindings"),
                json!({"metadata": {"name": format!("noise-{i}")}, "subjects": subjects,
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}}),
            )
        };
        assert_eq!(request(&mut s, "POST", &path, Some(&binding)).await.0, 201);
    }
    let writer = json!({"metadata": {"name": "configmap-writer"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]});
    assert_eq!(
        request(
            &mut s,
            "POST",
            &format!("{rbac}/namespaces/rbac/roles"),
            Some(&writer)
        )
        .await
        .0,
        201
    );
    let binding = json!({"metadata": {"name": "bench-user"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-writer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bench-user"}]});
    assert_eq!(
        request(
            &mut s,
            "POST",
            &format!("{rbac}/namespaces/rbac/rolebindings"),
            Some(&binding)
        )
        .await
        .0,
        201
    );
    let pki = dir.path().join(".kubeboot/pki");
    let ca = kubeboot::pki::certs::Pair {
        cert_pem: std::fs::read_to_string(pki.join("ca.crt")).expect("ca.crt"),
        key_pem: std::fs::read_to_string(pki.join("ca.key")).expect("ca.key"),
    };
    let leaf = kubeboot::pki::certs::new_leaf(
        &kubeboot::pki::certs::LeafSpec {
            common_name: "bench-user".into(),
            organizations: vec![],
            dns_names: vec![],
            ips: vec![],
            usage: rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        },
        &ca,
    )
    .expect("client certificate");
    let user = Https::new(
        addr,
        ca.cert_pem.as_bytes(),
        Some((leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())),
    );
    let mut us = user.connect().await.expect("connect");
    // The binding reaches the authorizer's index by watch.
    let t0 = Instant::now();
    while request(
        &mut us,
        "POST",
        "/api/v1/namespaces/rbac/configmaps",
        Some(&configmap("rbac-ready")),
    )
    .await
    .0 != 201
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the RBAC binding never took effect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (rbac_rate, lat) = sequential_creates(&mut us, "rbac", "rbac").await;
    rows.push((
        format!("creates/s, 1 client, sequential, RBAC user among {UNRELATED_BINDINGS} bindings"),
        relative(rbac_rate, &lat, rate),
    ));

    admission_rows(&mut s, rate, &mut rows).await;
    audit_row(rate, &mut rows).await;
    max_in_flight_row(rate, &mut rows).await;

    // 16 concurrent clients fill the 10k ConfigMaps the list rows read.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = client.connect().await.expect("connect");
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= OBJECTS || t0.elapsed() > CONCURRENT_CAP {
                    return lat;
                }
                let t = Instant::now();
                let (code, _) = request(
                    &mut s,
                    "POST",
                    "/api/v1/namespaces/bench/configmaps",
                    Some(&configmap(&format!("cm-{i:05}"))),
                )
                .await;
                assert_eq!(code, 201);
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client task"));
    }
    let created = lat.len();
    let rate = created as f64 / t0.elapsed().as_secs_f64();
    lat.sort();
    rows.push((
        format!("creates/s, {CLIENTS} concurrent clients"),
        format!(
            "{rate:.0}/s (p50 {}, p99 {})",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        ),
    ));

    // Lists of everything the concurrent phase wrote.
    let mut full = Vec::new();
    let mut cached = Vec::new();
    let mut paged = Vec::new();
    let mut protobuf = Vec::new();
    let mut first_3k = Vec::new();
    let mut bytes_3k = 0;
    let mut bytes = 0;
    let mut protobuf_bytes = 0;
    for _ in 0..LIST_RUNS {
        let t = Instant::now();
        let (code, body) = request_as(
            &mut s,
            "GET",
            "/api/v1/namespaces/bench/configmaps",
            None,
            "application/vnd.kubernetes.protobuf",
        )
        .await;
        assert_eq!(code, 200);
        protobuf.push(t.elapsed());
        protobuf_bytes = body.len();
        let t = Instant::now();
        let (code, body) =
            request(&mut s, "GET", "/api/v1/namespaces/bench/configmaps", None).await;
        assert_eq!(code, 200);
        full.push(t.elapsed());
        bytes = body.len();
        let t = Instant::now();
        let (code, _) = request(
            &mut s,
            "GET",
            "/api/v1/namespaces/bench/configmaps?resourceVersion=0",
            None,
        )
        .await;
        assert_eq!(code, 200);
        cached.push(t.elapsed());
        // The size of BENCHMARKS.md's upstream figure: a page of 3,000.
        let t = Instant::now();
        let (code, body) = request(
            &mut s,
            "GET",
            "/api/v1/namespaces/bench/configmaps?limit=3000",
            None,
        )
        .await;
        assert_eq!(code, 200);
        first_3k.push(t.elapsed());
        bytes_3k = body.len();
        let t = Instant::now();
        let mut token = String::new();
        let mut items = 0;
        loop {
            let path = if token.is_empty() {
                "/api/v1/namespaces/bench/configmaps?limit=500".to_string()
            } else {
                format!("/api/v1/namespaces/bench/configmaps?limit=500&continue={token}")
            };
            let (_, body) = request(&mut s, "GET", &path, None).await;
            let page: Value = serde_json::from_slice(&body).expect("list JSON");
            items += page["items"].as_array().map_or(0, Vec::len);
            match page["metadata"]["continue"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => break,
            }
        }
        assert_eq!(items, created);
        paged.push(t.elapsed());
    }
    let mb = bytes as f64 / 1e6;
    rows.push((
        format!("LIST {created} ConfigMaps ({mb:.1} MB JSON), consistent"),
        ms(median(full)),
    ));
    rows.push((
        format!("LIST {created} ConfigMaps, resourceVersion=0 (watch cache)"),
        ms(median(cached)),
    ));
    rows.push((
        format!(
            "LIST 3000 ConfigMaps ({:.1} MB JSON), one page of limit=3000",
            bytes_3k as f64 / 1e6
        ),
        ms(median(first_3k)),
    ));
    rows.push((
        format!("LIST {created} ConfigMaps, paged by 500"),
        ms(median(paged)),
    ));
    rows.push((
        format!(
            "LIST {created} ConfigMaps in protobuf ({:.1} MB), consistent",
            protobuf_bytes as f64 / 1e6
        ),
        ms(median(protobuf)),
    ));

    // Watch fan-out: each watcher on its own connection; latency from just before a create to
    // each watcher reading the event.
    let (_, body) = request(&mut s, "GET", "/api/v1/namespaces/watch/configmaps", None).await;
    let rv = serde_json::from_slice::<Value>(&body).expect("list")["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let sent: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; WATCH_EVENTS]));
    // Every watcher and this task meet here once each watch is open.
    let watching = Arc::new(tokio::sync::Barrier::new(WATCHERS + 1));
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let (client, sent, rv) = (client.clone(), sent.clone(), rv.clone());
        let watching = watching.clone();
        watchers.push(tokio::spawn(async move {
            let mut s = client.connect().await.expect("connect");
            let req = http::Request::get(format!("/api/v1/namespaces/watch/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=120"))
                .header("host", "127.0.0.1")
                .body(Full::new(Bytes::new()))
                .expect("request");
            let resp = s.send_request(req).await.expect("watch");
            // The response head came: the server has registered the watch.
            watching.wait().await;
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            while lat.len() < WATCH_EVENTS {
                let Some(Ok(frame)) = body.frame().await else { break };
                let Ok(data) = frame.into_data() else { continue };
                let now = Instant::now();
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let ev: Value = serde_json::from_slice(&line).expect("event");
                    let name = ev["object"]["metadata"]["name"].as_str().unwrap_or("");
                    if let Some(i) = name.strip_prefix("w-").and_then(|n| n.parse::<usize>().ok())
                        && let Some(t) = sent.lock().expect("lock")[i]
                    {
                        lat.push(now - t);
                    }
                }
            }
            lat
        }));
    }
    // Every watch is open before the first event; the bound only guards against a hang.
    tokio::time::timeout(Duration::from_secs(60), watching.wait())
        .await
        .expect("every watcher connects");
    for i in 0..WATCH_EVENTS {
        sent.lock().expect("lock")[i] = Some(Instant::now());
        let (code, _) = request(
            &mut s,
            "POST",
            "/api/v1/namespaces/watch/configmaps",
            Some(&configmap(&format!("w-{i}"))),
        )
        .await;
        assert_eq!(code, 201);
    }
    let mut lat = Vec::new();
    for w in watchers {
        lat.extend(w.await.expect("watcher"));
    }
    lat.sort();
    rows.push((
        format!(
            "watch event latency, {WATCHERS} watchers ({} events seen)",
            lat.len()
        ),
        format!(
            "p50 {}, p99 {}",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        ),
    ));

    // deletecollection of everything the concurrent phase wrote.
    let t = Instant::now();
    let (code, _) = request(
        &mut s,
        "DELETE",
        "/api/v1/namespaces/bench/configmaps",
        None,
    )
    .await;
    assert_eq!(code, 200);
    rows.push((
        format!("deletecollection of {created} ConfigMaps"),
        ms(t.elapsed()),
    ));

    // Node heartbeats: NODES simulated kubelets for HEARTBEAT_WINDOW; kubeboot's CPU time over
    // the window against the window's length.
    let start = Instant::now() + Duration::from_secs(2);
    let end = start + HEARTBEAT_WINDOW;
    let nodes: Vec<_> = (0..NODES)
        .map(|i| {
            let offset = LEASE_PERIOD * i as u32 / NODES as u32 + Duration::from_secs(2);
            tokio::spawn(kubelet(client.clone(), format!("node-{i}"), offset, end))
        })
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let cpu_before = cpu_time(child.id());
    let mut lat = Vec::new();
    for n in nodes {
        lat.extend(n.await.expect("kubelet"));
    }
    let busy = cpu_time(child.id()) - cpu_before;
    lat.sort();
    rows.push((
        format!(
            "{NODES} nodes: Lease renewed every 10 s, status patched every 60 s, for {} s ({} Lease updates)",
            HEARTBEAT_WINDOW.as_secs(),
            lat.len()
        ),
        format!(
            "{:.1}% of one core; Lease update p50 {}, p99 {}",
            busy.as_secs_f64() * 100.0 / HEARTBEAT_WINDOW.as_secs_f64(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        ),
    ));

    let _ = child.kill();
    let _ = child.wait();
    println!(
        "kubeboot API over HTTPS (HTTP/1.1 keep-alive, client certificates, JSON), embedded store\n"
    );
    println!("| measure | kubeboot |");
    println!("|---|---|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
    println!(
        "\nupstream kube-apiserver 1.32 + etcd (../shared/BENCHMARKS.md): 314/s sequential, 1,229/s with 16 clients, LIST 3,000 in 61 ms"
    );
}

/// Creates on a second server auditing every request at Metadata into a log file, beside the
/// first server's (metrics are always on in both).
async fn audit_row(baseline: f64, rows: &mut Vec<(String, String)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("audit-policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
    )
    .expect("policy");
    let (mut child, client, _) = start(
        dir.path(),
        &[
            &format!("--audit-policy-file={}", policy.display()),
            &format!(
                "--audit-log-path={}",
                dir.path().join("audit.log").display()
            ),
        ],
    )
    .await;
    let mut s = client.connect().await.expect("connect");
    let (rate, lat) = sequential_creates(&mut s, "default", "audited").await;
    rows.push((
        "creates/s, 1 client, sequential, every request audited at Metadata to a file".into(),
        relative(rate, &lat, baseline),
    ));
    let _ = child.kill();
    let _ = child.wait();
}

/// Creates on a second server limited by max-in-flight instead of API Priority and Fairness,
/// beside the first server's (whose administrator is classified, and exempt, on every request).
async fn max_in_flight_row(baseline: f64, rows: &mut Vec<(String, String)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, client, _) = start(dir.path(), &["--enable-priority-and-fairness=false"]).await;
    let mut s = client.connect().await.expect("connect");
    let (rate, lat) = sequential_creates(&mut s, "default", "unflowed").await;
    rows.push((
        "creates/s, 1 client, sequential, max-in-flight instead of priority and fairness".into(),
        relative(rate, &lat, baseline),
    ));
    let _ = child.kill();
    let _ = child.wait();
}

/// Creates with one validating webhook matching every ConfigMap (an HTTPS server in this
/// process admitting all), then with one ValidatingAdmissionPolicy instead, beside none.
async fn admission_rows(
    s: &mut SendRequest<Full<Bytes>>,
    baseline: f64,
    rows: &mut Vec<(String, String)>,
) {
    use base64::Engine;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let webhook = support::backend::Backend::start(
        None,
        Arc::new(move |req, _| {
            let counter = counter.clone();
            Box::pin(async move {
                let body = req.into_body().collect().await.expect("body").to_bytes();
                let review: Value = serde_json::from_slice(&body).expect("review");
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let reply = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "response": {"uid": review["request"]["uid"], "allowed": true}});
                hyper::Response::new(support::backend::full(reply.to_string()))
            })
        }),
    );
    let rules = json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
        "resources": ["configmaps"]}]);
    let config = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
    let (code, _) = request(
        s,
        "POST",
        config,
        Some(
            &json!({"metadata": {"name": "bench"}, "webhooks": [{"name": "bench.example.com",
            "rules": rules, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": format!("https://{}/validate", webhook.addr),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem)}}]}),
        ),
    )
    .await;
    assert_eq!(code, 201);
    // The configuration reaches admission through an informer: wait for the first call.
    let t0 = Instant::now();
    let mut probe = 0;
    while calls.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the webhook was never called"
        );
        let (code, _) = request(
            s,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&configmap(&format!("hook-probe-{probe}"))),
        )
        .await;
        assert_eq!(code, 201);
        probe += 1;
    }
    let (rate, lat) = sequential_creates(s, "default", "hooked").await;
    rows.push((
        "creates/s, 1 client, sequential, one matching validating webhook".into(),
        relative(rate, &lat, baseline),
    ));
    let (code, _) = request(s, "DELETE", &format!("{config}/bench"), None).await;
    assert_eq!(code, 200);
    drop(webhook);

    let policies = "/apis/admissionregistration.k8s.io/v1";
    let (code, _) = request(
        s,
        "POST",
        &format!("{policies}/validatingadmissionpolicies"),
        Some(&json!({"metadata": {"name": "bench"}, "spec": {
            "matchConstraints": {"resourceRules": rules},
            "validations": [{"expression": "!object.metadata.name.startsWith('refused-')"}]}})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = request(
        s,
        "POST",
        &format!("{policies}/validatingadmissionpolicybindings"),
        Some(
            &json!({"metadata": {"name": "bench"}, "spec": {"policyName": "bench",
            "validationActions": ["Deny"]}}),
        ),
    )
    .await;
    assert_eq!(code, 201);
    // In effect once a name it refuses is refused.
    let t0 = Instant::now();
    let mut probe = 0;
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the policy never applied"
        );
        let (code, _) = request(
            s,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&configmap(&format!("refused-{probe}"))),
        )
        .await;
        if code == 422 {
            break;
        }
        probe += 1;
    }
    let (rate, lat) = sequential_creates(s, "default", "policed").await;
    rows.push((
        "creates/s, 1 client, sequential, one ValidatingAdmissionPolicy".into(),
        relative(rate, &lat, baseline),
    ));
    for kind in [
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicies",
    ] {
        let (code, _) = request(s, "DELETE", &format!("{policies}/{kind}/bench"), None).await;
        assert_eq!(code, 200);
    }
}
