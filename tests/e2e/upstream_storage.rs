//! `--storage-media-type=application/vnd.kubernetes.protobuf`: kubeboot on etcd keeps objects as
//! kube-apiserver does, so either can take over the other's data. The fixture is what a real
//! kube-apiserver 1.32 wrote to etcd and then served (tests/testdata/kube-apiserver-1.32): put
//! back into a fresh etcd, kubeboot serves every object as kube-apiserver did; what kubeboot
//! writes lands under upstream's keys in upstream's encodings; the Services' addresses and node
//! ports, which upstream's allocators kept in bitmaps kubeboot does not read, stay taken.

use crate::common::kubectls;
use crate::support::etcd_cluster::EtcdCluster;
use crate::support::kubeboot::TestServer;
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::Path;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/testdata/kube-apiserver-1.32"
);
const PROTOBUF: &str = "--storage-media-type=application/vnd.kubernetes.protobuf";

/// What kube-apiserver served that kubeboot, by design, serves otherwise: Go writes these nil
/// lists as `null` where kubeboot leaves them out.
const NULL_LISTS: &[(&str, &str)] = &[
    ("HorizontalPodAutoscaler", "/status/currentMetrics"),
    ("CSINode", "/spec/drivers/0/topologyKeys"),
];

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(FIXTURE).join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// An object as compared: its resourceVersion is etcd's revision, which differs once the keys
/// are written to another etcd.
fn comparable(mut obj: Value) -> Value {
    obj["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let kind = obj["kind"].as_str().unwrap_or("").to_string();
    for (k, pointer) in NULL_LISTS {
        if *k == kind
            && let Some((parent, field)) = pointer.rsplit_once('/')
            && let Some(Value::Object(parent)) = obj.pointer_mut(parent)
        {
            parent.remove(field);
        }
    }
    obj
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_apiserver_data_is_served_unchanged_and_kubeboot_writes_what_it_reads() {
    let cluster = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap();
    let mut etcd = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .unwrap();
    let kvs = fixture("etcd.json");
    for kv in kvs.as_array().unwrap() {
        let value = base64::engine::general_purpose::STANDARD
            .decode(kv["value"].as_str().unwrap())
            .unwrap();
        etcd.put(kv["key"].as_str().unwrap(), value, None)
            .await
            .unwrap();
    }

    let servers = format!("--etcd-servers={}", cluster.servers_flag());
    // Without kubeboot's controllers, which would fill in the quota's status that
    // kube-apiserver (no controller manager beside it) left empty.
    let mut server = TestServer::up(&[
        "--storage-backend=etcd",
        &servers,
        PROTOBUF,
        "--builtin-controllers=false",
        "--service-cluster-ip-range=10.96.0.0/12",
    ]);
    server.wait_ready().await;

    // Every object as kube-apiserver served it: the same JSON, managedFields included.
    let kubectl = kubectls().remove(0).1;
    let objects = Path::new(FIXTURE).join("objects.yaml");
    let out = server.kubectl(
        &kubectl,
        &["get", "-f", objects.to_str().unwrap(), "-o", "json"],
    );
    assert!(
        out.status.success(),
        "{}\n--- kubeboot ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    let served: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = fixture("served.json");
    let (served, expected) = (
        served["items"].as_array().unwrap(),
        expected["items"].as_array().unwrap(),
    );
    assert_eq!(served.len(), expected.len());
    assert!(expected.len() >= 50, "{}", expected.len());
    for (got, want) in served.iter().zip(expected) {
        assert_eq!(
            comparable(got.clone()),
            comparable(want.clone()),
            "{} {}",
            want["kind"],
            want["metadata"]["name"]
        );
    }

    // What kubeboot writes: built-in kinds as protobuf under upstream's keys, custom resources
    // and CRDs as JSON (CRDs in v1, which kube-apiserver reads as well as its own v1beta1).
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces/up/configmaps",
            &json!({"metadata": {"name": "written"}, "data": {"by": "kubeboot"}}),
        )
        .await;
    let relabel = |path: &'static str| {
        let admin = admin.clone();
        async move {
            let patch = json!({"metadata": {"labels": {"rewritten": "yes"}}}).to_string();
            admin
                .with_body("PATCH", path, "application/merge-patch+json", patch)
                .await
        }
    };
    let r = relabel("/api/v1/nodes/node-a").await;
    assert_eq!(r.status, 200, "{}", r.body);
    admin
        .create(
            "/apis/example.com/v1/namespaces/up/widgets",
            &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": 2}}),
        )
        .await;
    let contains = |bytes: &[u8], s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    let configmap = cluster.value_of("/registry/configmaps/up/written").await;
    assert!(configmap.starts_with(b"k8s\0"), "{configmap:?}");
    assert!(contains(&configmap, "ConfigMap") && contains(&configmap, "kubeboot"));
    let node = cluster.value_of("/registry/minions/node-a").await;
    assert!(node.starts_with(b"k8s\0") && contains(&node, "rewritten"));
    let widget: Value = serde_json::from_slice(
        &cluster
            .value_of("/registry/example.com/widgets/up/w2")
            .await,
    )
    .expect("custom resources stay JSON");
    assert_eq!(widget["spec"]["size"], 2);
    let r = relabel("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let crd: Value = serde_json::from_slice(
        &cluster
            .value_of(
                "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com",
            )
            .await,
    )
    .unwrap();
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(
        crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["jsonPath"],
        ".spec.size"
    );

    // The Services' cluster IP and node port, from upstream's bitmaps, are taken.
    let np = admin
        .get("/api/v1/namespaces/up/services/np")
        .await
        .unwrap()
        .json();
    let (ip, port) = (
        np["spec"]["clusterIP"].clone(),
        np["spec"]["ports"][0]["nodePort"].clone(),
    );
    let same_ip = json!({"metadata": {"name": "same-ip"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    let r = admin
        .json("POST", "/api/v1/namespaces/up/services", &same_ip)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("already allocated"), "{}", r.body);
    let same_port = json!({"metadata": {"name": "same-port"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}});
    let r = admin
        .json("POST", "/api/v1/namespaces/up/services", &same_port)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("already allocated"), "{}", r.body);

    // With application/json the keys stay upstream's and new values are JSON; protobuf ones
    // still read.
    server.signal(libc::SIGTERM);
    server.wait_exit(std::time::Duration::from_secs(60)).await;
    let mut server = TestServer::up(&[
        "--storage-backend=etcd",
        &servers,
        "--storage-media-type=application/json",
        "--builtin-controllers=false",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    let written = admin
        .get("/api/v1/namespaces/up/configmaps/written")
        .await
        .unwrap()
        .json();
    assert_eq!(written["data"]["by"], "kubeboot");
    admin
        .create(
            "/api/v1/namespaces/up/configmaps",
            &json!({"metadata": {"name": "as-json"}}),
        )
        .await;
    let stored: Value =
        serde_json::from_slice(&cluster.value_of("/registry/configmaps/up/as-json").await)
            .expect("application/json stores JSON");
    assert_eq!(stored["kind"], "ConfigMap");
}

#[test]
fn the_protobuf_layout_needs_etcd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubeboot"))
        .args(["init", "--data-dir=/nonexistent/kubeboot", PROTOBUF])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--storage-media-type"), "{stderr}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubeboot"))
        .args([
            "init",
            "--data-dir=/nonexistent/kubeboot",
            "--storage-media-type=application/yaml",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--storage-media-type \"application/yaml\" invalid"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_object_that_does_not_decode_ends_a_watch_list_with_an_internal_error() {
    let cluster = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap();
    let servers = format!("--etcd-servers={}", cluster.servers_flag());
    let mut server = TestServer::up(&[
        "--storage-backend=etcd",
        &servers,
        "--builtin-controllers=false",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/api/v1/namespaces/default/configmaps";
    admin
        .create(base, &json!({"metadata": {"name": "a-good"}}))
        .await;
    // What no API server wrote: neither JSON nor Kubernetes protobuf.
    let mut etcd = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .unwrap();
    etcd.put("/registry/configmaps/default/b-garbage", "garbage", None)
        .await
        .unwrap();
    admin
        .create(base, &json!({"metadata": {"name": "c-good"}}))
        .await;

    // Without the ERROR ending it, the watch would go on to its initial-events-end bookmark
    // and c-good, until the timeout.
    let r = admin
        .get(&format!("{base}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=5"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let events = r.json_lines();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "ERROR"], "{}", r.body);
    assert_eq!(events[0]["object"]["metadata"]["name"], "a-good");
    let status = &events[1]["object"];
    assert_eq!(
        (&status["code"], &status["reason"]),
        (&json!(500), &json!("InternalError")),
        "{status}"
    );
}
