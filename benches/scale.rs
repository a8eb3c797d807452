//! Scale benchmark: `kubeboot up` with 100,000 ConfigMaps of 1 KiB and 10,000 Pods of ~4 KiB,
//! on the embedded store and (built with `--features etcd`) on a one-member etcd, side by side
//! in one markdown table: memory (RSS per byte of stored object data), disk, start-up with
//! everything on disk, LISTs (consistent, resourceVersion=0, paged, selective, under writes),
//! watch latency with 1,000 watchers, an informer storm of 100 clients and a mixed load.
//!
//! Run with `cargo bench --bench scale [--features etcd]`. `SCALE_OBJECTS` (default 100000)
//! and `MIXED_SECONDS` (default 30) shrink a run; `ETCD_BIN` picks the etcd. Every loop is
//! bounded by a count or a time cap.

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::bench::{
    allocated_bytes, create_namespaces, median, ms, percentile, request, rss_bytes, start,
};
use support::https::Https;

const CLIENTS: usize = 16;
const PODS: usize = 10_000;
const WATCHERS: usize = 1_000;
const WATCH_EVENTS: usize = 100;
const STORM_CLIENTS: usize = 100;
const MIXED_WATCHERS: usize = 100;
const MIXED_LISTERS: usize = 4;
const LIST_RUNS: usize = 3;
/// Bound on any phase: a hang guard, never a measurement.
const PHASE_CAP: Duration = Duration::from_secs(600);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// When each write named so was acknowledged.
type Acks = Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>;

/// Which store a column runs on.
enum Backend {
    Embedded,
    #[cfg(feature = "etcd")]
    Etcd(support::etcd_cluster::EtcdCluster),
}

impl Backend {
    fn flags(&self) -> Vec<String> {
        match self {
            Backend::Embedded => vec![],
            #[cfg(feature = "etcd")]
            Backend::Etcd(cluster) => vec![
                "--storage-backend=etcd".into(),
                format!("--etcd-servers={}", cluster.servers_flag()),
            ],
        }
    }

    /// Bytes the store's files take on disk (for the embedded store, its data dir: the
    /// database, its write-ahead log and a few KiB of PKI).
    fn disk(&self, dir: &std::path::Path) -> u64 {
        match self {
            Backend::Embedded => allocated_bytes(&dir.join(".kubeboot")),
            #[cfg(feature = "etcd")]
            Backend::Etcd(cluster) => allocated_bytes(&cluster.data_dir(0)),
        }
    }
}

fn configmap(name: &str, selected: bool) -> Value {
    let labels = if selected {
        json!({"one-percent": "yes"})
    } else {
        json!({})
    };
    json!({"metadata": {"name": name, "labels": labels}, "data": {"v": "x".repeat(1000)}})
}

/// A Pod of upstream's typical size (~4 KiB of JSON once defaulted): two containers with
/// environment, resources, probes and mounts, labels and annotations.
fn pod(name: &str) -> Value {
    let container = |n: &str| {
        json!({"name": n, "image": format!("registry.example.com/team/{n}:v1.2.3"),
            "args": ["--config=/etc/app/config.yaml", "--log-level=info", "--port=8080"],
            "env": (0..12).map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}-{n}")})).collect::<Vec<_>>(),
            "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "data", "mountPath": "/var/lib/app"}]})
    };
    json!({"metadata": {"name": name,
            "labels": {"app": "web", "tier": "frontend", "release": "stable", "team": "payments"},
            "annotations": {"example.com/owner": "payments-team", "example.com/revision": "42"}},
        "spec": {"containers": [container("app"), container("sidecar")],
            "volumes": [{"name": "config", "configMap": {"name": "app-config"}}, {"name": "data", "emptyDir": {}}],
            "automountServiceAccountToken": false}})
}

/// Creates `count` objects with `CLIENTS` connections; `make(i)` gives path and body. Returns
/// the time taken and the bytes of the created objects as the server returned them.
async fn create_many(
    client: &Arc<Https>,
    count: usize,
    make: Arc<dyn Fn(usize) -> (String, Value) + Send + Sync>,
) -> (Duration, u64) {
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, next, bytes, make) =
            (client.clone(), next.clone(), bytes.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = client.connect().await.expect("connect");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || t0.elapsed() > PHASE_CAP {
                    break;
                }
                let (path, body) = make(i);
                let (code, reply) = request(&mut s, "POST", &path, Some(&body)).await;
                assert_eq!(code, 201, "{}", String::from_utf8_lossy(&reply));
                bytes.fetch_add(reply.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("creator");
    }
    (t0.elapsed(), bytes.load(Ordering::Relaxed))
}

/// `"field":"value"` of a list's own metadata, read without parsing the items: kubeboot
/// writes the list's keys in order, so its metadata follows the items, at the end.
fn list_field(body: &[u8], field: &str) -> Option<String> {
    let tail = &body[body.len().saturating_sub(4096)..];
    let tail = String::from_utf8_lossy(tail);
    let meta = &tail[tail.rfind("List\",\"metadata\":{")?..];
    let at = meta.find(&format!("\"{field}\":\""))? + field.len() + 4;
    Some(meta[at..].split('"').next()?.to_owned())
}

/// LIST `path` LIST_RUNS times; the median time until the body's last byte arrived, and its
/// size. Each body is counted and dropped as it arrives, as `curl -o /dev/null` does: gathering
/// 138 MB in the client, which shares the server's two cores, took longer than serving it.
async fn time_list(client: &Https, path: &str) -> (Duration, usize) {
    let mut s = client.connect().await.expect("connect");
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..LIST_RUNS {
        let t = Instant::now();
        let req = http::Request::get(path)
            .header("host", "127.0.0.1")
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()))
            .expect("request");
        s.ready().await.expect("the connection takes a request");
        let resp = s.send_request(req).await.expect("list");
        let code = resp.status();
        let mut body = resp.into_body();
        let (mut head, mut len) = (Vec::new(), 0);
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.expect("a frame").into_data() else {
                continue;
            };
            if head.len() < 500 {
                head.extend_from_slice(&data[..data.len().min(500)]);
            }
            len += data.len();
        }
        times.push(t.elapsed());
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&head));
        size = len;
    }
    (median(times), size)
}

/// A watch-list of `path` (sendInitialEvents): the time until its initial-events-end
/// bookmark, and how many events came before it.
async fn time_watch_list(client: &Https, path: &str) -> (Duration, usize) {
    let mut sender = client.connect().await.expect("connect");
    let t = Instant::now();
    let req = http::Request::get(format!(
        "{path}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
    ))
    .header("host", "127.0.0.1")
    .body(Full::new(Bytes::new()))
    .expect("request");
    let resp = sender.send_request(req).await.expect("watch");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let (mut line, mut events) = (Vec::new(), 0);
    loop {
        let frame = tokio::time::timeout(PHASE_CAP, body.frame())
            .await
            .expect("the initial events end")
            .expect("the watch goes on")
            .expect("a frame");
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for part in data.split_inclusive(|b| *b == b'\n') {
            line.extend_from_slice(part);
            if !line.ends_with(b"\n") {
                continue;
            }
            // Keys are sorted, so an event's type comes last.
            if line.ends_with(b"\"type\":\"BOOKMARK\"}\n")
                && String::from_utf8_lossy(&line).contains("k8s.io/initial-events-end")
            {
                return (t.elapsed(), events);
            }
            events += 1;
            line.clear();
        }
    }
}

/// The server's highest RSS, sampled every 20 ms from `start` until `stop`.
struct PeakRss {
    peak: Arc<AtomicU64>,
    sampling: Arc<AtomicBool>,
    sampler: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid)));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (peak, sampling) = (peak.clone(), sampling.clone());
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        Self {
            peak,
            sampling,
            sampler,
        }
    }

    async fn stop(self) -> u64 {
        self.sampling.store(false, Ordering::Relaxed);
        self.sampler.await.expect("sampler");
        self.peak.load(Ordering::Relaxed)
    }
}

/// Walks `path` in pages of 500, which holds at least `items`; the time taken.
async fn time_paged(client: &Https, path: &str, items: usize) -> Duration {
    let mut s = client.connect().await.expect("connect");
    let t = Instant::now();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let page = match &token {
            None => format!("{path}?limit=500"),
            Some(t) => format!("{path}?limit=500&continue={t}"),
        };
        let (code, body) = request(&mut s, "GET", &page, None).await;
        assert_eq!(code, 200);
        match list_field(&body, "continue") {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
        assert!(t.elapsed() < PHASE_CAP);
    }
    let elapsed = t.elapsed();
    assert!(
        pages >= items / 500,
        "only {pages} pages of 500 for {items} items"
    );
    elapsed
}

/// Writers creating ConfigMaps in `namespace` until `stop`; their latencies.
fn spawn_writers(
    client: &Arc<Https>,
    namespace: &str,
    writers: usize,
    stop: &Arc<AtomicBool>,
    sent: Option<Acks>,
) -> Vec<tokio::task::JoinHandle<Vec<Duration>>> {
    (0..writers)
        .map(|w| {
            let (client, stop, sent) = (client.clone(), stop.clone(), sent.clone());
            let path = format!("/api/v1/namespaces/{namespace}/configmaps");
            tokio::spawn(async move {
                let mut s = client.connect().await.expect("connect");
                let mut lat = Vec::new();
                let t0 = Instant::now();
                while !stop.load(Ordering::Relaxed) && t0.elapsed() < PHASE_CAP {
                    let name = format!("w{w}-{}", lat.len());
                    let t = Instant::now();
                    let (code, _) =
                        request(&mut s, "POST", &path, Some(&configmap(&name, false))).await;
                    assert_eq!(code, 201);
                    lat.push(t.elapsed());
                    if let Some(sent) = &sent {
                        sent.lock().expect("lock").insert(name, Instant::now());
                    }
                }
                lat
            })
        })
        .collect()
}

/// One watcher on its own connection: opens the watch (then meets `open`), and records for each
/// event named in `acked` how long after the write's acknowledgement it arrived (0 when it
/// came first), until `stop` or `want` events.
async fn watcher(
    client: Arc<Https>,
    path: String,
    open: Arc<tokio::sync::Barrier>,
    acked: Acks,
    want: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, usize) {
    let mut s = client.connect().await.expect("connect");
    let req = http::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = s.send_request(req).await.expect("watch");
    assert_eq!(resp.status(), 200);
    open.wait().await;
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut pending: Vec<(String, Instant)> = Vec::new();
    let mut events = 0;
    let t0 = Instant::now();
    while events < want && !stop.load(Ordering::Relaxed) && t0.elapsed() < PHASE_CAP {
        let frame = tokio::time::timeout(Duration::from_millis(200), body.frame()).await;
        let Ok(frame) = frame else { continue };
        let Some(Ok(frame)) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(at) = line.find("\"name\":\"") {
                let name = line[at + 8..].split('"').next().unwrap_or("").to_owned();
                pending.push((name, now));
                events += 1;
            }
        }
    }
    // The writer records each acknowledgement right after it; look them up at the end.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let acked = acked.lock().expect("lock");
    let lat = pending
        .iter()
        .filter_map(|(name, at)| acked.get(name).map(|a| at.saturating_duration_since(*a)))
        .collect();
    (lat, events)
}

/// `count` [`watcher`]s of the ConfigMaps in `namespace` from its current revision, returned
/// once every watch is open.
async fn open_watchers(
    client: &Arc<Https>,
    namespace: &str,
    count: usize,
    acked: &Acks,
    want: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>> {
    let path = format!("/api/v1/namespaces/{namespace}/configmaps");
    let mut s = client.connect().await.expect("connect");
    let (_, body) = request(&mut s, "GET", &path, None).await;
    let rv = list_field(&body, "resourceVersion").expect("rv");
    let open = Arc::new(tokio::sync::Barrier::new(count + 1));
    let watchers = (0..count)
        .map(|_| {
            tokio::spawn(watcher(
                client.clone(),
                format!("{path}?watch=true&resourceVersion={rv}"),
                open.clone(),
                acked.clone(),
                want,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::timeout(PHASE_CAP, open.wait())
        .await
        .expect("every watcher connects");
    watchers
}

/// [`WATCHERS`] watchers of `namespace` get [`WATCH_EVENTS`] writes, `pace` apart (back to
/// back without): each event's time from the write's acknowledgement to its arrival, how many
/// events arrived, and the server's RSS with the watchers open.
async fn watch_latency(
    client: &Arc<Https>,
    s: &mut SendRequest<Full<Bytes>>,
    namespace: &str,
    pace: Option<Duration>,
    pid: u32,
) -> (Vec<Duration>, usize, u64) {
    let acked = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let watchers = open_watchers(client, namespace, WATCHERS, &acked, WATCH_EVENTS, &stop).await;
    let rss_watched = rss_bytes(pid);
    let path = format!("/api/v1/namespaces/{namespace}/configmaps");
    for i in 0..WATCH_EVENTS {
        let name = format!("w-{i}");
        let (code, _) = request(s, "POST", &path, Some(&configmap(&name, false))).await;
        assert_eq!(code, 201);
        acked.lock().expect("lock").insert(name, Instant::now());
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
    }
    let mut lat = Vec::new();
    let mut seen = 0;
    for w in watchers {
        let (l, n) = w.await.expect("watcher");
        lat.extend(l);
        seen += n;
    }
    (lat, seen, rss_watched)
}

fn latency_cell(lat: &mut [Duration]) -> String {
    lat.sort();
    format!(
        "p50 {}, p99 {} ({} samples)",
        ms(percentile(lat, 0.5)),
        ms(percentile(lat, 0.99)),
        lat.len()
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Every measure on one backend: (row, cell) in table order.
async fn measure(backend: &Backend) -> Vec<(String, String)> {
    let objects = env_usize("SCALE_OBJECTS", 100_000);
    let storm_objects = (objects / 10).max(1);
    let mixed = Duration::from_secs(env_usize("MIXED_SECONDS", 30) as u64);
    let mut rows = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = backend.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (mut child, client, _) = start(dir.path(), &flags).await;
    let client = Arc::new(client);
    let pid = child.id();
    // A run takes minutes: say which phase it is in, and the server to attach a profiler to.
    let phase = |name: &str| eprintln!("scale: server pid {pid}: {name}");
    phase("idle");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_bytes(pid);
    rows.push(("RSS idle".into(), mib(idle)));

    let mut s = client.connect().await.expect("connect");
    create_namespaces(
        &mut s,
        &["storm", "scale", "pods", "churn", "watch", "paced", "mixed"],
    )
    .await;
    // Pods need their service account; no controller makes it here.
    let (code, _) = request(
        &mut s,
        "POST",
        "/api/v1/namespaces/pods/serviceaccounts",
        Some(&json!({"metadata": {"name": "default"}})),
    )
    .await;
    assert_eq!(code, 201);

    phase("creates");
    // The first tenth in "storm" (the informer storm lists them), the rest in "scale".
    let (first, first_bytes) = create_many(
        &client,
        storm_objects,
        Arc::new(|i| {
            (
                "/api/v1/namespaces/storm/configmaps".into(),
                configmap(&format!("cm-{i}"), i % 100 == 0),
            )
        }),
    )
    .await;
    let rss_first = rss_bytes(pid);
    let (rest, rest_bytes) = create_many(
        &client,
        objects - storm_objects,
        Arc::new(|i| {
            (
                "/api/v1/namespaces/scale/configmaps".into(),
                configmap(&format!("cm-{i}"), i % 100 == 0),
            )
        }),
    )
    .await;
    let rss_all = rss_bytes(pid);
    let stored = first_bytes + rest_bytes;
    rows.push((
        format!("creates/s, {objects} ConfigMaps of 1 KiB, {CLIENTS} clients"),
        format!("{:.0}/s", objects as f64 / (first + rest).as_secs_f64()),
    ));
    rows.push((
        format!("RSS after {storm_objects} ConfigMaps (RSS over idle per stored byte)"),
        format!(
            "{} ({:.1})",
            mib(rss_first),
            rss_first.saturating_sub(idle) as f64 / first_bytes as f64
        ),
    ));
    rows.push((
        format!(
            "RSS after {objects} ConfigMaps, {} stored (RSS over idle per stored byte)",
            mib(stored)
        ),
        format!(
            "{} ({:.1})",
            mib(rss_all),
            rss_all.saturating_sub(idle) as f64 / stored as f64
        ),
    ));
    let (_, pod_bytes) = create_many(
        &client,
        PODS,
        Arc::new(|i| {
            (
                "/api/v1/namespaces/pods/pods".into(),
                pod(&format!("pod-{i}")),
            )
        }),
    )
    .await;
    let rss_pods = rss_bytes(pid);
    rows.push((
        format!(
            "RSS after {PODS} Pods too ({:.1} KiB each; RSS growth per stored byte)",
            pod_bytes as f64 / PODS as f64 / 1024.0
        ),
        format!(
            "{} ({:.1})",
            mib(rss_pods),
            rss_pods.saturating_sub(rss_all) as f64 / pod_bytes as f64
        ),
    ));
    rows.push((
        "disk: store files after all creates".into(),
        mib(backend.disk(dir.path())),
    ));

    phase("lists");
    // Lists of every ConfigMap (cluster-wide).
    let all = "/api/v1/configmaps";
    let (t, size) = time_list(&client, all).await;
    rows.push((
        format!(
            "LIST {objects} ConfigMaps ({:.0} MB JSON), consistent",
            size as f64 / 1e6
        ),
        ms(t),
    ));
    let (t, _) = time_list(&client, &format!("{all}?resourceVersion=0")).await;
    rows.push((
        format!("LIST {objects} ConfigMaps, resourceVersion=0"),
        ms(t),
    ));
    rows.push((
        format!("LIST {objects} ConfigMaps, paged by 500 (all pages)"),
        ms(time_paged(&client, all, objects).await),
    ));
    let (t, size) = time_list(&client, &format!("{all}?labelSelector=one-percent%3Dyes")).await;
    rows.push((
        format!(
            "LIST with a label selector matching 1% ({:.1} MB)",
            size as f64 / 1e6
        ),
        ms(t),
    ));
    let before = rss_bytes(pid);
    let peak = PeakRss::start(pid);
    let (t, events) = time_watch_list(&client, all).await;
    rows.push((
        format!("watch-list of {objects} ConfigMaps (sendInitialEvents): until initial-events-end"),
        format!(
            "{} ({events} events; peak RSS {} vs {} before)",
            ms(t),
            mib(peak.stop().await),
            mib(before)
        ),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = spawn_writers(&client, "churn", CLIENTS, &stop, None);
    let (t, _) = time_list(&client, all).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for w in writers {
        lat.extend(w.await.expect("writer"));
    }
    rows.push((
        format!("LIST {objects} ConfigMaps, consistent, while {CLIENTS} writers write"),
        format!("{} (writes: {})", ms(t), latency_cell(&mut lat)),
    ));

    phase("watch");
    // Watch latency with 1,000 watchers of one namespace: writes back to back, where each
    // write queues behind the fan-out of the one before, then writes far enough apart that
    // each event's fan-out is alone.
    let (mut lat, seen, rss_watched) = watch_latency(&client, &mut s, "watch", None, pid).await;
    rows.push((
        format!(
            "watch: {WATCHERS} watchers, {WATCH_EVENTS} writes, ack → event received ({seen} of {} events)",
            WATCHERS * WATCH_EVENTS
        ),
        latency_cell(&mut lat),
    ));
    rows.push((
        format!("RSS with {WATCHERS} watchers open"),
        mib(rss_watched),
    ));
    let pace = Duration::from_millis(100);
    let (mut lat, seen, _) = watch_latency(&client, &mut s, "paced", Some(pace), pid).await;
    rows.push((
        format!(
            "watch: the same, writes {} ms apart ({seen} of {} events)",
            pace.as_millis(),
            WATCHERS * WATCH_EVENTS
        ),
        latency_cell(&mut lat),
    ));

    phase("informer storm");
    // Informer storm: LIST (resourceVersion=0) then WATCH from its revision, all at once.
    let steady = rss_bytes(pid);
    let peak = PeakRss::start(pid);
    let synced = Arc::new(tokio::sync::Barrier::new(STORM_CLIENTS + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Acks::default();
    let t0 = Instant::now();
    let storm: Vec<_> = (0..STORM_CLIENTS)
        .map(|_| {
            let (client, synced, stop, acked) =
                (client.clone(), synced.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut s = client.connect().await.expect("connect");
                let (code, body) = request(
                    &mut s,
                    "GET",
                    "/api/v1/namespaces/storm/configmaps?resourceVersion=0",
                    None,
                )
                .await;
                assert_eq!(code, 200);
                let rv = list_field(&body, "resourceVersion").expect("rv");
                drop(body);
                let path = format!(
                    "/api/v1/namespaces/storm/configmaps?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
                );
                watcher(client, path, synced, acked, 1, stop).await.1
            })
        })
        .collect();
    tokio::time::timeout(PHASE_CAP, synced.wait())
        .await
        .expect("every informer syncs");
    let storm_time = t0.elapsed();
    let peak = peak.stop().await;
    // Every informer is still watching: one more write reaches all of them.
    let (code, _) = request(
        &mut s,
        "POST",
        "/api/v1/namespaces/storm/configmaps",
        Some(&configmap("after-storm", false)),
    )
    .await;
    assert_eq!(code, 201);
    let mut reached = 0;
    for t in storm {
        reached += t.await.expect("informer");
    }
    rows.push((
        format!(
            "informer storm: {STORM_CLIENTS} clients LIST+WATCH {storm_objects} ConfigMaps; all synced after"
        ),
        format!(
            "{} (peak RSS {} vs {} before; {reached}/{STORM_CLIENTS} got the next event)",
            ms(storm_time),
            mib(peak),
            mib(steady)
        ),
    ));

    phase("mixed");
    // Mixed load: writers, watchers and listers together.
    let acked = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let watchers = open_watchers(&client, "mixed", MIXED_WATCHERS, &acked, usize::MAX, &stop).await;
    let writers = spawn_writers(&client, "mixed", CLIENTS, &stop, Some(acked.clone()));
    let listers: Vec<_> = (0..MIXED_LISTERS)
        .map(|_| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut s = client.connect().await.expect("connect");
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let (code, _) =
                        request(&mut s, "GET", "/api/v1/namespaces/storm/configmaps", None).await;
                    assert_eq!(code, 200);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    tokio::time::sleep(mixed).await;
    stop.store(true, Ordering::Relaxed);
    let mut creates = Vec::new();
    for w in writers {
        creates.extend(w.await.expect("writer"));
    }
    let mut lists = Vec::new();
    for l in listers {
        lists.extend(l.await.expect("lister"));
    }
    let mut events = Vec::new();
    for w in watchers {
        events.extend(w.await.expect("watcher").0);
    }
    let secs = mixed.as_secs();
    rows.push((
        format!("mixed {secs} s: creates ({CLIENTS} writers)"),
        format!(
            "{:.0}/s, {}",
            creates.len() as f64 / mixed.as_secs_f64(),
            latency_cell(&mut creates)
        ),
    ));
    rows.push((
        format!("mixed {secs} s: LIST {storm_objects} ({MIXED_LISTERS} listers)"),
        latency_cell(&mut lists),
    ));
    rows.push((
        format!("mixed {secs} s: watch events ({MIXED_WATCHERS} watchers), ack → received"),
        latency_cell(&mut events),
    ));
    rows.push((
        "disk: store files at the end".into(),
        mib(backend.disk(dir.path())),
    ));

    phase("start-up");
    // Start-up with everything on disk: process start → /readyz.
    // SAFETY: kill only sends a signal to our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    let t = Instant::now();
    let (mut child, _, _) = start(dir.path(), &flags).await;
    rows.push((
        format!(
            "start-up with {} objects stored: process start → /readyz",
            objects + PODS + WATCH_EVENTS
        ),
        ms(t.elapsed()),
    ));
    let _ = child.kill();
    let _ = child.wait();
    rows
}

#[tokio::main]
async fn main() {
    support::kubeboot::install_crypto();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    #[cfg_attr(not(feature = "etcd"), allow(unused_mut))]
    let mut columns = vec![("kubeboot, embedded", measure(&Backend::Embedded).await)];
    #[cfg(feature = "etcd")]
    {
        let etcd = Backend::Etcd(support::etcd_cluster::EtcdCluster::start_members(1));
        columns.push(("kubeboot on etcd", measure(&etcd).await));
    }
    println!("\nkubeboot at scale over HTTPS (HTTP/1.1 keep-alive, JSON)\n");
    print!("| measure |");
    for (name, _) in &columns {
        print!(" {name} |");
    }
    print!("\n|---|");
    for _ in &columns {
        print!("---|");
    }
    println!();
    for (i, (row, _)) in columns[0].1.iter().enumerate() {
        print!("| {row} |");
        for (_, cells) in &columns {
            print!(" {} |", cells.get(i).map_or("", |c| c.1.as_str()));
        }
        println!();
    }
}
