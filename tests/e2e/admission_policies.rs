//! ValidatingAdmissionPolicy against a started server: a policy whose param (a ConfigMap in the
//! request's namespace) limits Deployment replicas, bound twice — `Deny` where namespaces are
//! labelled strict, `Warn` where lenient — refuses or warns with upstream's words through kubectl
//! and HTTP; a missing param with parameterNotFoundAction Deny refuses.

use crate::common::{failed, newest_kubectl, ok};
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use serde_json::{Value, json};

const POLICIES: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const BINDINGS: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}})
}

fn binding(name: &str, action: &str, limits: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "policyName": "replica-limit", "validationActions": [action],
        "paramRef": {"name": "replica-limits", "parameterNotFoundAction": "Deny"},
        "matchResources": {"namespaceSelector": {"matchLabels": {"limits": limits}}}}})
}

#[tokio::test]
async fn a_policy_with_a_param_denies_and_warns_through_its_bindings() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    for (name, limits) in [
        ("strict", "strict"),
        ("lenient", "lenient"),
        ("unset", "strict"),
    ] {
        admin
            .create(
                "/api/v1/namespaces",
                &json!({"metadata": {"name": name, "labels": {"limits": limits}}}),
            )
            .await;
    }
    for ns in ["strict", "lenient"] {
        admin
            .create(
                &format!("/api/v1/namespaces/{ns}/configmaps"),
                &json!({"metadata": {"name": "replica-limits"}, "data": {"maxReplicas": "3"}}),
            )
            .await;
    }
    admin
        .create(
            POLICIES,
            &json!({"metadata": {"name": "replica-limit"}, "spec": {
                "failurePolicy": "Fail",
                "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
                "variables": [{"name": "max", "expression": "int(params.data.maxReplicas)"}],
                "validations": [{"expression": "object.spec.replicas <= variables.max",
                    "messageExpression": "'replicas must be no greater than ' + string(variables.max)",
                    "reason": "Invalid"}]}}),
        )
        .await;
    admin
        .create(BINDINGS, &binding("limit-deny", "Deny", "strict"))
        .await;
    admin
        .create(BINDINGS, &binding("limit-warn", "Warn", "lenient"))
        .await;
    let at = |ns: &str| format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let denied = "deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'replica-limit' \
                  with binding 'limit-deny' denied request: replicas must be no greater than 3";

    // Deny: upstream's 422 Invalid with the policy and binding named. The informers see the
    // new policy and bindings within moments.
    let r = eventually("the policy to apply", || async {
        let r = admin
            .json("POST", &at("strict"), &deployment("big", 5))
            .await;
        (r.status != 201).then_some(r)
    })
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["message"], denied);
    let r = admin
        .json("POST", &at("strict"), &deployment("small", 2))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let kubectl = newest_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let apply = |ns: &str, obj: &Value| {
        let path = dir.path().join(format!("{ns}.json"));
        std::fs::write(&path, obj.to_string()).unwrap();
        server.kubectl(&kubectl, &["apply", "-n", ns, "-f", path.to_str().unwrap()])
    };
    // kubectl shows an Invalid status by its cause, as it does for upstream's.
    let stderr = failed(
        &apply("strict", &deployment("big", 5)),
        "kubectl apply in strict",
    );
    assert!(
        stderr.contains(
            "The deployments \"big\" is invalid: : ValidatingAdmissionPolicy 'replica-limit' with \
             binding 'limit-deny' denied request: replicas must be no greater than 3"
        ),
        "{stderr}"
    );

    // Warn: admitted, with the warning kubectl prints.
    let out = apply("lenient", &deployment("big", 5));
    ok(&out, "kubectl apply in lenient");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(
            "Warning: Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding \
             'limit-warn': replicas must be no greater than 3"
        ),
        "{stderr}"
    );

    // No param where the binding needs one, with parameterNotFoundAction Deny.
    let r = admin
        .json("POST", &at("unset"), &deployment("big", 1))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'replica-limit' with binding \
         'limit-deny' denied request: no params found for policy binding with `Deny` parameterNotFoundAction"
    );
}
