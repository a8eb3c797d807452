//! What every namespace holds, as kube-controller-manager keeps it upstream: the `default`
//! ServiceAccount and the `kube-root-ca.crt` ConfigMap with the cluster CA, recreated when
//! deleted and restored when changed.

use crate::common::{kubectl_version, ok};
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use serde_json::{Value, json};

const SA: &str = "/api/v1/namespaces/team/serviceaccounts/default";
const CA: &str = "/api/v1/namespaces/team/configmaps/kube-root-ca.crt";

/// The object at `path` once it exists and `ready` holds for it.
async fn until(admin: &Https, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually(path, || async {
        let r = admin.get(path).await.ok()?;
        (r.status == 200 && ready(&r.json())).then(|| r.json())
    })
    .await
}

#[tokio::test]
async fn every_namespace_gets_its_default_service_account_and_the_cluster_ca() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let cluster_ca = std::fs::read_to_string(server.data_dir().join("pki/ca.crt")).unwrap();

    // The system namespaces have both from the start.
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let path = format!("/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt");
        until(&admin, &path, |_| true).await;
        until(
            &admin,
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/default"),
            |_| true,
        )
        .await;
    }

    admin
        .create("/api/v1/namespaces", &json!({"metadata": {"name": "team"}}))
        .await;
    let ca = until(&admin, CA, |_| true).await;
    assert_eq!(ca["data"], json!({"ca.crt": cluster_ca}), "{ca}");
    assert_eq!(
        ca["metadata"]["annotations"]["kubernetes.io/description"],
        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
    );
    let kubectl = kubectl_version("1.32");
    let out = server.kubectl(
        &kubectl,
        &["-n", "team", "get", "serviceaccount", "-o", "name"],
    );
    let names = ok(&out, "kubectl get serviceaccount");
    assert_eq!(names.trim(), "serviceaccount/default");

    // Changed data is restored, other fields kept; a deleted object comes back.
    let r = admin
        .json(
            "PUT",
            CA,
            &json!({
                "metadata": {"name": "kube-root-ca.crt", "labels": {"keep": "me"}},
                "data": {"ca.crt": "not a CA"}
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let restored = until(&admin, CA, |cm| cm["data"]["ca.crt"] == cluster_ca.as_str()).await;
    assert_eq!(restored["metadata"]["labels"]["keep"], "me", "{restored}");
    let uid = restored["metadata"]["uid"].clone();
    assert_eq!(admin.json("DELETE", CA, &json!({})).await.status, 200);
    until(&admin, CA, |cm| cm["metadata"]["uid"] != uid).await;

    let sa_uid = until(&admin, SA, |_| true).await["metadata"]["uid"].clone();
    assert_eq!(admin.json("DELETE", SA, &json!({})).await.status, 200);
    until(&admin, SA, |sa| sa["metadata"]["uid"] != sa_uid).await;
}
