//! The audit log against a started server: a policy recording Secrets at Metadata and one
//! namespace's ConfigMaps at RequestResponse yields exactly the expected audit.k8s.io/v1
//! Events as JSON lines — who, what, which object, the answer's code (a refusal's Status too),
//! the objects where the level asks for them and never a Secret's data, authorization's
//! decision and a ValidatingAdmissionPolicy's auditAnnotations and `Audit` failures — each
//! response carrying its Audit-ID.

use crate::support::audit;
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use serde_json::{Value, json};

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: RequestResponse
  namespaces: [audited]
  resources: [{group: "", resources: [configmaps]}]
"#;

#[tokio::test]
async fn an_audit_policy_records_exactly_what_it_selects_at_its_levels() {
    let dir = tempfile::tempdir().unwrap();
    let ([policy, log_path], log) = audit::flags(dir.path(), POLICY);
    let mut server = TestServer::up(&["--builtin-controllers=false", &policy, &log_path]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "audited"}}),
        )
        .await;
    // A policy whose failures are audited (and warned of, so the test can see it is live) and
    // whose auditAnnotations note each ConfigMap's size.
    admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
            &json!({"metadata": {"name": "audit-notes"}, "spec": {
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE"], "resources": ["configmaps"]}]},
                "validations": [{"expression": "!has(object.data) || size(object.data) <= 1",
                    "message": "at most one key"}],
                "auditAnnotations": [{"key": "keys",
                    "valueExpression": "has(object.data) ? string(size(object.data)) : null"}]}}),
        )
        .await;
    admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
            &json!({"metadata": {"name": "audit-notes"},
                "spec": {"policyName": "audit-notes", "validationActions": ["Warn", "Audit"]}}),
        )
        .await;
    let two_keys = |name: &str| json!({"metadata": {"name": name}, "data": {"a": "1", "b": "2"}});
    eventually("the policy to be live", || async {
        let r = admin
            .json(
                "POST",
                "/api/v1/namespaces/default/configmaps?dryRun=All",
                &two_keys("probe"),
            )
            .await;
        r.headers.contains_key("warning").then_some(())
    })
    .await;
    admin
        .create(
            "/api/v1/namespaces/audited/secrets",
            &json!({"metadata": {"name": "s1"}, "data": {"password": "aHVudGVyMg=="}}),
        )
        .await;
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/audited/configmaps",
            &json!({"metadata": {"name": "c1"}, "data": {"k": "v"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let audit_id = r.headers["audit-id"].to_str().unwrap().to_string();
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/audited/configmaps",
            &two_keys("c2"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin
        .get("/api/v1/namespaces/audited/configmaps/c1")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // Not selected: another namespace's ConfigMap, and a namespace.
    admin
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "elsewhere"}}),
        )
        .await;
    let nobody = server.as_user("nobody", &[]);
    let r = nobody
        .get("/api/v1/namespaces/audited/secrets/s1")
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert!(r.headers.contains_key("audit-id"));

    let events = audit::events(&log, 5).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("aHVudGVyMg=="), "a Secret's data in the log");
    let summary: Vec<(&str, &str, &str, &str, u64)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["kind"], "Event");
            assert_eq!(e["apiVersion"], "audit.k8s.io/v1");
            assert_eq!(e["stage"], "ResponseComplete");
            (
                e["level"].as_str().unwrap(),
                e["verb"].as_str().unwrap(),
                e["objectRef"]["resource"].as_str().unwrap(),
                e["user"]["username"].as_str().unwrap(),
                e["responseStatus"]["code"].as_u64().unwrap(),
            )
        })
        .collect();
    let admin_did = |level, verb, code| (level, verb, "configmaps", "kubernetes-admin", code);
    assert_eq!(
        summary,
        [
            ("Metadata", "create", "secrets", "kubernetes-admin", 201),
            admin_did("RequestResponse", "create", 201),
            admin_did("RequestResponse", "create", 201),
            admin_did("RequestResponse", "get", 200),
            ("Metadata", "get", "secrets", "nobody", 403),
        ]
    );
    // Metadata: who and which object, no objects.
    let secret = &events[0];
    assert_eq!(
        secret["objectRef"],
        json!({"resource": "secrets", "namespace": "audited", "name": "s1", "apiGroup": "", "apiVersion": "v1"})
    );
    assert!(secret.get("requestObject").is_none() && secret.get("responseObject").is_none());
    // RequestResponse: both objects, under the ID the response carried.
    let created = &events[1];
    assert_eq!(created["auditID"], audit_id);
    assert_eq!(created["requestObject"]["data"], json!({"k": "v"}));
    assert_eq!(created["responseObject"]["metadata"]["name"], "c1");
    assert!(
        created["user"]["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("system:masters"))
    );
    assert!(
        created["requestReceivedTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // Authorization's and admission's annotations.
    assert_eq!(
        created["annotations"],
        json!({"authorization.k8s.io/decision": "allow", "audit-notes/keys": "1"})
    );
    let noted = &events[2]["annotations"];
    assert_eq!(noted["audit-notes/keys"], "2");
    let failures: Value = serde_json::from_str(
        noted["validation.policy.admission.k8s.io/validation_failure"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        failures,
        json!([{"message": "at most one key", "policy": "audit-notes", "binding": "audit-notes",
            "expressionIndex": 0, "validationActions": ["Warn", "Audit"]}])
    );
    assert_eq!(
        events[4]["annotations"]["authorization.k8s.io/decision"],
        "forbid"
    );
    // A refusal is recorded with its Status.
    let refused = &events[4]["responseStatus"];
    assert_eq!(refused["reason"], "Forbidden");
    assert_eq!(
        refused["message"],
        "secrets \"s1\" is forbidden: User \"nobody\" cannot get resource \"secrets\" in API group \"\" in the namespace \"audited\""
    );
}
