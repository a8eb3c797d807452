//! The access reviews against a started server: `kubectl auth can-i` (SelfSubjectAccessReview)
//! and `--list` (SelfSubjectRulesReview) for a user bound to `view` in one namespace,
//! SubjectAccessReview for another user, and LocalSubjectAccessReview's namespace rule.

use crate::common::newest_kubectl;
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use serde_json::json;

const AUTHZ: &str = "/apis/authorization.k8s.io/v1";

#[tokio::test]
async fn kubectl_auth_can_i_answers_from_rbac_for_a_user_bound_to_view() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    for ns in ["x", "y"] {
        admin
            .create("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
            .await;
    }
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/x/rolebindings",
            &json!({"metadata": {"name": "alice-view"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}),
        )
        .await;
    let kubeconfig = server.user_kubeconfig("alice", &[]);
    let kubectl = newest_kubectl();
    let can_i = |args: &[&str]| {
        let out = std::process::Command::new(&kubectl)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("auth")
            .arg("can-i")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    eventually("alice's binding to take effect", || async {
        (can_i(&["get", "pods", "-n", "x"]) == "yes").then_some(())
    })
    .await;
    let matrix = [
        (&["get", "pods", "-n", "x"][..], "yes"),
        (&["list", "pods", "-n", "x"], "yes"),
        (&["watch", "deployments.apps", "-n", "x"], "yes"),
        (&["create", "pods", "-n", "x"], "no"),
        (&["delete", "configmaps", "-n", "x"], "no"),
        (&["get", "secrets", "-n", "x"], "no"),
        (&["get", "pods", "-n", "y"], "no"),
        (&["list", "pods", "--all-namespaces"], "no"),
        (&["get", "/healthz"], "yes"),
    ];
    for (args, want) in matrix {
        assert_eq!(can_i(args), want, "kubectl auth can-i {args:?}");
    }

    // --list: what view grants in x, and the discovery paths.
    let out = std::process::Command::new(&kubectl)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["auth", "can-i", "--list", "-n", "x"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{list}");
    let row = |resource: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(resource))
            .unwrap_or_else(|| panic!("no {resource} row in\n{list}"))
            .to_string()
    };
    assert!(row("pods").contains("[get list watch]"), "{list}");
    assert!(row("selfsubjectaccessreviews.authorization.k8s.io").contains("[create]"));
    assert!(list.lines().any(|l| l.contains("[/api/*]")), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("secrets ")), "{list}");

    // SubjectAccessReview for alice, asked by the admin.
    let sar = |verb: &str, resource: &str, ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "alice", "resourceAttributes": {"verb": verb, "resource": resource, "namespace": ns}}})
    };
    let r = admin
        .json(
            "POST",
            &format!("{AUTHZ}/subjectaccessreviews"),
            &sar("list", "pods", "x"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["status"], json!({"allowed": true}));
    let r = admin
        .json(
            "POST",
            &format!("{AUTHZ}/subjectaccessreviews"),
            &sar("delete", "pods", "x"),
        )
        .await;
    assert_eq!(r.json()["status"]["allowed"], false);
    // Nobody to ask about, or neither kind of attributes: invalid, in upstream's words.
    let r = admin
        .json(
            "POST",
            &format!("{AUTHZ}/subjectaccessreviews"),
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["message"].as_str().unwrap().ends_with(
            "spec.user: Invalid value: \"\": at least one of user or group must be specified"
        ),
        "{}",
        r.body
    );
    // A local review must ask about its own namespace.
    let local = |ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": "x"},
            "spec": {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": ns}}})
    };
    let path = format!("{AUTHZ}/namespaces/x/localsubjectaccessreviews");
    let r = admin.json("POST", &path, &local("x")).await;
    assert_eq!(
        (r.status, r.json()["status"]["allowed"].clone()),
        (201, json!(true))
    );
    let r = admin.json("POST", &path, &local("y")).await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (
            400,
            json!("spec.resourceAttributes.namespace must match namespace: x")
        )
    );
}
