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

/// Without the quota controller the test writes the status itself, as the controller would.
#[tokio::test]
async fn quotas_limit_what_their_status_names_and_scopes_select_pods() {
    let mut server = TestServer::up(&["--builtin-controllers=false"]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "teams"}}),
        )
        .await;
    admin
        .create(
            "/api/v1/namespaces/teams/serviceaccounts",
            &json!({"metadata": {"name": "default"}}),
        )
        .await;
    admin
        .create(
            QUOTAS,
            &json!({"metadata": {"name": "scoped"},
                "spec": {"hard": {"pods": "1"}, "scopes": ["BestEffort"]}}),
        )
        .await;
    let pods = "/api/v1/namespaces/teams/pods";
    let best_effort = |name: &str| pod(name, json!({}));
    let set_status = |status: Value| {
        let admin = admin.clone();
        async move {
            let path = format!("{QUOTAS}/scoped/status");
            let mut q = admin.get(&path).await.unwrap().json();
            q["status"] = status;
            let r = admin.json("PUT", &path, &q).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    };

    // Uncounted, the quota limits nothing: its limits are those its status names.
    let r = admin.json("POST", pods, &best_effort("early")).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // A status naming a limit without its usage refuses what it tracks.
    set_status(json!({"hard": {"pods": "1"}})).await;
    let r = admin.json("POST", pods, &best_effort("a")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"a\" is forbidden: status unknown for quota: scoped, resources: pods"
    );

    // Counted: a pod outside the BestEffort scope is neither limited nor charged.
    set_status(json!({"hard": {"pods": "1"}, "used": {"pods": "0"}})).await;
    let r = admin
        .json(
            "POST",
            pods,
            &pod("sized", json!({"requests": {"cpu": "100m"}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let used = || async {
        admin.get(&format!("{QUOTAS}/scoped")).await.unwrap().json()["status"]["used"].clone()
    };
    assert_eq!(used().await, json!({"pods": "0"}));
    let r = admin.json("POST", pods, &best_effort("b")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(used().await, json!({"pods": "1"}));
    let r = admin.json("POST", pods, &best_effort("c")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"c\" is forbidden: exceeded quota: scoped, requested: pods=1, used: pods=1, limited: pods=1"
    );
}
