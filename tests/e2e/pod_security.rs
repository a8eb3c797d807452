//! PodSecurity against a started server: namespaces labelled `pod-security.kubernetes.io/*`
//! refuse (enforce) or warn of (warn) pods breaking the Pod Security Standards with upstream's
//! words, through kubectl and HTTP; workloads are only warned of; the defaults and exemptions of
//! `--admission-control-config-file` apply to unlabelled namespaces; the audit mode records
//! violations in the audit event.

use crate::common::{failed, newest_kubectl, ok};
use crate::support::kubeboot::TestServer;
use serde_json::{Value, json};

fn privileged_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"automountServiceAccountToken": false, "containers": [
            {"name": "app", "image": "nginx", "securityContext": {"privileged": true}}]}})
}

fn restricted_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "nginx", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}})
}

const PRIVILEGED: &str =
    "privileged (container \"app\" must not set securityContext.privileged=true)";

#[tokio::test]
async fn namespaces_enforce_and_warn_the_pod_security_standards() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    for (name, labels) in [
        (
            "secure",
            json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        ),
        (
            "warned",
            json!({"pod-security.kubernetes.io/warn": "baseline"}),
        ),
    ] {
        admin
            .create(
                "/api/v1/namespaces",
                &json!({"metadata": {"name": name, "labels": labels}}),
            )
            .await;
    }
    let pods = |ns: &str| format!("/api/v1/namespaces/{ns}/pods");

    // Enforced: refused with every failed check, in upstream's order.
    let r = admin
        .json("POST", &pods("secure"), &privileged_pod("p"))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        format!(
            "pods \"p\" is forbidden: violates PodSecurity \"restricted:latest\": {PRIVILEGED}, \
             allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        )
    );
    // An enforce label warns at its level too, so nothing is both refused and warned of.
    assert!(r.headers.get("warning").is_none());
    let r = admin
        .json("POST", &pods("secure"), &restricted_pod("ok"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let kubectl = newest_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, obj: &Value| {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, obj.to_string()).unwrap();
        path.to_str().unwrap().to_string()
    };
    let stderr = failed(
        &server.kubectl(
            &kubectl,
            &[
                "apply",
                "-n",
                "secure",
                "-f",
                &file("p", &privileged_pod("p")),
            ],
        ),
        "kubectl apply of a privileged pod",
    );
    assert!(
        stderr.contains("violates PodSecurity \"restricted:latest\": privileged"),
        "{stderr}"
    );

    // Warned: admitted, with the Warning kubectl prints.
    let out = server.kubectl(
        &kubectl,
        &[
            "apply",
            "-n",
            "warned",
            "-f",
            &file("w", &privileged_pod("w")),
        ],
    );
    ok(&out, "kubectl apply in the warned namespace");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "Warning: would violate PodSecurity \"baseline:latest\": {PRIVILEGED}"
        )),
        "{stderr}"
    );

    // A workload's template is warned of at the enforce level, never refused.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
            "metadata": {"labels": {"app": "d"}}, "spec": privileged_pod("x")["spec"]}}});
    let r = admin
        .json(
            "POST",
            "/apis/apps/v1/namespaces/secure/deployments",
            &deployment,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let warning = r
        .headers
        .get("warning")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        warning.starts_with(&format!(
            "299 - \"would violate PodSecurity \\\"restricted:latest\\\": {}",
            PRIVILEGED.replace('"', "\\\"")
        )),
        "{warning}"
    );

    // A pod's metadata may change without being checked again; a new image is checked.
    let patch = |body: Value| {
        let admin = admin.clone();
        async move {
            admin
                .with_body(
                    "PATCH",
                    "/api/v1/namespaces/warned/pods/w",
                    "application/strategic-merge-patch+json",
                    body.to_string(),
                )
                .await
        }
    };
    let r = patch(json!({"metadata": {"labels": {"touched": "yes"}}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers.get("warning").is_none());
    let r = patch(json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers.get("warning").is_some());

    // Labels must parse; a stricter enforce level names the pods it would refuse.
    let r = admin
        .with_body(
            "PATCH",
            "/api/v1/namespaces/warned",
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "strict"}}})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "Namespace \"warned\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: \
         Invalid value: \"strict\": must be one of privileged, baseline, restricted"
    );
    let out = server.kubectl(
        &kubectl,
        &[
            "label",
            "namespace",
            "warned",
            "pod-security.kubernetes.io/enforce=baseline",
        ],
    );
    ok(&out, "kubectl label namespace");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(
            "Warning: existing pods in namespace \"warned\" violate the new PodSecurity enforce level \"baseline:latest\""
        ) && stderr.contains("Warning: w: privileged"),
        "{stderr}"
    );
}

#[tokio::test]
async fn admission_configuration_gives_defaults_and_exemptions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("admission.yaml");
    std::fs::write(
        &config,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
         - name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n\
         \x20   kind: PodSecurityConfiguration\n    defaults: {enforce: baseline}\n\
         \x20   exemptions: {namespaces: [exempt]}\n",
    )
    .unwrap();
    let flag = format!("--admission-control-config-file={}", config.display());
    let mut server = TestServer::up(&[&flag]);
    server.wait_ready().await;
    let admin = server.admin();
    for name in ["plain", "exempt"] {
        admin
            .create("/api/v1/namespaces", &json!({"metadata": {"name": name}}))
            .await;
    }
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/plain/pods",
            &privileged_pod("p"),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        format!("pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": {PRIVILEGED}")
    );
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/exempt/pods",
            &privileged_pod("p"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// The audit mode: a pod a namespace's `audit` level would refuse is admitted (enforce allows
/// it) and its audit event says which policy enforced and what the audit level would refuse;
/// a refused pod's event says it too.
#[tokio::test]
async fn the_audit_mode_records_violations_in_the_audit_event() {
    let dir = tempfile::tempdir().unwrap();
    let ([policy, log_path], log) = crate::support::audit::flags(
        dir.path(),
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  verbs: [create]\n  resources: [{group: \"\", resources: [pods]}]\n",
    );
    let mut server = TestServer::up(&[&policy, &log_path]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "audited", "labels": {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/audit": "restricted"}}}),
        )
        .await;
    let pods = "/api/v1/namespaces/audited/pods";
    let plain = json!({"metadata": {"name": "plain"}, "spec": {"automountServiceAccountToken": false,
        "containers": [{"name": "app", "image": "nginx"}]}});
    let r = admin.json("POST", pods, &plain).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin.json("POST", pods, &privileged_pod("loud")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let events = crate::support::audit::events(&log, 2).await;
    let admitted = &events[0]["annotations"];
    assert_eq!(
        admitted["pod-security.kubernetes.io/enforce-policy"],
        "baseline:latest"
    );
    let violations = admitted["pod-security.kubernetes.io/audit-violations"]
        .as_str()
        .unwrap();
    assert!(
        violations.starts_with(
            "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
        ),
        "{violations}"
    );
    let refused = &events[1];
    assert_eq!(refused["responseStatus"]["code"], 403);
    assert!(
        refused["annotations"]["pod-security.kubernetes.io/audit-violations"]
            .as_str()
            .unwrap()
            .contains(PRIVILEGED),
        "{refused}"
    );
}
