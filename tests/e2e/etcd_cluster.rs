//! kubeboot on a 3-member etcd cluster (`--etcd-servers` with all three client URLs): kubectl
//! writes and reads, and an open `kubectl get --watch`, carry on after a member is killed; several
//! servers on it share watches and each holds its identity Lease.

use crate::common::kubectls;
use crate::support::etcd_cluster::EtcdCluster;
use crate::support::kubeboot::TestServer;
use crate::support::scrape::Scrape;
use crate::support::wait::Background;
use std::time::Duration;

/// Whether kubectl's `-o name` output so far has the line `want`.
fn has_line(want: &str) -> impl Fn(&str) -> bool + '_ {
    move |text| text.lines().any(|l| l.trim() == want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_keeps_reading_and_writing_after_an_etcd_member_dies() {
    let mut cluster = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap();
    let servers = format!("--etcd-servers={}", cluster.servers_flag());
    let mut server = TestServer::up(&["--storage-backend=etcd", &servers]);
    server.wait_ready().await;
    // The database's size, with etcd's cluster ID, as upstream's storage monitor reports it.
    let scraped = Scrape::of(&server.admin()).await;
    assert!(scraped.value("apiserver_storage_size_bytes", &[]) > 0.0);
    assert!(!scraped.has(
        "apiserver_storage_size_bytes",
        &[("storage_cluster_id", "")]
    ));
    let kubectl = kubectls().remove(0).1;
    let ok = |args: &[&str]| {
        let out = server.kubectl(&kubectl, args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}\n--- kubeboot ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.stderr()
        );
        String::from_utf8(out.stdout).unwrap()
    };

    ok(&["create", "namespace", "team"]);
    ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "before",
        "--from-literal=k=v1",
    ]);
    ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "doomed",
        "--from-literal=k=x",
    ]);

    // An open watch, served from kubeboot's watch cache over its etcd watch.
    let mut watch = Background::spawn(
        server.kubectl_command(
            &kubectl,
            &["-n", "team", "get", "configmaps", "--watch", "-o", "name"],
        ),
        server.dir.path(),
        "kubectl-watch",
    );
    watch
        .wait_for_stdout("configmap/before", has_line("configmap/before"))
        .await;

    // Kill the follower holding the most of kubeboot's watches (never the leader: no
    // election is involved, so nothing in the cluster itself is unavailable).
    let (cluster, victim, held) = tokio::task::spawn_blocking(move || {
        let watchers = |i| {
            cluster
                .metric(i, "etcd_debugging_mvcc_watcher_total")
                .unwrap_or(0.0) as i64
        };
        let (held, victim) = cluster
            .followers()
            .into_iter()
            .map(|i| (watchers(i), i))
            .max()
            .unwrap();
        cluster.kill(victim);
        (cluster, victim, held)
    })
    .await
    .unwrap();
    // kubeboot spreads its watches (one per cached resource) over the members.
    assert!(held > 0, "no watch on either follower");
    assert!(!cluster.healthy(victim));

    // Writes, each made once: create, update, delete.
    ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "after",
        "--from-literal=k=v2",
    ]);
    ok(&[
        "-n",
        "team",
        "label",
        "configmap",
        "before",
        "stage=after-kill",
    ]);
    ok(&["-n", "team", "delete", "configmap", "doomed"]);
    ok(&["create", "namespace", "team-2"]);
    // Reads and lists see them.
    assert_eq!(
        ok(&[
            "-n",
            "team",
            "get",
            "configmap",
            "after",
            "-o",
            "jsonpath={.data.k}"
        ]),
        "v2"
    );
    assert_eq!(
        ok(&[
            "-n",
            "team",
            "get",
            "configmap",
            "before",
            "-o",
            "jsonpath={.metadata.labels.stage}"
        ]),
        "after-kill"
    );
    let names = ok(&["-n", "team", "get", "configmaps", "-o", "name"]);
    let mut names: Vec<&str> = names
        .lines()
        .filter(|l| !l.contains("kube-root-ca"))
        .collect();
    names.sort();
    assert_eq!(names, ["configmap/after", "configmap/before"]);
    assert!(ok(&["get", "namespaces", "-o", "name"]).contains("namespace/team-2"));
    // The watch opened before the kill saw the write made after it.
    watch
        .wait_for_stdout("configmap/after", has_line("configmap/after"))
        .await;
    drop(cluster);
}

/// The kube-apiserver identity Leases `server` serves, by their hostname label.
async fn identity_leases(
    server: &TestServer,
) -> Option<std::collections::BTreeMap<String, serde_json::Value>> {
    let r = server
        .admin()
        .get(
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases\
             ?labelSelector=apiserver.kubernetes.io%2Fidentity%3Dkube-apiserver",
        )
        .await
        .ok()?;
    let items = r.json()["items"].as_array()?.clone();
    Some(
        items
            .into_iter()
            .map(|l| {
                let host = l["metadata"]["labels"]["kubernetes.io/hostname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (host, l)
            })
            .collect(),
    )
}

/// Two servers on one etcd and one PKI, as upstream's HA control plane: each holds an identity Lease named
/// after its host; a watch on one sees writes made through the other, in order; a killed
/// server's watcher resumes on the other from its last resourceVersion without losing an event;
/// a server shut down ends its watches and gives up its Lease, while a killed one's stays for the
/// collector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_on_one_etcd_share_watches_and_each_holds_an_identity_lease() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

    let cluster = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap();
    let servers = format!("--etcd-servers={}", cluster.servers_flag());
    let flags = [
        "--storage-backend=etcd",
        servers.as_str(),
        "--shutdown-watch-termination-grace-period=30s",
    ];
    let mut a = TestServer::up_on_host("kb-a", None, &flags);
    a.wait_ready().await;
    let mut b = TestServer::up_on_host("kb-b", Some(&a), &flags);
    b.wait_ready().await;

    let leases = crate::support::wait::eventually("both identity leases", || async {
        let leases = identity_leases(&b).await?;
        (leases.keys().collect::<Vec<_>>() == ["kb-a", "kb-b"]).then_some(leases)
    })
    .await;
    // Upstream's name for the host kb-a: base32 of the SHA-256 of its length-prefixed
    // hostname and "kube-apiserver", computed apart.
    assert_eq!(
        leases["kb-a"]["metadata"]["name"],
        "apiserver-cydliygw575ojop34ck4fhtdyu"
    );
    for (host, lease) in &leases {
        let name = lease["metadata"]["name"].as_str().unwrap();
        let holder = lease["spec"]["holderIdentity"].as_str().unwrap();
        assert!(holder.starts_with(&format!("{name}_")), "{host}: {lease}");
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 3600, "{host}");
    }

    let on_a: Api<ConfigMap> = Api::namespaced(a.kube_client().await, "default");
    let on_b: Api<ConfigMap> = Api::namespaced(b.kube_client().await, "default");
    let cm = |name: String| ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name),
            ..Default::default()
        },
        ..Default::default()
    };
    let added = |e: WatchEvent<ConfigMap>| match e {
        WatchEvent::Added(cm) => (
            cm.metadata.name.unwrap(),
            cm.metadata.resource_version.unwrap(),
        ),
        other => panic!("expected an ADDED event, got {other:?}"),
    };
    let start = on_b.list(&ListParams::default()).await.unwrap();
    let start = start.metadata.resource_version.unwrap();
    let watch = WatchParams::default().timeout(290);
    let mut on_a_events = on_a.watch(&watch, &start).await.unwrap().boxed();
    let names = |range: std::ops::Range<i32>| range.map(|i| format!("w{i}")).collect::<Vec<_>>();
    for name in names(0..5) {
        on_b.create(&PostParams::default(), &cm(name))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut last = String::new();
    while seen.len() < 5 {
        let (name, rv) = added(on_a_events.try_next().await.unwrap().unwrap());
        seen.push(name);
        last = rv;
    }
    assert_eq!(seen, names(0..5), "b's writes on a's watch, in order");

    // a dies; writes go on through b while no watch is open; the watcher resumes on b.
    a.signal(libc::SIGKILL);
    a.wait_exit(Duration::from_secs(30)).await;
    for name in names(5..10) {
        on_b.create(&PostParams::default(), &cm(name))
            .await
            .unwrap();
    }
    let mut on_b_events = on_b.watch(&watch, &last).await.unwrap().boxed();
    let mut resumed = Vec::new();
    while resumed.len() < 5 {
        resumed.push(added(on_b_events.try_next().await.unwrap().unwrap()).0);
    }
    assert_eq!(resumed, names(5..10), "nothing lost, nothing repeated");

    // b shuts down: it ends its watches, so their clients can move on (the grace period set,
    // as upstream's), rather than holding the shutdown for a minute; and it gives its Lease
    // up, while a's stays, as upstream's, until it expires.
    b.signal(libc::SIGTERM);
    let ended = tokio::time::timeout(Duration::from_secs(30), on_b_events.try_next()).await;
    assert!(
        matches!(ended, Ok(Ok(None))),
        "the watch ends cleanly: {ended:?}"
    );
    assert!(b.wait_exit(Duration::from_secs(30)).await.success());
    assert!(
        b.stderr().contains("active watch request(s) have drained"),
        "{}",
        b.stderr()
    );
    let mut c = TestServer::up_on_host("kb-c", Some(&a), &flags);
    c.wait_ready().await;
    crate::support::wait::eventually("kb-b's lease to be gone and kb-c's there", || async {
        let leases = identity_leases(&c).await?;
        (leases.keys().collect::<Vec<_>>() == ["kb-a", "kb-c"]).then_some(())
    })
    .await;
}
