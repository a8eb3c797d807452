//! Node authorization and NodeRestriction against a started server: a kubelet's certificate
//! (`O=system:nodes, CN=system:node:n1`) reads what the pods bound to n1 use and nothing else of
//! those kinds, and writes only its own Node and its own pods' status.

use crate::support::kubeboot::TestServer;
use crate::support::users::csr_request;
use crate::support::wait::eventually;
use serde_json::{Value, json};

const NS: &str = "/api/v1/namespaces/default";

fn pod(name: &str, node: &str, secret_volume: &str, env_secret: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "nodeName": node,
        "serviceAccountName": "default",
        "volumes": [{"name": "v", "secret": {"secretName": secret_volume}}],
        "containers": [{"name": "c", "image": "busybox",
            "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": env_secret, "key": "k"}}}]}]}})
}

#[tokio::test]
async fn a_kubelet_reads_and_writes_only_what_its_node_holds() {
    let mut server = TestServer::up(&["--enable-admission-plugins=NodeRestriction"]);
    server.wait_ready().await;
    let admin = server.admin();
    for name in ["s1", "s1-env", "s2", "s2-env"] {
        admin
            .create(
                &format!("{NS}/secrets"),
                &json!({"metadata": {"name": name}, "stringData": {"k": "v"}}),
            )
            .await;
    }
    for node in ["n1", "n2"] {
        admin
            .create("/api/v1/nodes", &json!({"metadata": {"name": node}}))
            .await;
    }
    admin
        .create(&format!("{NS}/pods"), &pod("p1", "n1", "s1", "s1-env"))
        .await;
    admin
        .create(&format!("{NS}/pods"), &pod("p2", "n2", "s2", "s2-env"))
        .await;

    let kubelet = server.as_user("system:node:n1", &["system:nodes"]);
    eventually("the pods to reach the node graph", || async {
        (kubelet.get(&format!("{NS}/secrets/s1")).await.ok()?.status == 200).then_some(())
    })
    .await;
    assert_eq!(
        kubelet
            .get(&format!("{NS}/secrets/s1-env"))
            .await
            .unwrap()
            .status,
        200
    );
    let r = kubelet.get(&format!("{NS}/secrets/s2")).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"secrets "s2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#
    );
    assert_eq!(
        kubelet.get(&format!("{NS}/secrets")).await.unwrap().status,
        403
    );

    // Its own Node only.
    assert_eq!(kubelet.get("/api/v1/nodes/n1").await.unwrap().status, 200);
    assert_eq!(kubelet.get("/api/v1/nodes/n2").await.unwrap().status, 403);
    let label = json!({"metadata": {"labels": {"seen": "yes"}}});
    let patch = |path: &'static str| {
        let kubelet = &kubelet;
        let label = label.clone();
        async move {
            kubelet
                .with_body(
                    "PATCH",
                    path,
                    "application/merge-patch+json",
                    label.to_string(),
                )
                .await
        }
    };
    assert_eq!(patch("/api/v1/nodes/n1").await.status, 200);
    let r = patch("/api/v1/nodes/n2").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2""#
    );

    // Its own pods' status only.
    let status = json!({"status": {"phase": "Running"}});
    let r = kubelet
        .with_body(
            "PATCH",
            &format!("{NS}/pods/p1/status"),
            "application/merge-patch+json",
            status.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = kubelet
        .with_body(
            "PATCH",
            &format!("{NS}/pods/p2/status"),
            "application/merge-patch+json",
            status.to_string(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"pods "p2" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself"#
    );

    // Tokens for the service accounts of its pods only.
    let p1_uid =
        admin.get(&format!("{NS}/pods/p1")).await.unwrap().json()["metadata"]["uid"].clone();
    let token = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p1", "uid": p1_uid}}});
    crate::support::wait::answers(&admin, &format!("{NS}/serviceaccounts/default"), 200).await;
    let r = kubelet
        .json(
            "POST",
            &format!("{NS}/serviceaccounts/default/token"),
            &token,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = kubelet
        .json("POST", &format!("{NS}/serviceaccounts/other/token"), &token)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn a_kubelets_lists_and_watches_are_scoped_as_upstreams_authorize_with_selectors() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    for node in ["n1", "n2"] {
        admin
            .create("/api/v1/nodes", &json!({"metadata": {"name": node}}))
            .await;
    }
    admin
        .create(
            &format!("{NS}/secrets"),
            &json!({"metadata": {"name": "s1"}, "stringData": {"k": "v"}}),
        )
        .await;
    admin
        .create(&format!("{NS}/pods"), &pod("p1", "n1", "s1", "s1"))
        .await;
    admin
        .create(&format!("{NS}/pods"), &pod("p2", "n2", "s1", "s1"))
        .await;
    for (name, node) in [("va1", "n1"), ("va2", "n2")] {
        admin
            .create(
                "/apis/storage.k8s.io/v1/volumeattachments",
                &json!({"metadata": {"name": name}, "spec": {"attacher": "csi.example.com",
                    "nodeName": node, "source": {"persistentVolumeName": "pv"}}}),
            )
            .await;
    }
    let kubelet = server.as_user("system:node:n1", &["system:nodes"]);
    let status = |path: String| {
        let kubelet = &kubelet;
        async move { kubelet.get(&path).await.unwrap() }
    };
    eventually("p1 to reach the node graph", || async {
        (status(format!("{NS}/pods/p1")).await.status == 200).then_some(())
    })
    .await;

    // Pods: its own by name or by a spec.nodeName selector naming itself, nothing else.
    assert_eq!(status(format!("{NS}/pods/p2")).await.status, 403);
    let r = status("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1".into()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<Value> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("p1")]);
    let r = status("/api/v1/pods?fieldSelector=spec.nodeName%3Dn2".into()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = status("/api/v1/pods".into()).await;
    assert_eq!(
        r.json()["message"],
        r#"pods is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" at the cluster scope: can only list/watch pods with spec.nodeName field selector"#
    );

    // Nodes: its own, also by a metadata.name selector; not all of them.
    let r = status("/api/v1/nodes?fieldSelector=metadata.name%3Dn1".into()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = status("/api/v1/nodes".into()).await;
    assert_eq!(
        r.json()["message"],
        r#"nodes is forbidden: User "system:node:n1" cannot list resource "nodes" in API group "" at the cluster scope: node 'n1' cannot read all nodes, only its own Node object"#
    );

    // A secret its pod uses may be listed and watched by name, as the kubelet's watch-based
    // secret manager does; a write is refused.
    let r = status(format!("{NS}/secrets?fieldSelector=metadata.name%3Ds1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = status(format!(
        "{NS}/secrets?fieldSelector=metadata.name%3Ds1&watch=true&timeoutSeconds=1"
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = kubelet
        .json("DELETE", &format!("{NS}/secrets/s1"), &json!({}))
        .await;
    assert_eq!(
        r.json()["message"],
        r#"secrets "s1" is forbidden: User "system:node:n1" cannot delete resource "secrets" in API group "" in the namespace "default": can only read resources of this type"#
    );

    // VolumeAttachments naming it; its own CSINode; leases only in kube-node-lease.
    let va = "/apis/storage.k8s.io/v1/volumeattachments";
    assert_eq!(status(format!("{va}/va1")).await.status, 200);
    assert_eq!(status(format!("{va}/va2")).await.status, 403);
    let csinode = |name: &str| json!({"metadata": {"name": name}, "spec": {"drivers": []}});
    let r = kubelet
        .json("POST", "/apis/storage.k8s.io/v1/csinodes", &csinode("n1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    admin
        .create("/apis/storage.k8s.io/v1/csinodes", &csinode("n2"))
        .await;
    assert_eq!(
        status("/apis/storage.k8s.io/v1/csinodes/n1".into())
            .await
            .status,
        200
    );
    let r = status("/apis/storage.k8s.io/v1/csinodes/n2".into()).await;
    assert_eq!(
        r.json()["message"],
        r#"csinodes.storage.k8s.io "n2" is forbidden: User "system:node:n1" cannot get resource "csinodes" in API group "storage.k8s.io" at the cluster scope: can only access CSINode with the same name as the requesting node"#
    );
    let r = status("/apis/coordination.k8s.io/v1/namespaces/default/leases/n1".into()).await;
    assert_eq!(
        r.json()["message"],
        r#"leases.coordination.k8s.io "n1" is forbidden: User "system:node:n1" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "default": can only access leases in the "kube-node-lease" system namespace"#
    );
}

#[tokio::test]
async fn node_restriction_keeps_a_kubelet_to_its_own_labels_taints_pods_and_names() {
    let mut server = TestServer::up(&["--enable-admission-plugins=NodeRestriction"]);
    server.wait_ready().await;
    let admin = server.admin();
    let kubelet = server.as_user("system:node:n1", &["system:nodes"]);
    let message = |r: crate::support::https::Reply| {
        assert_eq!(r.status, 403, "{}", r.body);
        r.json()["message"].as_str().unwrap().to_string()
    };

    // Registering: kubelet labels yes, node-restriction and other kubernetes.io labels no.
    let node = |labels: Value| json!({"metadata": {"name": "n1", "labels": labels}});
    let r = kubelet
        .json(
            "POST",
            "/api/v1/nodes",
            &node(json!({"node-restriction.kubernetes.io/pool": "a", "node-role.kubernetes.io/control-plane": ""})),
        )
        .await;
    assert_eq!(
        message(r),
        r#"nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane"#
    );
    let r = kubelet
        .json(
            "POST",
            "/api/v1/nodes",
            &node(json!({"kubernetes.io/hostname": "n1", "node.kubernetes.io/exclude-from-external-load-balancers": "", "team": "x"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let n1_uid = r.json()["metadata"]["uid"].clone();

    // Updating: its taints and restricted labels stay as they are.
    let patch = |path: String, body: Value| {
        let kubelet = &kubelet;
        async move {
            kubelet
                .with_body(
                    "PATCH",
                    &path,
                    "application/merge-patch+json",
                    body.to_string(),
                )
                .await
        }
    };
    let r = patch(
        "/api/v1/nodes/n1".into(),
        json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
    )
    .await;
    assert_eq!(
        message(r),
        r#"nodes "n1" is forbidden: node "n1" is not allowed to modify taints"#
    );
    let r = patch(
        "/api/v1/nodes/n1".into(),
        json!({"metadata": {"labels": {"kubernetes.io/role": "master"}}}),
    )
    .await;
    assert_eq!(
        message(r),
        r#"nodes "n1" is forbidden: is not allowed to modify labels: kubernetes.io/role"#
    );
    let r = patch(
        "/api/v1/nodes/n1".into(),
        json!({"metadata": {"labels": {"team": "y", "kubernetes.io/hostname": "n1"}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Mirror pods: bound to and controlled by the node, referencing no secret.
    let mirror = |owner_uid: &Value, secret: bool| {
        let mut pod = json!({"metadata": {"name": "static-web-n1",
            "annotations": {"kubernetes.io/config.mirror": "hash"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1",
                "uid": owner_uid, "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}});
        if secret {
            pod["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": "x"}}]);
        }
        pod
    };
    let r = kubelet
        .json(
            "POST",
            &format!("{NS}/pods"),
            &mirror(&json!("not-the-uid"), false),
        )
        .await;
    assert!(message(r).ends_with(&format!(
        "node n1 UID mismatch: expected not-the-uid got {}",
        n1_uid.as_str().unwrap()
    )));
    let r = kubelet
        .json("POST", &format!("{NS}/pods"), &mirror(&n1_uid, true))
        .await;
    assert_eq!(
        message(r),
        r#"pods "static-web-n1" is forbidden: node "n1" can not create pods that reference secrets"#
    );
    let r = kubelet
        .json("POST", &format!("{NS}/pods"), &mirror(&n1_uid, false))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Evictions of its own pods only.
    admin
        .create("/api/v1/nodes", &json!({"metadata": {"name": "n2"}}))
        .await;
    admin
        .create(&format!("{NS}/pods"), &pod("p2", "n2", "s", "s"))
        .await;
    let eviction =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p2"}});
    let r = kubelet
        .json("POST", &format!("{NS}/pods/p2/eviction"), &eviction)
        .await;
    let m = message(r);
    assert!(
        m.ends_with("node n1 can only evict pods with spec.nodeName set to itself"),
        "{m}"
    );

    // Its own Lease and CSINode by name; a node CSR only for itself.
    let lease = |name: &str| json!({"metadata": {"name": name}});
    let r = kubelet
        .json(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            &lease("n2"),
        )
        .await;
    assert!(
        message(r)
            .ends_with("can only access node lease with the same name as the requesting node")
    );
    let r = kubelet
        .json(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            &lease("n1"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let request = |cn: &str| {
        json!({"metadata": {"generateName": "csr-"}, "spec": {
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"], "request": csr_request(cn, &[])}})
    };
    let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let r = kubelet.json("POST", csrs, &request("system:node:n2")).await;
    assert!(message(r).ends_with("can only create a node CSR with CN=system:node:n1"),);
    let mut claimed = request("system:node:n1");
    claimed["spec"]["username"] = json!("admin");
    claimed["spec"]["groups"] = json!(["system:masters"]);
    let r = kubelet.json("POST", csrs, &claimed).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // The requester is who sent it, whatever the request claimed, as upstream's strategy sets it.
    let spec = &r.json()["spec"];
    assert_eq!(spec["username"], "system:node:n1");
    assert_eq!(
        spec["groups"],
        json!(["system:nodes", "system:authenticated"])
    );
    // Any name will do for a CSR, as kubelets' node-csr-<base64url hash> names need.
    let mut named = request("system:node:n1");
    named["metadata"] = json!({"name": "node-csr-GVmV_D0OyJ6JRed6mMESMj1jH-sA_0dqs4Dou3fyCHw"});
    let r = kubelet.json("POST", csrs, &named).await;
    assert_eq!(r.status, 201, "{}", r.body);
}
