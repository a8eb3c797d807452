//! The `kubernetes` Service's endpoints under the lease reconciler: a server publishes its
//! advertise address; several servers on one etcd publish all of theirs; one that dies without
//! a word drops out once its lease expires (15 s), one that shuts down withdraws at once.

use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use serde_json::json;

/// The addresses the Endpoints and the EndpointSlice of `kubernetes` list, if they agree.
async fn published(admin: &Https) -> Option<Vec<String>> {
    let eps = admin
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .ok()?
        .json();
    let from_endpoints: Vec<String> = eps["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(String::from))
        .collect();
    let slice = admin
        .get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        .await
        .ok()?
        .json();
    let from_slice: Vec<String> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["addresses"][0].as_str().map(String::from))
        .collect();
    (from_endpoints == from_slice).then_some(from_endpoints)
}

#[tokio::test]
async fn a_server_publishes_its_advertise_address_and_none_with_no_reconciler() {
    let mut server = TestServer::up(&["--advertise-address=10.0.0.5"]);
    server.wait_ready().await;
    let admin = server.admin();
    let eps = admin
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .unwrap()
        .json();
    assert_eq!(
        eps["subsets"][0]["ports"],
        json!([{"name": "https", "port": server.port, "protocol": "TCP"}])
    );
    assert_eq!(published(&admin).await, Some(vec!["10.0.0.5".to_string()]));

    let mut none = TestServer::up(&[
        "--advertise-address=10.0.0.6",
        "--endpoint-reconciler-type=none",
    ]);
    none.wait_ready().await;
    let r = none
        .admin()
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let err = crate::support::kubeboot::run_kubeboot(
        server.dir.path(),
        &["serve", "--endpoint-reconciler-type=master-count"],
    );
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains("--endpoint-reconciler-type \"master-count\" is not implemented"),
        "{stderr}"
    );
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_on_one_etcd_publish_every_live_address() {
    use crate::support::etcd_cluster::EtcdCluster;
    use crate::support::wait::eventually;
    use serde_json::Value;
    use std::time::Duration;
    let cluster = tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .unwrap();
    let etcd = format!("--etcd-servers={}", cluster.servers_flag());
    let start = |ip: &str| {
        TestServer::up(&[
            "--storage-backend=etcd",
            &etcd,
            &format!("--advertise-address={ip}"),
        ])
    };
    let mut first = start("10.0.0.1");
    first.wait_ready().await;
    let mut second = start("10.0.0.2");
    second.wait_ready().await;
    let admin = first.admin();
    let both = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
    eventually("both servers to be published", || async {
        (published(&admin).await? == both).then_some(())
    })
    .await;

    // Killed without a word: gone once its lease expires and the survivor renews.
    second.signal(libc::SIGKILL);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if published(&admin).await == Some(vec!["10.0.0.1".to_string()]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead server is still published: {:?}",
            published(&admin).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Shut down: it withdraws its lease, so a newcomer publishes itself alone at once.
    first.signal(libc::SIGTERM);
    assert!(first.wait_exit(Duration::from_secs(60)).await.success());
    let mut third = start("10.0.0.3");
    third.wait_ready().await;
    let records: Value = json!(published(&third.admin()).await);
    assert_eq!(records, json!(["10.0.0.3"]));
}
