//! The built-in admission plugins against a started server, each as upstream's: Priority (the
//! system PriorityClasses exist; pods get their class's priority, an unknown class is refused),
//! DefaultTolerationSeconds, TaintNodesByCondition, LimitRanger (defaults noted in the pod's
//! annotation, maximums refused), DefaultStorageClass, StorageObjectInUseProtection,
//! PersistentVolumeClaimResize, RuntimeClass, DefaultIngressClass,
//! CertificateSubjectRestriction, CertificateApproval and CertificateSigning, and
//! `--enable-admission-plugins` adding AlwaysPullImages, DenyServiceExternalIPs and AlwaysDeny.

use crate::support::kubeboot::TestServer;
use crate::support::users::csr_request;
use crate::support::wait::eventually;
use serde_json::{Value, json};

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["automountServiceAccountToken"] = json!(false);
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "app", "image": "nginx"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn built_in_plugins_default_and_refuse_as_upstream() {
    let mut server =
        TestServer::up(&["--enable-admission-plugins=AlwaysPullImages,DenyServiceExternalIPs"]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "plugins"}}),
        )
        .await;
    let pods = "/api/v1/namespaces/plugins/pods";
    let post = |path: &'static str, body: Value| {
        let admin = admin.clone();
        async move { admin.json("POST", path, &body).await }
    };

    // Priority: the system classes exist; a pod gets its class's value; unknown is refused.
    let classes = eventually("the system PriorityClasses", || async {
        let r = admin
            .get("/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical")
            .await
            .unwrap();
        (r.status == 200).then(|| r.json())
    })
    .await;
    assert_eq!(classes["value"], 2000001000);
    let r = post(
        pods,
        pod(
            "critical",
            json!({"priorityClassName": "system-cluster-critical"}),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(created["spec"]["priority"], 2000000000);
    assert_eq!(created["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    let r = post(pods, pod("unknown", json!({"priorityClassName": "nope"}))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"unknown\" is forbidden: no PriorityClass with name nope was found"
    );

    // DefaultTolerationSeconds and AlwaysPullImages on the pod created above.
    let tolerations = created["spec"]["tolerations"].as_array().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        assert!(
            tolerations.contains(&json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})),
            "{tolerations:?}"
        );
    }
    assert_eq!(
        created["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );

    // TaintNodesByCondition.
    let r = post("/api/v1/nodes", json!({"metadata": {"name": "n1"}})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json()["spec"]["taints"],
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    );

    // LimitRanger: defaults noted in the annotation; a limit over the maximum is refused.
    let r = post(
        "/api/v1/namespaces/plugins/limitranges",
        json!({"metadata": {"name": "limits"}, "spec": {"limits": [{"type": "Container",
            "max": {"memory": "1Gi"}, "defaultRequest": {"cpu": "100m"}, "default": {"cpu": "200m", "memory": "256Mi"}}]}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(pods, pod("ranged", json!({}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ranged = r.json();
    assert_eq!(
        ranged["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}})
    );
    assert_eq!(
        ranged["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app"
    );
    let big = pod(
        "big",
        json!({"containers": [{"name": "app", "image": "nginx",
        "resources": {"limits": {"memory": "2Gi"}}}]}),
    );
    let r = post(pods, big).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"big\" is forbidden: maximum memory usage per Container is 1Gi, but limit is 2Gi"
    );

    // DefaultStorageClass, StorageObjectInUseProtection, PersistentVolumeClaimResize.
    let r = post(
        "/apis/storage.k8s.io/v1/storageclasses",
        json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "example.com/none"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let claim = json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}});
    let r = post("/api/v1/namespaces/plugins/persistentvolumeclaims", claim).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let claim = r.json();
    assert_eq!(claim["spec"]["storageClassName"], "standard");
    assert_eq!(
        claim["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    let r = admin
        .with_body(
            "PATCH",
            "/api/v1/namespaces/plugins/persistentvolumeclaims/data",
            "application/merge-patch+json",
            json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "persistentvolumeclaims \"data\" is forbidden: Only bound persistent volume claims can be expanded"
    );

    // RuntimeClass: overhead and scheduling given; an unknown class is refused.
    let r = post(
        "/apis/node.k8s.io/v1/runtimeclasses",
        json!({"metadata": {"name": "gvisor"}, "handler": "runsc",
            "overhead": {"podFixed": {"cpu": "250m"}},
            "scheduling": {"nodeSelector": {"sandbox": "true"}}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        pods,
        pod("sandboxed", json!({"runtimeClassName": "gvisor"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sandboxed = r.json();
    assert_eq!(sandboxed["spec"]["overhead"], json!({"cpu": "250m"}));
    assert_eq!(
        sandboxed["spec"]["nodeSelector"],
        json!({"sandbox": "true"})
    );
    let r = post(pods, pod("lost", json!({"runtimeClassName": "kata"}))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"lost\" is forbidden: pod rejected: RuntimeClass \"kata\" not found"
    );

    // DefaultIngressClass.
    let r = post(
        "/apis/networking.k8s.io/v1/ingressclasses",
        json!({"metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
            "spec": {"controller": "k8s.io/ingress-nginx"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        "/apis/networking.k8s.io/v1/namespaces/plugins/ingresses",
        json!({"metadata": {"name": "web"}, "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["spec"]["ingressClassName"], "nginx");

    // DenyServiceExternalIPs.
    let r = post(
        "/api/v1/namespaces/plugins/services",
        json!({"metadata": {"name": "outside"}, "spec": {"ports": [{"port": 80}], "externalIPs": ["192.0.2.10"]}}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "services \"outside\" is forbidden: spec.externalIPs is forbidden"
    );

    // CertificateSubjectRestriction: no system:masters through the client signer.
    let r = post(
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        json!({"metadata": {"name": "masters"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"], "request": csr_request("someone", &["system:masters"])}}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "certificatesigningrequests.certificates.k8s.io \"masters\" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
    );

    // CertificateApproval: a user who may update approvals but not approve for the signer.
    let r = post(
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        json!({"metadata": {"name": "alice"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"], "request": csr_request("alice", &[])}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"metadata": {"name": "csr-updater"}, "rules": [{"apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests", "certificatesigningrequests/approval",
                "certificatesigningrequests/status"],
            "verbs": ["get", "update"]}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        json!({"metadata": {"name": "csr-updater"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole", "name": "csr-updater"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let carol = server.as_user("carol", &[]);
    let mut approving = admin
        .get("/apis/certificates.k8s.io/v1/certificatesigningrequests/alice")
        .await
        .unwrap()
        .json();
    approving["status"] = json!({"conditions": [{"type": "Approved", "status": "True",
        "reason": "Test", "message": "approved"}]});
    let r = eventually("RBAC to see carol's binding", || async {
        let r = carol
            .json(
                "PUT",
                "/apis/certificates.k8s.io/v1/certificatesigningrequests/alice/approval",
                &approving,
            )
            .await;
        (r.status != 403 || r.body.contains("signerName")).then_some(r)
    })
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "certificatesigningrequests.certificates.k8s.io \"alice\" is forbidden: user not permitted to approve requests with signerName \"kubernetes.io/kube-apiserver-client\""
    );

    // CertificateSigning: the same user may update the status, but not issue a certificate.
    use base64::Engine;
    let mut signing = admin
        .get("/apis/certificates.k8s.io/v1/certificatesigningrequests/alice")
        .await
        .unwrap()
        .json();
    let issued = server.user_cert("alice", &[]).cert_pem;
    signing["status"]["certificate"] =
        json!(base64::engine::general_purpose::STANDARD.encode(issued));
    let r = carol
        .json(
            "PUT",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/alice/status",
            &signing,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "certificatesigningrequests.certificates.k8s.io \"alice\" is forbidden: user not permitted to sign requests with signerName \"kubernetes.io/kube-apiserver-client\""
    );

    // Priority: one global default, which pods without a class then get.
    let classes = "/apis/scheduling.k8s.io/v1/priorityclasses";
    let r = post(
        classes,
        json!({"metadata": {"name": "default-a"}, "value": 1000, "globalDefault": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        classes,
        json!({"metadata": {"name": "default-b"}, "value": 2000, "globalDefault": true}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "priorityclasses.scheduling.k8s.io \"default-b\" is forbidden: PriorityClass default-a is already marked as default. Only one default can exist"
    );
    let r = post(pods, pod("defaulted", json!({}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let defaulted = r.json();
    assert_eq!(defaulted["spec"]["priorityClassName"], "default-a");
    assert_eq!(defaulted["spec"]["priority"], 1000);

    // LimitRanger's minimum and limit-to-request ratio, both reported at once.
    let r = post(
        "/api/v1/namespaces/plugins/limitranges",
        json!({"metadata": {"name": "floor"}, "spec": {"limits": [{"type": "Container",
            "min": {"cpu": "50m"}, "maxLimitRequestRatio": {"cpu": "2"}}]}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tiny = pod(
        "tiny",
        json!({"containers": [{"name": "app", "image": "nginx",
        "resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": "40m"}}}]}),
    );
    let r = post(pods, tiny).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"tiny\" is forbidden: [minimum cpu usage per Container is 50m, but request is 10m, \
         cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]"
    );
}

#[tokio::test]
async fn always_deny_refuses_every_write() {
    let mut server = TestServer::up(&["--enable-admission-plugins=AlwaysDeny"]);
    server.wait_ready().await;
    let admin = server.admin();
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "refused"}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "namespaces \"refused\" is forbidden: admission control is denying all modifications"
    );
    // Reads are not admission's business.
    let r = admin.get("/api/v1/namespaces/default").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}
