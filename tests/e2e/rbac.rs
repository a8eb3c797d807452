//! RBAC against a started server: upstream's bootstrap policy served as its golden files say,
//! decisions from Roles and bindings with upstream's Forbidden messages, aggregated
//! ClusterRoles kept up to date, and escalation refused.

use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use serde_json::{Value, json};

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";

fn golden(file: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/testdata/rbac/{file}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let list: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    list["items"].as_array().unwrap().clone()
}

async fn items(admin: &Https, path: &str) -> Vec<Value> {
    let r = admin.get(path).await.unwrap();
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()["items"].as_array().unwrap().clone()
}

/// What the golden files fix of an object: its identity, labels, annotations and grants.
fn essence(obj: &Value) -> Value {
    let m = &obj["metadata"];
    let mut e = json!({
        "name": m["name"], "namespace": m.get("namespace").cloned().unwrap_or(Value::Null),
        "labels": m["labels"], "annotations": m["annotations"],
        "roleRef": obj.get("roleRef").cloned().unwrap_or(Value::Null),
        "subjects": obj.get("subjects").cloned().unwrap_or(Value::Null),
        "aggregationRule": obj.get("aggregationRule").cloned().unwrap_or(Value::Null),
    });
    // Aggregated roles' rules are the aggregation controller's, not the policy's.
    if obj.get("aggregationRule").is_none_or(Value::is_null) {
        e["rules"] = obj.get("rules").cloned().unwrap_or(Value::Null);
    }
    e
}

async fn status_of(client: &Https, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = client.json(method, path, body).await;
    let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

#[tokio::test]
async fn the_served_bootstrap_policy_is_upstreams_golden_data() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let checks = [
        ("clusterroles", vec!["cluster-roles", "controller-roles"]),
        (
            "clusterrolebindings",
            vec!["cluster-role-bindings", "controller-role-bindings"],
        ),
        ("roles", vec!["namespace-roles"]),
        ("rolebindings", vec!["namespace-role-bindings"]),
    ];
    for (resource, files) in checks {
        let served: Vec<Value> = items(&admin, &format!("{RBAC}/{resource}")).await;
        let expected: Vec<Value> = files.into_iter().flat_map(golden).collect();
        assert!(!expected.is_empty());
        for want in &expected {
            let name = &want["metadata"]["name"];
            let ns = &want["metadata"]["namespace"];
            let got = served
                .iter()
                .find(|o| {
                    &o["metadata"]["name"] == name
                        && (ns.is_null() || &o["metadata"]["namespace"] == ns)
                })
                .unwrap_or_else(|| panic!("{resource} {name} is not served"));
            assert_eq!(essence(got), essence(want), "{resource} {name}");
        }
    }
}

#[tokio::test]
async fn roles_and_bindings_decide_with_upstreams_messages_and_escalation_is_refused() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    for ns in ["x", "y"] {
        admin
            .create("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
            .await;
    }

    // No credentials: health yes, secrets no.
    let anonymous = server.anonymous();
    assert_eq!(anonymous.get("/livez").await.unwrap().status, 200);
    let r = anonymous.get("/api/v1/secrets").await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"secrets is forbidden: User "system:anonymous" cannot list resource "secrets" in API group "" at the cluster scope"#
    );

    // alice, no bindings: only what every authenticated user may.
    let alice = server.as_user("alice", &[]);
    let r = alice.get("/api/v1/secrets").await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" at the cluster scope"#
    );
    assert_eq!(
        alice.get("/api").await.unwrap().status,
        200,
        "system:discovery"
    );

    // Bound to view in x.
    admin
        .create(
            &format!("{RBAC}/namespaces/x/rolebindings"),
            &json!({"metadata": {"name": "alice-view"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}),
        )
        .await;
    eventually("alice's binding to take effect", || async {
        (alice.get("/api/v1/namespaces/x/pods").await.ok()?.status == 200).then_some(())
    })
    .await;
    assert_eq!(
        alice
            .get("/api/v1/namespaces/x/configmaps")
            .await
            .unwrap()
            .status,
        200
    );
    let r = alice.get("/api/v1/namespaces/x/secrets").await.unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        r#"secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "x""#
    );
    assert_eq!(
        alice.get("/api/v1/namespaces/y/pods").await.unwrap().status,
        403
    );
    let (code, _) = status_of(
        &alice,
        "POST",
        "/api/v1/namespaces/x/configmaps",
        &json!({"metadata": {"name": "c"}}),
    )
    .await;
    assert_eq!(code, 403);

    // A binding to a role that does not exist says so in the reason.
    admin
        .create(
            &format!("{RBAC}/namespaces/y/rolebindings"),
            &json!({"metadata": {"name": "alice-ghost"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ghost"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}),
        )
        .await;
    let r = eventually("the ghost binding to be indexed", || async {
        let r = alice.get("/api/v1/namespaces/y/pods").await.ok()?;
        r.body.contains("ghost").then_some(r)
    })
    .await;
    assert!(
        r.json()["message"].as_str().unwrap().ends_with(
            r#"in the namespace "y": RBAC: role.rbac.authorization.k8s.io "ghost" not found"#
        ),
        "{}",
        r.body
    );

    // alice may create ClusterRoleBindings, but not bind what she does not hold.
    admin
        .create(
            &format!("{RBAC}/clusterroles"),
            &json!({"metadata": {"name": "binder"},
                "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings", "clusterroles"], "verbs": ["create"]}]}),
        )
        .await;
    admin
        .create(
            &format!("{RBAC}/clusterrolebindings"),
            &json!({"metadata": {"name": "alice-binder"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "binder"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}),
        )
        .await;
    let escalate = json!({"metadata": {"name": "alice-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]});
    let (code, status) = eventually("alice's binder role to take effect", || async {
        let (code, status) = status_of(
            &alice,
            "POST",
            &format!("{RBAC}/clusterrolebindings"),
            &escalate,
        )
        .await;
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("attempting to grant"))
            .then_some((code, status))
    })
    .await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "clusterrolebindings.rbac.authorization.k8s.io \"alice-admin\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}"
    );
    // Nor write a role granting more than she holds.
    let (code, status) = status_of(
        &alice,
        "POST",
        &format!("{RBAC}/clusterroles"),
        &json!({"metadata": {"name": "secrets-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
    )
    .await;
    assert_eq!(code, 403, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .ends_with("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"),
        "{status}"
    );
    // The admin may.
    assert_eq!(
        status_of(
            &admin,
            "POST",
            &format!("{RBAC}/clusterrolebindings"),
            &escalate
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn aggregated_cluster_roles_gather_the_roles_their_selectors_match() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let view = eventually("view to be aggregated", || async {
        let view = admin
            .get(&format!("{RBAC}/clusterroles/view"))
            .await
            .ok()?
            .json();
        view["rules"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
            .then_some(view)
    })
    .await;
    let grants_pods = view["rules"].as_array().unwrap().iter().any(|r| {
        r["resources"]
            .as_array()
            .is_some_and(|res| res.contains(&json!("pods")))
    });
    assert!(grants_pods, "{view}");

    admin
        .create(
            &format!("{RBAC}/clusterroles"),
            &json!({"metadata": {"name": "widget-viewer", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}]}),
        )
        .await;
    for role in ["view", "edit", "admin"] {
        eventually(&format!("{role} to gather widgets"), || async {
            let r = admin
                .get(&format!("{RBAC}/clusterroles/{role}"))
                .await
                .ok()?
                .json();
            r["rules"]
                .as_array()?
                .iter()
                .any(|rule| rule["resources"] == json!(["widgets"]))
                .then_some(())
        })
        .await;
    }
}
