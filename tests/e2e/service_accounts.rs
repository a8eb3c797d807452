//! The ServiceAccount admission plugin against a started server: a new pod runs as `default`
//! with upstream's projected `kube-api-access-*` volume mounted in every container, takes its
//! ServiceAccount's imagePullSecrets, and is refused when its ServiceAccount does not exist.

use crate::support::kubeboot::TestServer;
use serde_json::{Value, json};

const NS: &str = "/api/v1/namespaces/team";

fn pod(name: &str, sa: Option<&str>) -> Value {
    let mut p = json!({"metadata": {"name": name}, "spec": {
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(sa) = sa {
        p["spec"]["serviceAccountName"] = json!(sa);
    }
    p
}

#[tokio::test]
async fn pods_run_as_a_service_account_with_its_token_mounted_as_upstream() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create("/api/v1/namespaces", &json!({"metadata": {"name": "team"}}))
        .await;

    // The default ServiceAccount may be made a moment after the namespace: admission waits.
    let created = admin.create(&format!("{NS}/pods"), &pod("p", None)).await;
    let spec = &created["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    let volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kube-api-access-"))
        })
        .unwrap_or_else(|| panic!("{created}"));
    let name = volume["name"].as_str().unwrap();
    assert_eq!(name.len(), "kube-api-access-".len() + 5);
    assert_eq!(
        volume["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]})
    );
    let mount = json!([{"name": name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]);
    assert_eq!(spec["containers"][0]["volumeMounts"], mount);
    assert_eq!(spec["initContainers"][0]["volumeMounts"], mount);

    // A ServiceAccount that opts out of automounting, with pull secrets.
    admin
        .create(
            &format!("{NS}/serviceaccounts"),
            &json!({"metadata": {"name": "builder"}, "automountServiceAccountToken": false,
                "imagePullSecrets": [{"name": "regcred"}]}),
        )
        .await;
    let created = admin
        .create(&format!("{NS}/pods"), &pod("b", Some("builder")))
        .await;
    assert_eq!(
        created["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}])
    );
    assert!(created["spec"].get("volumes").is_none(), "{created}");
    // The deprecated field names it too.
    let mut legacy = pod("l", None);
    legacy["spec"]["serviceAccount"] = json!("builder");
    let created = admin.create(&format!("{NS}/pods"), &legacy).await;
    assert_eq!(created["spec"]["serviceAccountName"], "builder");

    // A ServiceAccount that does not exist: 403, in upstream's words.
    let r = admin
        .json("POST", &format!("{NS}/pods"), &pod("r", Some("robot")))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"pods "r" is forbidden: error looking up service account team/robot: serviceaccount "robot" not found"#
    );
}
