//! kubeboot on a 3-member etcd cluster (`--etcd-servers` with all three client URLs): kubectl
//! writes and reads, and an open `kubectl get --watch`, carry on after a member is killed.

use crate::common::kubectls;
use crate::support::etcd_cluster::EtcdCluster;
use crate::support::kubeboot::TestServer;
use crate::support::scrape::Scrape;
use crate::support::wait::Background;

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
