//! ResourceQuota against a started server: the built-in quota controller counts usage into the
//! quota's status (`kubectl describe quota` shows it), the admission plugin charges each create
//! and refuses the one that would exceed a hard limit with upstream's 403, pods must state the
//! compute resources a quota tracks, a dry run is checked but not charged, and a deletion gives
//! its share back.

use crate::common::{failed, newest_kubectl, ok};
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use serde_json::{Value, json};

const QUOTAS: &str = "/api/v1/namespaces/teams/resourcequotas";
const CONFIGMAPS: &str = "/api/v1/namespaces/teams/configmaps";

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
}

fn pod(name: &str, resources: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "nginx", "resources": resources}]}})
}

#[tokio::test]
async fn quotas_count_charge_refuse_and_replenish_as_upstream() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "teams"}}),
        )
        .await;
    // The namespace's kube-root-ca.crt is its first ConfigMap, as upstream's.
    eventually("kube-root-ca.crt", || async {
        let r = admin
            .get(&format!("{CONFIGMAPS}/kube-root-ca.crt"))
            .await
            .unwrap();
        (r.status == 200).then_some(())
    })
    .await;
    admin
        .create(
            QUOTAS,
            &json!({"metadata": {"name": "objects"}, "spec": {"hard": {"count/configmaps": "2"}}}),
        )
        .await;
    let used = |quota: &'static str| {
        let admin = admin.clone();
        async move {
            let q = admin
                .get(&format!("{QUOTAS}/{quota}"))
                .await
                .unwrap()
                .json();
            q["status"]["used"].clone()
        }
    };
    eventually("the controller to count the quota", || async {
        (used("objects").await == json!({"count/configmaps": "1"})).then_some(())
    })
    .await;

    // A dry run is checked but not charged; the create is charged at once.
    let r = admin
        .json("POST", &format!("{CONFIGMAPS}?dryRun=All"), &configmap("a"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(used("objects").await, json!({"count/configmaps": "1"}));
    let r = admin.json("POST", CONFIGMAPS, &configmap("a")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(used("objects").await, json!({"count/configmaps": "2"}));

    // The third ConfigMap is refused with upstream's words.
    let r = admin.json("POST", CONFIGMAPS, &configmap("b")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        "configmaps \"b\" is forbidden: exceeded quota: objects, requested: count/configmaps=1, \
         used: count/configmaps=2, limited: count/configmaps=2"
    );
    let kubectl = newest_kubectl();
    let stderr = failed(
        &server.kubectl(&kubectl, &["create", "configmap", "c", "-n", "teams"]),
        "kubectl create configmap c",
    );
    assert!(stderr.contains("exceeded quota: objects"), "{stderr}");
    let describe = ok(
        &server.kubectl(&kubectl, &["describe", "quota", "objects", "-n", "teams"]),
        "kubectl describe quota",
    );
    assert!(
        describe
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["count/configmaps", "2", "2"]),
        "{describe}"
    );

    // A deletion gives its share back once the controller recounts.
    let r = admin
        .request("DELETE", &format!("{CONFIGMAPS}/a"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("the deletion to be given back", || async {
        let r = admin.json("POST", CONFIGMAPS, &configmap("b")).await;
        (r.status == 201).then_some(())
    })
    .await;

    // Compute resources: every container must state them, and requests add up.
    admin
        .create(
            QUOTAS,
            &json!({"metadata": {"name": "compute"},
            "spec": {"hard": {"requests.cpu": "1", "limits.memory": "1Gi", "pods": "5"}}}),
        )
        .await;
    eventually("the compute quota to be counted", || async {
        (used("compute").await == json!({"limits.memory": "0", "pods": "0", "requests.cpu": "0"}))
            .then_some(())
    })
    .await;
    let pods = "/api/v1/namespaces/teams/pods";
    let r = admin
        .json(
            "POST",
            pods,
            &pod("bare", json!({"requests": {"cpu": "100m"}})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"bare\" is forbidden: failed quota: compute: must specify limits.memory for: app"
    );
    let sized = json!({"requests": {"cpu": "600m"}, "limits": {"memory": "512Mi"}});
    let r = admin.json("POST", pods, &pod("one", sized.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        used("compute").await,
        json!({"limits.memory": "512Mi", "pods": "1", "requests.cpu": "600m"})
    );
    let r = admin.json("POST", pods, &pod("two", sized)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"two\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, \
         used: requests.cpu=600m, limited: requests.cpu=1"
    );
}
