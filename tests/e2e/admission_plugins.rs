//! The built-in admission plugins against a started server, each as upstream's: Priority (the
//! system PriorityClasses exist; pods get their class's priority, an unknown class is refused),
//! DefaultTolerationSeconds, TaintNodesByCondition, LimitRanger (defaults noted in the pod's
//! annotation, maximums refused), DefaultStorageClass, StorageObjectInUseProtection,
//! PersistentVolumeClaimResize, RuntimeClass, DefaultIngressClass,
//! CertificateSubjectRestriction, CertificateApproval and CertificateSigning, and
//! `--enable-admission-plugins` adding AlwaysPullImages, DenyServiceExternalIPs, AlwaysDeny,
//! PodNodeSelector and EventRateLimit (configured by `--admission-control-config-file`),
//! NamespaceAutoProvision, NamespaceExists, ExtendedResourceToleration,
//! LimitPodHardAntiAffinityTopology, PodTolerationRestriction,
//! OwnerReferencesPermissionEnforcement and ImagePolicyWebhook (a backend started by the test).

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

/// An AdmissionConfiguration in `dir` configuring `plugin` with `configuration` (YAML, indented
/// under `configuration:`); the flag naming it.
fn admission_config(dir: &std::path::Path, plugin: &str, configuration: &str) -> String {
    let path = dir.join("admission.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
             - name: {plugin}\n  configuration:\n{configuration}"
        ),
    )
    .unwrap();
    format!("--admission-control-config-file={}", path.display())
}

#[tokio::test]
async fn pod_node_selector_gives_pods_their_namespaces_selector_and_keeps_them_to_its_whitelist() {
    let dir = tempfile::tempdir().unwrap();
    let config = admission_config(
        dir.path(),
        "PodNodeSelector",
        "    podNodeSelectorPluginConfig:\n      clusterDefaultNodeSelector: tier=general\n      \
         restricted: env=prod\n",
    );
    let mut server = TestServer::up(&["--enable-admission-plugins=PodNodeSelector", &config]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "plain"}}),
        )
        .await;
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "restricted",
                "annotations": {"scheduler.alpha.kubernetes.io/node-selector": "env=prod"}}}),
        )
        .await;

    // A namespace without the annotation: the cluster default is added.
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/plain/pods",
            &pod("p", json!({"nodeSelector": {"disk": "ssd"}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json()["spec"]["nodeSelector"],
        json!({"disk": "ssd", "tier": "general"})
    );

    // The namespace's own selector, within its whitelist.
    let pods = "/api/v1/namespaces/restricted/pods";
    let r = admin.json("POST", pods, &pod("ok", json!({}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["spec"]["nodeSelector"], json!({"env": "prod"}));
    // A conflicting selector, and one outside the whitelist, are forbidden as upstream words it.
    let r = admin
        .json(
            "POST",
            pods,
            &pod("dev", json!({"nodeSelector": {"env": "dev"}})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"dev\" is forbidden: pod node label selector conflicts with its namespace node label selector"
    );
    let r = admin
        .json(
            "POST",
            pods,
            &pod("ssd", json!({"nodeSelector": {"disk": "ssd"}})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"ssd\" is forbidden: pod node label selector labels conflict with its namespace whitelist"
    );
}

#[tokio::test]
async fn event_rate_limit_refuses_events_over_a_namespaces_burst_with_429() {
    let dir = tempfile::tempdir().unwrap();
    let config = admission_config(
        dir.path(),
        "EventRateLimit",
        "    apiVersion: eventratelimit.admission.k8s.io/v1alpha1\n    kind: Configuration\n    \
         limits:\n    - type: Namespace\n      qps: 1\n      burst: 3\n",
    );
    let mut server = TestServer::up(&["--enable-admission-plugins=EventRateLimit", &config]);
    server.wait_ready().await;
    let admin = server.admin();
    for ns in ["limited", "other"] {
        admin
            .create("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
            .await;
    }
    let event = |namespace: &str, name: String| {
        json!({"metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": "p",
            "namespace": namespace}, "reason": "Tested", "message": "m", "type": "Normal"})
    };
    let events = "/api/v1/namespaces/limited/events";
    // The bucket starts full: its burst of three is admitted.
    for i in 0..3 {
        let r = admin
            .json("POST", events, &event("limited", format!("e{i}")))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // It refills at one a second, far slower than these arrive: one is refused.
    let mut refused = None;
    for i in 3..23 {
        let r = admin
            .json("POST", events, &event("limited", format!("e{i}")))
            .await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = refused.expect("an event over the burst is refused");
    assert_eq!(r.json()["reason"], "TooManyRequests");
    assert_eq!(
        r.json()["message"],
        "Too many requests: limit reached on type Namespace for key limited"
    );
    // A dry run is not charged, another namespace has its own bucket, and events.k8s.io
    // Events are not core Events.
    let r = admin
        .json(
            "POST",
            &format!("{events}?dryRun=All"),
            &event("limited", "dry".into()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/other/events",
            &event("other", "o".into()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin
        .json(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/limited/events",
            &json!({"metadata": {"name": "new"}, "eventTime": "2026-01-01T00:00:00.000000Z",
                "reportingController": "test/c", "reportingInstance": "i", "action": "Test",
                "reason": "Tested", "type": "Normal", "regarding": {"kind": "Pod", "name": "p", "namespace": "limited"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn event_rate_limit_without_limits_fails_start_up_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::kubeboot::run_kubeboot(
        dir.path(),
        &["init", "--enable-admission-plugins=EventRateLimit"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--admission-control-config-file: plugin EventRateLimit: limits: Invalid value: null: must not be empty"),
        "{err}"
    );
}

#[tokio::test]
async fn namespaces_are_provisioned_extended_resources_tolerated_and_anti_affinity_kept_per_node() {
    let mut server = TestServer::up(&[
        "--enable-admission-plugins=NamespaceAutoProvision,ExtendedResourceToleration,LimitPodHardAntiAffinityTopology",
    ]);
    server.wait_ready().await;
    let admin = server.admin();

    // NamespaceAutoProvision: a create in a missing namespace makes it; a dry run does not, and
    // NamespaceLifecycle then finds none.
    let cm = json!({"metadata": {"name": "c"}});
    let r = admin
        .json("POST", "/api/v1/namespaces/auto/configmaps", &cm)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin.get("/api/v1/namespaces/auto").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin
        .json("POST", "/api/v1/namespaces/dry/configmaps?dryRun=All", &cm)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = admin.get("/api/v1/namespaces/dry").await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);

    // ExtendedResourceToleration: a pod asking for a GPU tolerates the GPU nodes' taint.
    let gpu = json!({"example.com/gpu": "1"});
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/auto/pods",
            &pod(
                "trainer",
                json!({"containers": [{"name": "app", "image": "nginx",
                    "resources": {"requests": gpu, "limits": gpu}}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tolerations = r.json()["spec"]["tolerations"].clone();
    assert!(
        tolerations.as_array().unwrap().contains(
            &json!({"key": "example.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
        ),
        "{tolerations}"
    );

    // LimitPodHardAntiAffinityTopology: required anti-affinity is per node only.
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/auto/pods",
            &pod(
                "spread",
                json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "a"}},
                     "topologyKey": "topology.kubernetes.io/zone"}]}}}),
            ),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"spread\" is forbidden: affinity.PodAntiAffinity.RequiredDuringScheduling has TopologyKey topology.kubernetes.io/zone but only key kubernetes.io/hostname is allowed"
    );
    drop(server);

    // NamespaceExists, in NamespaceLifecycle's stead: a missing namespace is 404.
    let mut server = TestServer::up(&[
        "--disable-admission-plugins=NamespaceLifecycle",
        "--enable-admission-plugins=NamespaceExists",
    ]);
    server.wait_ready().await;
    let r = server
        .admin()
        .json("POST", "/api/v1/namespaces/ghost/configmaps", &cm)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["message"], "namespaces \"ghost\" not found");
}

#[tokio::test]
async fn pod_toleration_restriction_adds_namespace_defaults_and_keeps_pods_to_the_whitelist() {
    let dir = tempfile::tempdir().unwrap();
    let config = admission_config(
        dir.path(),
        "PodTolerationRestriction",
        "    apiVersion: podtolerationrestriction.admission.k8s.io/v1alpha1\n    kind: Configuration\n    \
         default:\n    - {key: cluster, operator: Exists, effect: NoSchedule}\n",
    );
    let mut server = TestServer::up(&[
        "--enable-admission-plugins=PodTolerationRestriction",
        &config,
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "plain"}}),
        )
        .await;
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "team", "annotations": {
                "scheduler.alpha.kubernetes.io/defaultTolerations":
                    r#"[{"key": "team", "operator": "Equal", "value": "blue", "effect": "NoSchedule"}]"#,
                "scheduler.alpha.kubernetes.io/tolerationsWhitelist":
                    r#"[{"key": "team", "operator": "Equal", "value": "blue"}, {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists"}, {"key": "node.kubernetes.io/not-ready", "operator": "Exists"}, {"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]"#}}}),
        )
        .await;

    // No annotation: the configuration's default; a pod asking for memory also tolerates
    // memory pressure.
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/plain/pods",
            &pod(
                "p",
                json!({"containers": [{"name": "app", "image": "nginx",
                    "resources": {"requests": {"memory": "64Mi"}}}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tolerations = r.json()["spec"]["tolerations"].clone();
    for wanted in [
        json!({"key": "cluster", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}),
    ] {
        assert!(
            tolerations.as_array().unwrap().contains(&wanted),
            "{tolerations}"
        );
    }

    // The namespace's own default, within its whitelist (which must hold DefaultTolerationSeconds'
    // two as well); a toleration outside it is refused.
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/team/pods",
            &pod("ok", json!({})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tolerations = r.json()["spec"]["tolerations"].clone();
    assert!(
        tolerations.as_array().unwrap().contains(
            &json!({"key": "team", "operator": "Equal", "value": "blue", "effect": "NoSchedule"})
        ),
        "{tolerations}"
    );
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/team/pods",
            &pod(
                "red",
                json!({"tolerations": [{"key": "team", "operator": "Equal", "value": "red"}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pod tolerations (possibly merged with namespace default tolerations) conflict with its namespace whitelist"
    );
}

#[tokio::test]
async fn owner_references_may_change_only_for_those_who_may_delete_and_block_only_for_finalizer_writers()
 {
    let mut server =
        TestServer::up(&["--enable-admission-plugins=OwnerReferencesPermissionEnforcement"]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            &json!({"metadata": {"name": "no-delete"}, "rules": [{"apiGroups": [""],
                "resources": ["configmaps"], "verbs": ["get", "create", "update", "patch"]}]}),
        )
        .await;
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &json!({"metadata": {"name": "editor"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "no-delete"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "editor"}]}),
        )
        .await;
    let parent = admin
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "parent"}}),
        )
        .await;
    let owner = |block: bool| {
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "parent",
            "uid": parent["metadata"]["uid"], "blockOwnerDeletion": block}])
    };
    let editor = server.as_user("editor", &[]);
    let cms = "/api/v1/namespaces/default/configmaps";

    // Setting references at creation needs nothing more: the editor could have not created it.
    let created = eventually("the editor's binding", || async {
        let r = editor
            .json(
                "POST",
                cms,
                &json!({"metadata": {"name": "owned", "ownerReferences": owner(false)}}),
            )
            .await;
        (r.status == 201).then(|| r.json())
    })
    .await;
    // Changing them needs delete, which the editor lacks; other changes do not.
    let mut changed = created.clone();
    changed["metadata"]["ownerReferences"] = json!([]);
    let r = editor.json("PUT", &format!("{cms}/owned"), &changed).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with(
            "configmaps \"owned\" is forbidden: cannot set an ownerRef on a resource you can't delete: "
        ),
        "{message}"
    );
    let mut relabeled = created.clone();
    relabeled["metadata"]["labels"] = json!({"a": "b"});
    let r = editor
        .json("PUT", &format!("{cms}/owned"), &relabeled)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Blocking the owner's deletion needs update on its finalizers.
    let blocking = json!({"metadata": {"name": "blocker", "ownerReferences": owner(true)}});
    let r = editor.json("POST", cms, &blocking).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with(
            "configmaps \"blocker\" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: "
        ),
        "{message}"
    );
    // An owner of a kind no one serves cannot be checked.
    let r = editor
        .json(
            "POST",
            cms,
            &json!({"metadata": {"name": "widget-owned", "ownerReferences": [{
                "apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u",
                "blockOwnerDeletion": true}]}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "configmaps \"widget-owned\" is forbidden: cannot set blockOwnerDeletion in this case because cannot find RESTMapping for APIVersion example.com/v1 Kind Widget: no matches for kind \"Widget\" in version \"example.com/v1\""
    );
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            &json!({"metadata": {"name": "finalizers"}, "rules": [{"apiGroups": [""],
                "resources": ["configmaps/finalizers"], "verbs": ["update"]}]}),
        )
        .await;
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &json!({"metadata": {"name": "editor-finalizers"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "finalizers"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "editor"}]}),
        )
        .await;
    eventually(
        "the blocking reference, once finalizers may be set",
        || async {
            let r = editor.json("POST", cms, &blocking).await;
            (r.status == 201).then_some(())
        },
    )
    .await;
}

/// Starts an image policy backend recording the ImageReviews it gets in `seen`: an image tagged
/// `latest` is denied with a reason, anything else allowed with an audit annotation. Writes
/// its kubeconfig-format file and an AdmissionConfiguration pointing at it into `dir`, with
/// `defaultAllow`; returns the backend and the configuration's path.
fn image_policy_backend(
    dir: &std::path::Path,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    server: Option<&str>,
    default_allow: bool,
) -> (crate::support::backend::Backend, std::path::PathBuf) {
    use crate::support::backend::{Backend, full};
    use http_body_util::BodyExt;
    let backend = Backend::start(
        None,
        std::sync::Arc::new(move |req: hyper::Request<hyper::body::Incoming>, _| {
            let seen = seen.clone();
            Box::pin(async move {
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let review: Value = serde_json::from_slice(&body).unwrap();
                seen.lock().unwrap().push(review.clone());
                let latest = review["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["image"].as_str().unwrap_or_default().ends_with(":latest"));
                let status = if latest {
                    json!({"allowed": false, "reason": "Images using latest tag are not allowed"})
                } else {
                    json!({"allowed": true, "auditAnnotations": {"checked": "yes"}})
                };
                let reply = json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1",
                    "kind": "ImageReview", "status": status});
                hyper::Response::builder()
                    .header("content-type", "application/json")
                    .body(full(reply.to_string()))
                    .unwrap()
            })
        }),
    );
    std::fs::write(dir.join("policy-ca.crt"), &backend.ca_pem).unwrap();
    let server = server.map_or_else(|| backend.addr.to_string(), String::from);
    let kubeconfig = dir.join("policy.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: policy\n  cluster:\n    \
             server: https://{server}/image_policy\n    certificate-authority: policy-ca.crt\n\
             users:\n- name: kubeboot\n  user: {{}}\n\
             contexts:\n- name: policy\n  context:\n    cluster: policy\n    user: kubeboot\n\
             current-context: policy\n"
        ),
    )
    .unwrap();
    let config = dir.join("admission.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
             - name: ImagePolicyWebhook\n  configuration:\n    imagePolicy:\n      \
             kubeConfigFile: {}\n      allowTTL: 50\n      denyTTL: 50\n      \
             retryBackoff: 10\n      defaultAllow: {default_allow}\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    (backend, config)
}

/// An audit policy recording each pod create at Metadata, once.
const POD_CREATES_AUDITED: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  verbs: [create]\n  resources: [{group: \"\", resources: [pods]}]\n";

/// A ready server running ImagePolicyWebhook against [`image_policy_backend`] (or `address`
/// instead), auditing pod creates; with the backend and the audit log.
async fn image_policy_server(
    dir: &std::path::Path,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    address: Option<&str>,
    default_allow: bool,
) -> (
    crate::support::backend::Backend,
    TestServer,
    std::path::PathBuf,
) {
    let (backend, config) = image_policy_backend(dir, seen, address, default_allow);
    let config_flag = format!("--admission-control-config-file={}", config.display());
    let ([policy, log_path], log) = crate::support::audit::flags(dir, POD_CREATES_AUDITED);
    let mut server = TestServer::up(&[
        "--enable-admission-plugins=ImagePolicyWebhook",
        &config_flag,
        &policy,
        &log_path,
    ]);
    server.wait_ready().await;
    (backend, server, log)
}

#[tokio::test]
async fn image_policy_webhook_reviews_a_pods_images() {
    let dir = tempfile::tempdir().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (_backend, server, log) = image_policy_server(dir.path(), seen.clone(), None, false).await;
    let admin = server.admin();
    let pods = "/api/v1/namespaces/default/pods";
    let with_image = |name: &str, image: &str| {
        let mut p = pod(
            name,
            json!({"containers": [{"name": "app", "image": image}],
            "initContainers": [{"name": "init", "image": "busybox:1.36"}]}),
        );
        p["metadata"]["annotations"] =
            json!({"mycluster.image-policy.k8s.io/ticket": "1234", "unrelated": "x"});
        p
    };

    // A denied image: upstream's 403, through kubectl too.
    let r = admin
        .json("POST", pods, &with_image("latest", "nginx:latest"))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods \"latest\" is forbidden: image policy webhook backend denied one or more images: Images using latest tag are not allowed"
    );
    let kubectl = crate::common::newest_kubectl();
    let stderr = crate::common::failed(
        &server.kubectl(
            &kubectl,
            &["run", "web", "--image=nginx:latest", "--restart=Never"],
        ),
        "kubectl run latest",
    );
    assert!(
        stderr.contains("pods \"web\" is forbidden: image policy webhook backend denied one or more images: Images using latest tag are not allowed"),
        "{stderr}"
    );

    // An allowed pod; the review held its images, its policy annotations only, its namespace.
    let r = admin
        .json("POST", pods, &with_image("pinned", "nginx:1.27"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let reviews = seen.lock().unwrap().clone();
    let last = reviews.last().unwrap();
    assert_eq!(last["apiVersion"], "imagepolicy.k8s.io/v1alpha1");
    assert_eq!(last["kind"], "ImageReview");
    assert_eq!(
        last["spec"],
        json!({"containers": [{"image": "nginx:1.27"}, {"image": "busybox:1.36"}],
            "annotations": {"mycluster.image-policy.k8s.io/ticket": "1234"},
            "namespace": "default"})
    );
    // The backend's audit annotations are the request's, under the plugin's prefix.
    let events = crate::support::audit::events(&log, 3).await;
    let pinned = events
        .iter()
        .find(|e| e["objectRef"]["name"] == "pinned")
        .unwrap();
    assert_eq!(
        pinned["annotations"]["imagepolicywebhook.image-policy.k8s.io/checked"],
        "yes"
    );
    // The same review again is answered from the cache: the backend is not asked.
    let asked = reviews.len();
    let r = admin
        .json("POST", pods, &with_image("pinned-2", "nginx:1.27"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(seen.lock().unwrap().len(), asked);
    // Other resources and subresources are not reviewed.
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "c"}, "data": {"image": "nginx:latest"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(seen.lock().unwrap().len(), asked);
}

#[tokio::test]
async fn image_policy_webhook_unreachable_fails_closed_or_open_as_configured() {
    // Nothing listens on the backend's port: a closed listener's address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    for (default_allow, status) in [(false, 403), (true, 201)] {
        let dir = tempfile::tempdir().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (_backend, server, log) =
            image_policy_server(dir.path(), seen, Some(&addr), default_allow).await;
        let r = server
            .admin()
            .json(
                "POST",
                "/api/v1/namespaces/default/pods",
                &pod("p", json!({})),
            )
            .await;
        assert_eq!(r.status, status, "defaultAllow {default_allow}: {}", r.body);
        let failed_open = &crate::support::audit::events(&log, 1).await[0]["annotations"]["imagepolicywebhook.image-policy.k8s.io/failed-open"];
        if status == 403 {
            let message = r.json()["message"].as_str().unwrap().to_string();
            assert!(
                message.starts_with("pods \"p\" is forbidden: Post \"https://"),
                "{message}"
            );
            assert!(failed_open.is_null(), "{failed_open}");
        } else {
            assert_eq!(*failed_open, "true");
        }
    }
}

#[test]
fn image_policy_webhook_needs_its_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("admission.yaml");
    // Start-up's error with ImagePolicyWebhook enabled and, when given, this configuration.
    let refused = |plugin_config: Option<&str>| {
        let mut args = vec![
            "init".to_string(),
            "--enable-admission-plugins=ImagePolicyWebhook".to_string(),
        ];
        if let Some(plugin_config) = plugin_config {
            std::fs::write(
                &config,
                format!(
                    "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
                     - name: ImagePolicyWebhook\n  configuration:\n    imagePolicy:\n{plugin_config}"
                ),
            )
            .unwrap();
            args.push(format!(
                "--admission-control-config-file={}",
                config.display()
            ));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = crate::support::kubeboot::run_kubeboot(dir.path(), &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(None);
    assert!(
        err.contains(
            "--admission-control-config-file: plugin ImagePolicyWebhook: no config specified"
        ),
        "{err}"
    );
    let err = refused(Some(
        "      kubeConfigFile: /nonexistent/policy.kubeconfig\n      denyTTL: 2700\n",
    ));
    assert!(
        err.contains("plugin ImagePolicyWebhook: valid value is between 1s and 30m0s, got 45m0s"),
        "{err}"
    );
    // A valid configuration whose backend's kubeconfig cannot be read.
    let err = refused(Some(
        "      kubeConfigFile: /nonexistent/policy.kubeconfig\n",
    ));
    assert!(
        err.contains("--admission-control-config-file: plugin ImagePolicyWebhook: invalid webhook configuration /nonexistent/policy.kubeconfig"),
        "{err}"
    );
}
