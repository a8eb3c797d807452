//! Pod eviction, as `kubectl drain` uses it: `pods/<name>/eviction` honours the pod's
//! PodDisruptionBudget, decrementing it and recording the pod, and answers 429 with upstream's
//! message and cause when the budget allows nothing.

use crate::common::kubectl_version;
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use serde_json::{Value, json};

const NS: &str = "/api/v1/namespaces/default";
const PDB: &str = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web";

fn eviction(pod: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod}})
}

async fn merge_patch(admin: &Https, path: &str, patch: Value) -> Value {
    let r = admin
        .with_body(
            "PATCH",
            path,
            "application/merge-patch+json",
            patch.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "PATCH {path}: {}", r.body);
    r.json()
}

/// A running, ready pod labelled app=web on node n1.
async fn running_pod(admin: &Https, name: &str) {
    admin
        .create(
            &format!("{NS}/pods"),
            &json!({
                "metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}
            }),
        )
        .await;
    merge_patch(
        admin,
        &format!("{NS}/pods/{name}/status"),
        json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
    )
    .await;
}

/// Sets the budget's status as the disruption controller would.
async fn budget_allows(admin: &Https, allowed: i64) {
    merge_patch(
        admin,
        &format!("{PDB}/status"),
        json!({"status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
            "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}}),
    )
    .await;
}

#[tokio::test]
async fn evictions_honour_the_pods_disruption_budget() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();

    // A pending pod disrupts nothing: it goes at once, budget or not.
    admin
        .create(
            &format!("{NS}/pods"),
            &json!({"metadata": {"name": "pending", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
    let r = admin
        .json(
            "POST",
            &format!("{NS}/pods/pending/eviction"),
            &eviction("pending"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["status"], "Success");
    assert_eq!(
        admin
            .get(&format!("{NS}/pods/pending"))
            .await
            .unwrap()
            .status,
        404
    );

    admin
        .create("/api/v1/nodes", &json!({"metadata": {"name": "n1"}}))
        .await;
    running_pod(&admin, "p1").await;
    running_pod(&admin, "p2").await;
    admin
        .create(
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            &json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        )
        .await;
    budget_allows(&admin, 1).await;

    // A dry run changes neither the budget nor the pod.
    let r = admin
        .json(
            "POST",
            &format!("{NS}/pods/p1/eviction?dryRun=All"),
            &eviction("p1"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pdb = admin.get(PDB).await.unwrap().json();
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1, "{pdb}");
    let p1 = admin.get(&format!("{NS}/pods/p1")).await.unwrap().json();
    assert!(p1["metadata"].get("deletionTimestamp").is_none(), "{p1}");

    let r = admin
        .json("POST", &format!("{NS}/pods/p1/eviction"), &eviction("p1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pdb = admin.get(PDB).await.unwrap().json();
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0, "{pdb}");
    assert!(pdb["status"]["disruptedPods"]["p1"].is_string(), "{pdb}");
    // On a node, the pod waits for its kubelet, marked as the eviction's target.
    let p1 = admin.get(&format!("{NS}/pods/p1")).await.unwrap().json();
    assert!(p1["metadata"]["deletionTimestamp"].is_string(), "{p1}");
    let target = p1["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .unwrap_or_else(|| panic!("{p1}"));
    assert_eq!(target["reason"], "EvictionByEvictionAPI");

    // Nothing left to disrupt: 429, as upstream says it.
    let r = admin
        .json("POST", &format!("{NS}/pods/p2/eviction"), &eviction("p2"))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(
        status["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "DisruptionBudget", "message": "The disruption budget web does not allow evicting pods currently"}])
    );
    assert!(r.headers.get("retry-after").is_none());

    // kubectl drain meets the same refusal, and says so.
    let out = server.kubectl(
        &kubectl_version("1.32"),
        &[
            "drain",
            "n1",
            "--pod-selector=app=web",
            "--force",
            "--timeout=3s",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    let node = admin.get("/api/v1/nodes/n1").await.unwrap().json();
    assert_eq!(
        node["spec"]["unschedulable"], true,
        "drain cordons first: {node}"
    );
}
