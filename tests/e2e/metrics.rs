//! `/metrics` against a started server, read with a real Prometheus text parser: request
//! counts and latencies by upstream's labels, storage timings and object counts, watchers and
//! watch events, long-running requests, authentication and authorization counters, admission
//! latencies and the process figures; only users the `system:monitoring` role (or more) allows
//! may read it; the CPU profile at /debug/pprof/profile.

use crate::common::{newest_kubectl, ok};
use crate::support::kubeboot::TestServer;
use crate::support::scrape::Scrape;
use crate::support::wait::eventually;
use serde_json::json;
use std::collections::HashMap;

#[tokio::test]
async fn metrics_count_requests_storage_watches_and_the_process_as_upstream_names_them() {
    // Without the built-in controllers nothing but this test writes ConfigMaps.
    let mut server = TestServer::up(&["--builtin-controllers=false"]);
    server.wait_ready().await;
    let admin = server.admin();
    let created = [
        ("verb", "POST"),
        ("resource", "configmaps"),
        ("code", "201"),
    ];
    let before = Scrape::of(&admin).await;

    // A watch stays open while ConfigMaps are created: it is a watcher and a long-running
    // request until it ends.
    let watch = admin
        .open("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=30")
        .await
        .unwrap();
    for i in 0..10 {
        admin
            .create(
                "/api/v1/namespaces/default/configmaps",
                &json!({"metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}}),
            )
            .await;
    }
    let during = eventually("the watch to have sent the 10 events", || async {
        let s = Scrape::of(&admin).await;
        let sent = s.value("apiserver_watch_events_total", &[("kind", "ConfigMap")]);
        (sent >= 10.0).then_some(s)
    })
    .await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        during.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(grew("apiserver_request_total", &created), 10.0);
    assert_eq!(
        grew(
            "apiserver_request_duration_seconds",
            &[("verb", "POST"), ("resource", "configmaps")]
        ),
        10.0
    );
    assert_eq!(
        during.value(
            "apiserver_registered_watchers",
            &[("group", ""), ("version", "v1"), ("kind", "ConfigMap")]
        ),
        1.0
    );
    assert_eq!(
        during.value(
            "apiserver_longrunning_requests",
            &[
                ("verb", "WATCH"),
                ("resource", "configmaps"),
                ("scope", "namespace")
            ]
        ),
        1.0
    );
    assert!(
        grew(
            "etcd_request_duration_seconds",
            &[("operation", "create"), ("type", "configmaps")]
        ) >= 10.0
    );
    assert!(during.value("apiserver_storage_objects", &[("resource", "configmaps")]) >= 10.0);
    assert!(
        grew(
            "apiserver_admission_step_admission_duration_seconds",
            &[
                ("operation", "CREATE"),
                ("type", "validate"),
                ("rejected", "false")
            ]
        ) >= 10.0
    );
    assert!(
        during.value(
            "apiserver_admission_controller_admission_duration_seconds",
            &[("name", "NamespaceLifecycle"), ("operation", "CREATE")]
        ) >= 10.0
    );
    assert!(during.value("authentication_attempts_total", &[("result", "success")]) > 0.0);
    assert!(during.value("process_resident_memory_bytes", &[]) > 1e6);
    // The embedded store's file, read at the scrape.
    assert!(
        during.value(
            "apiserver_storage_size_bytes",
            &[("storage_cluster_id", "")]
        ) > 0.0
    );
    let started = during.value("process_start_time_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        now - started < 600.0 && started <= now + 1.0,
        "{started} vs {now}"
    );
    assert!(during.value("process_open_fds", &[]) > 0.0);

    // Reads observe their response sizes.
    let r = admin
        .get("/api/v1/namespaces/default/configmaps")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let after = Scrape::of(&admin).await;
    assert_eq!(
        after.value(
            "apiserver_response_sizes",
            &[("verb", "LIST"), ("resource", "configmaps")]
        ) - during.value(
            "apiserver_response_sizes",
            &[("verb", "LIST"), ("resource", "configmaps")]
        ),
        1.0
    );
    // The watch ended, so it no longer counts.
    watch.abort();
    eventually("the watcher to be gone", || async {
        let s = Scrape::of(&admin).await;
        (s.value("apiserver_registered_watchers", &[("kind", "ConfigMap")]) == 0.0).then_some(())
    })
    .await;

    // Who may read it: not a user without roles; a member of system:monitoring, counted as an
    // RBAC decision.
    let nobody = server.as_user("nobody", &[]);
    let r = nobody.get("/metrics").await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "forbidden: User \"nobody\" cannot get path \"/metrics\""
    );
    let monitor = server.as_user("prometheus", &["system:monitoring"]);
    let scraped = Scrape::of(&monitor).await;
    let decisions: HashMap<&str, f64> = ["allowed", "denied"]
        .into_iter()
        .map(|d| {
            let labels = [("type", "RBAC"), ("name", "rbac"), ("decision", d)];
            (
                d,
                scraped.value("apiserver_authorization_decisions_total", &labels),
            )
        })
        .collect();
    assert!(decisions["allowed"] >= 1.0, "{decisions:?}");
    // The local APIServices are available, as the aggregator's gauge says.
    assert!(scraped.has("aggregator_unavailable_apiservice", &[("name", "v1.")]));
    assert_eq!(
        scraped.value("aggregator_unavailable_apiservice", &[("name", "v1.")]),
        0.0
    );

    // The health checks' results, as upstream's SLI registry has them, for the same readers.
    assert_eq!(monitor.get("/readyz").await.unwrap().status, 200);
    let slis = Scrape::at(&monitor, "/metrics/slis").await;
    let ping = [("name", "ping"), ("type", "readyz")];
    assert_eq!(slis.value("kubernetes_healthcheck", &ping), 1.0);
    assert!(
        slis.value(
            "kubernetes_healthchecks_total",
            &[ping[0], ("status", "success"), ping[1]]
        ) >= 1.0
    );
    assert_eq!(nobody.get("/metrics/slis").await.unwrap().status, 403);

    // kubectl reads it as upstream's users do.
    let out = ok(
        &server.kubectl(&newest_kubectl(), &["get", "--raw", "/metrics"]),
        "kubectl get --raw /metrics",
    );
    assert!(out.contains("apiserver_request_total{"), "{out}");
}

#[tokio::test]
async fn a_cpu_profile_is_served_to_administrators_as_gzipped_pprof() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let r = server
        .admin()
        .get("/debug/pprof/profile?seconds=1")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    assert_eq!(r.bytes[..2], [0x1f, 0x8b], "gzip");
    let mut profile = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&r.bytes[..]),
        &mut profile,
    )
    .unwrap();
    // A perftools Profile: its sample types and their units are in its string table.
    for s in [&b"samples"[..], b"count", b"cpu", b"nanoseconds"] {
        assert!(
            profile.windows(s.len()).any(|w| w == s),
            "{}",
            String::from_utf8_lossy(s)
        );
    }
    let nobody = server.as_user("nobody", &[]);
    assert_eq!(
        nobody
            .get("/debug/pprof/profile?seconds=1")
            .await
            .unwrap()
            .status,
        403
    );

    let mut off = TestServer::up(&["--profiling=false"]);
    off.wait_ready().await;
    let r = off
        .admin()
        .get("/debug/pprof/profile?seconds=1")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
}
