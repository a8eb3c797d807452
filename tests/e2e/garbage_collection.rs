//! Cascading deletion on a standalone `kubeboot up` (built-in controllers, no
//! kube-controller-manager): kubectl delete with `--cascade=foreground`, `background` and
//! `orphan` on owners with dependents, and objects whose owners are gone.

use crate::common::{newest_kubectl, ok};
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use serde_json::{Value, json};

const NS: &str = "/api/v1/namespaces/default";
const APPS: &str = "/apis/apps/v1/namespaces/default";

/// An owner reference to `owner` (a stored object of `api_version`/`kind`).
fn owner_ref(owner: &Value, api_version: &str, kind: &str, block: bool) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": block})
}

fn configmap(name: &str, owners: Vec<Value>) -> Value {
    json!({"metadata": {"name": name, "ownerReferences": owners}})
}

async fn exists(admin: &Https, path: &str) -> bool {
    admin.get(path).await.unwrap().status == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_cascades_in_the_foreground_the_background_or_not_at_all() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let kubectl = newest_kubectl();
    let labels = json!({"app": "web"});

    // Deployment → ReplicaSet → Pods, each owned by the one before and blocking its deletion.
    let deploy = admin
        .create(
            &format!("{APPS}/deployments"),
            &json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        )
        .await;
    let rs = admin
        .create(
            &format!("{APPS}/replicasets"),
            &json!({"metadata": {"name": "web-1", "labels": labels,
                    "ownerReferences": [owner_ref(&deploy, "apps/v1", "Deployment", true)]},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        )
        .await;
    for pod in ["web-1-a", "web-1-b"] {
        admin
            .create(
                &format!("{NS}/pods"),
                &json!({"metadata": {"name": pod, "labels": labels,
                        "ownerReferences": [owner_ref(&rs, "apps/v1", "ReplicaSet", true)]},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
            )
            .await;
    }
    ok(
        &server.kubectl(
            &kubectl,
            &[
                "delete",
                "deployment",
                "web",
                "--cascade=foreground",
                "--timeout=60s",
            ],
        ),
        "kubectl delete --cascade=foreground",
    );
    // kubectl waited for the Deployment, which goes last.
    for path in [
        format!("{APPS}/deployments/web"),
        format!("{APPS}/replicasets/web-1"),
        format!("{NS}/pods/web-1-a"),
        format!("{NS}/pods/web-1-b"),
    ] {
        assert!(!exists(&admin, &path).await, "{path} is still there");
    }

    // Background (kubectl's default): the owner goes at once, its dependents after.
    let owner = admin
        .create(&format!("{NS}/configmaps"), &configmap("owner-bg", vec![]))
        .await;
    admin
        .create(
            &format!("{NS}/configmaps"),
            &configmap("dep-bg", vec![owner_ref(&owner, "v1", "ConfigMap", false)]),
        )
        .await;
    ok(
        &server.kubectl(&kubectl, &["delete", "configmap", "owner-bg"]),
        "kubectl delete",
    );
    eventually("the background dependent to be collected", || async {
        (!exists(&admin, &format!("{NS}/configmaps/dep-bg")).await).then_some(())
    })
    .await;

    // Orphan: the dependent stays, without its reference to the owner.
    let owner = admin
        .create(&format!("{NS}/configmaps"), &configmap("owner-or", vec![]))
        .await;
    admin
        .create(
            &format!("{NS}/configmaps"),
            &configmap("dep-or", vec![owner_ref(&owner, "v1", "ConfigMap", true)]),
        )
        .await;
    ok(
        &server.kubectl(
            &kubectl,
            &[
                "delete",
                "configmap",
                "owner-or",
                "--cascade=orphan",
                "--timeout=60s",
            ],
        ),
        "kubectl delete --cascade=orphan",
    );
    assert!(!exists(&admin, &format!("{NS}/configmaps/owner-or")).await);
    let dep = admin
        .get(&format!("{NS}/configmaps/dep-or"))
        .await
        .unwrap()
        .json();
    assert_eq!(dep["metadata"].get("ownerReferences"), None, "{dep}");

    // An object whose only owner never existed is collected; one with a live owner beside a
    // gone one only loses the dangling reference.
    let ghost =
        json!({"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}});
    let live = admin
        .create(&format!("{NS}/configmaps"), &configmap("live", vec![]))
        .await;
    admin
        .create(
            &format!("{NS}/configmaps"),
            &configmap(
                "orphaned",
                vec![owner_ref(&ghost, "v1", "ConfigMap", false)],
            ),
        )
        .await;
    admin
        .create(
            &format!("{NS}/configmaps"),
            &configmap(
                "half",
                vec![
                    owner_ref(&ghost, "v1", "ConfigMap", false),
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "live",
                        "uid": live["metadata"]["uid"]}),
                ],
            ),
        )
        .await;
    eventually("the orphaned dependent to be collected", || async {
        (!exists(&admin, &format!("{NS}/configmaps/orphaned")).await).then_some(())
    })
    .await;
    let refs = eventually("the dangling reference to be removed", || async {
        let half = admin
            .get(&format!("{NS}/configmaps/half"))
            .await
            .ok()?
            .json();
        let refs = half["metadata"]["ownerReferences"].as_array()?.clone();
        (refs.len() == 1).then_some(refs)
    })
    .await;
    assert_eq!(refs[0]["name"], "live");
}
