//! Pod binding, as a scheduler uses it: `pods/<name>/binding` and the legacy `bindings`
//! resource set `spec.nodeName` once, with upstream's conditions, errors and dry run.

use crate::common::{kubectl_version, ok};
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use serde_json::{Value, json};

const PODS: &str = "/api/v1/namespaces/default/pods";

fn binding(pod: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod, "annotations": {"scheduler.example/score": "7"}},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    })
}

async fn pod(admin: &Https, name: &str) -> Value {
    admin.get(&format!("{PODS}/{name}")).await.unwrap().json()
}

async fn new_pod(admin: &Https, name: &str) {
    admin
        .create(
            PODS,
            &json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
}

#[tokio::test]
async fn a_pod_is_bound_once_through_its_binding_subresource_or_the_bindings_resource() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    new_pod(&admin, "p").await;

    // Dry run: accepted, nothing written.
    let r = admin
        .json(
            "POST",
            &format!("{PODS}/p/binding?dryRun=All"),
            &binding("p", "n1"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(pod(&admin, "p").await["spec"].get("nodeName").is_none());

    let r = admin
        .json("POST", &format!("{PODS}/p/binding"), &binding("p", "n1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    );
    let bound = pod(&admin, "p").await;
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(
        bound["metadata"]["annotations"]["scheduler.example/score"],
        "7"
    );
    let scheduled: Vec<&Value> = bound["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "PodScheduled")
        .collect();
    assert_eq!(scheduled.len(), 1, "{bound}");
    assert_eq!(scheduled[0]["status"], "True");
    // Written straight to storage, as upstream: no field manager records the binding.
    let managers: Vec<&Value> = bound["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("subresource").is_some())
        .collect();
    assert!(managers.is_empty(), "{bound}");

    // Once only.
    let r = admin
        .json("POST", &format!("{PODS}/p/binding"), &binding("p", "n2"))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let status = r.json();
    assert_eq!(
        status["message"],
        r#"Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1""#
    );
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["details"],
        json!({"name": "p", "kind": "pods/binding"})
    );

    // Upstream's other refusals.
    let r = admin
        .json("POST", &format!("{PODS}/p/binding"), &binding("q", "n1"))
        .await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (
            400,
            json!("name in URL does not match name in Binding object")
        )
    );
    new_pod(&admin, "q").await;
    let mut invalid = binding("q", "");
    invalid["target"]["kind"] = json!("Pod");
    let r = admin
        .json("POST", &format!("{PODS}/q/binding"), &invalid)
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    let status = r.json();
    assert_eq!(
        status["message"],
        r#"[target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", target.name: Required value]"#
    );
    assert!(status.get("reason").is_none(), "{status}");
    let mut stale = binding("q", "n1");
    stale["metadata"]["uid"] = json!("not-the-uid");
    let r = admin
        .json("POST", &format!("{PODS}/q/binding"), &stale)
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = admin
        .json(
            "POST",
            &format!("{PODS}/nope/binding"),
            &binding("nope", "n1"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (404, json!(r#"pods "nope" not found"#))
    );

    // The legacy resource, as `kubectl create -f` of a Binding posts it.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("binding.json");
    std::fs::write(&manifest, binding("q", "n2").to_string()).unwrap();
    let out = server.kubectl(
        &kubectl_version("1.32"),
        &["-n", "default", "create", "-f", manifest.to_str().unwrap()],
    );
    // kubectl names what the server answered: upstream's Status, which has no name.
    assert_eq!(
        ok(&out, "kubectl create -f binding").trim(),
        "status/<unknown> created"
    );
    assert_eq!(pod(&admin, "q").await["spec"]["nodeName"], "n2");

    // Both are in discovery, create-only.
    let v1 = admin.get("/api/v1").await.unwrap().json();
    for name in ["bindings", "pods/binding"] {
        let resource = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} in discovery"));
        assert_eq!(resource["kind"], "Binding");
        assert_eq!(resource["verbs"], json!(["create"]));
    }
}
