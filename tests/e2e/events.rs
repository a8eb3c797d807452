//! core/v1 and events.k8s.io/v1 Events are one resource in two versions, as upstream: what is
//! written through one is read, listed, watched, selected, updated and deleted through the other.

use crate::common::{kubectls, ok, types_and_names};
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use serde_json::{Value, json};

const CORE: &str = "/api/v1/namespaces/default/events";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

const CORE_EVENT: &str = r#"
apiVersion: v1
kind: Event
metadata: {name: legacy.1, namespace: default}
involvedObject: {kind: Pod, name: legacy-pod, namespace: default, apiVersion: v1}
reason: Started
message: started container
source: {component: kubelet, host: node-1}
firstTimestamp: "2024-01-01T00:00:00Z"
lastTimestamp: "2024-01-01T00:01:00Z"
count: 2
type: Normal
"#;

/// Watch events `(type, name)` of a watch from `rv` that ends after a second.
async fn watched(admin: &Https, base: &str, rv: &str) -> Vec<(String, String, Value)> {
    let r = admin
        .get(&format!(
            "{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1"
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json_lines()
        .into_iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["object"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn core_and_events_k8s_io_events_are_the_same_objects() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let kubectls = kubectls();
    let rv0 = admin.get(CORE).await.unwrap().json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // A live watch through events.k8s.io, open (its response head came, so the server has
    // registered it) before the writes below go through core/v1.
    let live = admin
        .open(&format!("{EVENTS}?watch=true&timeoutSeconds=15"))
        .await
        .unwrap();

    // A core Event created with kubectl reads through events.k8s.io, fields converted.
    let file = server.dir.path().join("event.yaml");
    std::fs::write(&file, CORE_EVENT).unwrap();
    ok(
        &server.kubectl(&kubectls[0].1, &["create", "-f", file.to_str().unwrap()]),
        "kubectl create event",
    );
    let r = admin.get(&format!("{EVENTS}/legacy.1")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v1 = r.json();
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["regarding"]["name"], "legacy-pod");
    assert_eq!(v1["note"], "started container");
    assert_eq!(
        v1["deprecatedSource"],
        json!({"component": "kubelet", "host": "node-1"})
    );
    assert_eq!(v1["deprecatedFirstTimestamp"], "2024-01-01T00:00:00Z");
    assert_eq!(v1["deprecatedLastTimestamp"], "2024-01-01T00:01:00Z");
    assert_eq!(v1["deprecatedCount"], 2);
    for core_only in ["involvedObject", "message", "source", "count"] {
        assert!(v1.get(core_only).is_none(), "{core_only} in {v1}");
    }

    // An events.k8s.io Event reads through core/v1 and shows in `kubectl get events`.
    let new = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "modern.1", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "example.com/controller", "reportingInstance": "controller-0",
        "action": "Reconcile", "reason": "Synced", "type": "Warning",
        "regarding": {"kind": "Deployment", "name": "web", "namespace": "default", "apiVersion": "apps/v1"},
        "note": "synced it"
    });
    let r = admin.json("POST", EVENTS, &new).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["note"], "synced it");
    // events.k8s.io/v1 validates strictly: eventTime and the reporter are required.
    let r = admin
        .json(
            "POST",
            EVENTS,
            &json!({"metadata": {"name": "bad"}, "reason": "x", "type": "Normal"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("eventTime: Required value"), "{}", r.body);
    let core = admin.get(&format!("{CORE}/modern.1")).await.unwrap().json();
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["message"], "synced it");
    assert_eq!(core["reportingComponent"], "example.com/controller");
    assert!(core.get("note").is_none() && core.get("regarding").is_none());
    for (version, kubectl) in &kubectls {
        let names = ok(
            &server.kubectl(
                kubectl,
                &[
                    "get",
                    "events",
                    "-o",
                    "jsonpath={.items[*].involvedObject.name}",
                ],
            ),
            "kubectl get events",
        );
        assert_eq!(names, "legacy-pod web", "kubectl {version}");
        let selected = ok(
            &server.kubectl(
                kubectl,
                &[
                    "get",
                    "events",
                    "--field-selector",
                    "involvedObject.kind=Deployment,type=Warning",
                    "-o",
                    "name",
                ],
            ),
            "kubectl get events --field-selector",
        );
        assert_eq!(selected.trim(), "event/modern.1", "kubectl {version}");
        let table = ok(
            &server.kubectl(kubectl, &["get", "events"]),
            "kubectl get events",
        );
        assert!(
            table.contains("deployment/web") && table.contains("synced it"),
            "{table}"
        );
    }
    // events.k8s.io's own field labels select objects written through core/v1 too.
    let r = admin
        .get(&format!(
            "{EVENTS}?fieldSelector=regarding.name%3Dlegacy-pod"
        ))
        .await
        .unwrap();
    let items = r.json()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{}", r.body);
    assert_eq!(items[0]["metadata"]["name"], "legacy.1");
    let r = admin
        .get(&format!(
            "{CORE}?fieldSelector=reportingComponent%3Dexample.com%2Fcontroller"
        ))
        .await
        .unwrap();
    assert_eq!(
        r.json()["items"][0]["metadata"]["name"],
        "modern.1",
        "{}",
        r.body
    );

    // Updates through either version land in the one object.
    let mut v1 = admin
        .get(&format!("{EVENTS}/legacy.1"))
        .await
        .unwrap()
        .json();
    v1["metadata"]["labels"] = json!({"seen": "yes"});
    let r = admin.json("PUT", &format!("{EVENTS}/legacy.1"), &v1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let core = admin.get(&format!("{CORE}/legacy.1")).await.unwrap().json();
    assert_eq!(core["metadata"]["labels"]["seen"], "yes");
    assert_eq!(core["message"], "started container");
    let mut core = admin.get(&format!("{CORE}/modern.1")).await.unwrap().json();
    core["message"] = json!("synced again");
    let r = admin.json("PUT", &format!("{CORE}/modern.1"), &core).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v1 = admin
        .get(&format!("{EVENTS}/modern.1"))
        .await
        .unwrap()
        .json();
    assert_eq!(v1["note"], "synced again");
    // …but events.k8s.io/v1 keeps an event's content immutable, as upstream.
    let mut v1 = v1;
    v1["note"] = json!("rewritten");
    let r = admin.json("PUT", &format!("{EVENTS}/modern.1"), &v1).await;
    assert_eq!(r.status, 422, "{}", r.body);

    // Deleting through one version removes the object from both.
    let r = admin
        .request("DELETE", &format!("{EVENTS}/legacy.1"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        admin.get(&format!("{CORE}/legacy.1")).await.unwrap().status,
        404
    );
    let r = admin
        .request("DELETE", &format!("{CORE}/modern.1"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        admin
            .get(&format!("{EVENTS}/modern.1"))
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(admin.get(EVENTS).await.unwrap().json()["items"], json!([]));

    // Watches of each version see every write, in their own version.
    let expected = [
        ("ADDED", "legacy.1"),
        ("ADDED", "modern.1"),
        ("MODIFIED", "legacy.1"),
        ("MODIFIED", "modern.1"),
        ("DELETED", "legacy.1"),
        ("DELETED", "modern.1"),
    ];
    for (base, api_version, regarding) in [
        (CORE, "v1", "involvedObject"),
        (EVENTS, "events.k8s.io/v1", "regarding"),
    ] {
        let seen = watched(&admin, base, &rv0).await;
        let names: Vec<(&str, &str)> = seen
            .iter()
            .map(|(t, n, _)| (t.as_str(), n.as_str()))
            .collect();
        assert_eq!(names, expected, "{base}");
        for (_, _, obj) in &seen {
            assert_eq!(obj["apiVersion"], api_version, "{obj}");
            assert!(obj.get(regarding).is_some(), "{obj}");
        }
    }
    let live = live.await.unwrap().unwrap();
    let live = live.json_lines();
    let names = types_and_names(&live);
    assert_eq!(names, expected, "live events.k8s.io watch");
    assert_eq!(live[0]["object"]["note"], "started container");
}

/// `--event-ttl`: an Event goes once the TTL has passed since its last write, whichever API
/// wrote it; other kinds are untouched.
#[tokio::test]
async fn events_expire_after_the_event_ttl() {
    expire_on(&[], None).await;
}

/// The same on the etcd backend, where, as upstream's, the Events' keys carry a lease of the
/// TTL and etcd deletes them; other keys carry none.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_the_event_ttl_on_etcd() {
    let cluster = tokio::task::spawn_blocking(crate::support::etcd_cluster::EtcdCluster::start)
        .await
        .unwrap();
    let servers = format!("--etcd-servers={}", cluster.servers_flag());
    expire_on(
        &["--storage-backend=etcd", &servers],
        Some(cluster.endpoints()),
    )
    .await;
}

/// The lease of `key` in the etcd at `endpoints` and its granted TTL in seconds; 0 for none.
#[cfg(feature = "etcd")]
async fn lease_of(endpoints: &[String], key: &str) -> (i64, i64) {
    let mut etcd = etcd_client::Client::connect(endpoints, None).await.unwrap();
    let got = etcd.get(key, None).await.unwrap();
    let lease = got.kvs().first().unwrap_or_else(|| panic!("{key}")).lease();
    if lease == 0 {
        return (0, 0);
    }
    let ttl = etcd.lease_time_to_live(lease, None).await.unwrap();
    (lease, ttl.granted_ttl())
}

/// Starts a server with a 2 s event TTL and `extra` flags; an Event written by either API is
/// gone after it, a ConfigMap is not. With `etcd` (its endpoints) the keys' leases are checked.
async fn expire_on(extra: &[&str], etcd: Option<Vec<String>>) {
    let flags: Vec<&str> = ["--event-ttl=2s"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let mut server = crate::support::kubeboot::TestServer::up(&flags);
    server.wait_ready().await;
    let admin = server.admin();
    let core = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "short.1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "started", "type": "Normal"});
    admin.create(CORE, &core).await;
    let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "short.2"}, "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "example.com/c", "reportingInstance": "c-1",
        "action": "Start", "reason": "Started", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
    admin.create(EVENTS, &new).await;
    admin
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "kept"}}),
        )
        .await;
    #[cfg(feature = "etcd")]
    if let Some(endpoints) = &etcd {
        for key in [
            "/registry/events/default/short.1",
            "/registry/events/default/short.2",
        ] {
            let (lease, ttl) = lease_of(endpoints, key).await;
            assert_ne!(lease, 0, "{key} has a lease");
            // 2 s plus a reuse window of 5 % of it, rounded down to 0 s.
            assert_eq!(ttl, 2, "{key}'s lease");
        }
        let kept = lease_of(endpoints, "/registry/configmaps/default/kept").await;
        assert_eq!(kept, (0, 0), "a ConfigMap's key has no lease");
    }
    #[cfg(not(feature = "etcd"))]
    assert!(etcd.is_none());
    crate::support::wait::eventually("both events to expire", || async {
        let one = admin.get(&format!("{CORE}/short.1")).await.unwrap().status;
        let two = admin
            .get(&format!("{EVENTS}/short.2"))
            .await
            .unwrap()
            .status;
        (one == 404 && two == 404).then_some(())
    })
    .await;
    let r = admin
        .get("/api/v1/namespaces/default/configmaps/kept")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}
