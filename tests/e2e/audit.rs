//! The audit log against a started server: a policy recording Secrets at Metadata and one
//! namespace's ConfigMaps at RequestResponse yields exactly the expected audit.k8s.io/v1
//! Events as JSON lines — who, what, which object, the answer's code (a refusal's Status too),
//! the objects where the level asks for them and never a Secret's data, authorization's
//! decision and a ValidatingAdmissionPolicy's auditAnnotations and `Audit` failures — each
//! response carrying its Audit-ID; the webhook backend gets the same events in EventLists.

use crate::support::audit;
use crate::support::backend::{Backend, full};
use crate::support::kubeboot::TestServer;
use crate::support::scrape::Scrape;
use crate::support::wait::eventually;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

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

/// An HTTPS audit webhook recording every EventList it receives; the kubeconfig pointing
/// kubeboot at it.
fn start_webhook(dir: &std::path::Path, lists: Arc<Mutex<Vec<Value>>>) -> (Backend, String) {
    start_webhook_answering(dir, lists, 200)
}

/// As [`start_webhook`], answering every EventList with `status`.
fn start_webhook_answering(
    dir: &std::path::Path,
    lists: Arc<Mutex<Vec<Value>>>,
    status: u16,
) -> (Backend, String) {
    let backend = Backend::start(
        None,
        Arc::new(move |req, _| {
            let lists = lists.clone();
            Box::pin(async move {
                use http_body_util::BodyExt;
                let body = req.into_body().collect().await.unwrap().to_bytes();
                lists
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                hyper::Response::builder()
                    .status(status)
                    .body(full(""))
                    .unwrap()
            })
        }),
    );
    std::fs::write(dir.join("audit-webhook-ca.crt"), &backend.ca_pem).unwrap();
    let kubeconfig = dir.join("audit-webhook.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: audit\n  cluster:\n    \
             server: https://{}/audit\n    certificate-authority: audit-webhook-ca.crt\n\
             users:\n- name: kubeboot\n  user: {{}}\n\
             contexts:\n- name: audit\n  context:\n    cluster: audit\n    user: kubeboot\n\
             current-context: audit\n",
            backend.addr
        ),
    )
    .unwrap();
    (
        backend,
        format!("--audit-webhook-config-file={}", kubeconfig.display()),
    )
}

#[tokio::test]
async fn the_webhook_backend_receives_the_selected_events_in_event_lists() {
    let dir = tempfile::tempdir().unwrap();
    let lists = Arc::new(Mutex::new(Vec::new()));
    let (_webhook, webhook_flag) = start_webhook(dir.path(), lists.clone());
    let mut server = TestServer::up(&[
        "--builtin-controllers=false",
        &audit::policy_flag(dir.path(), POLICY),
        &webhook_flag,
        "--audit-webhook-batch-max-wait=200ms",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "audited"}}),
        )
        .await;
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/audited/secrets",
            &json!({"metadata": {"name": "hooked"}, "data": {"password": "aHVudGVyMg=="}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let audit_id = r.headers["audit-id"].to_str().unwrap().to_string();
    // A request authentication refuses is audited too, as upstream's failed-authentication
    // audit records it: no user, the credentials tried.
    let refused = server
        .anonymous()
        .request(
            "GET",
            "/api/v1/namespaces/audited/secrets",
            &[("authorization", "Bearer not-a-token")],
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 401, "{}", refused.body);
    let refused_id = refused.headers["audit-id"].to_str().unwrap().to_string();
    // An impersonated request names both users.
    let as_bob = admin
        .request(
            "GET",
            "/api/v1/namespaces/audited/secrets/hooked",
            &[("impersonate-user", "bob")],
        )
        .await
        .unwrap();
    assert_eq!(as_bob.status, 403, "{}", as_bob.body);
    let bob_id = as_bob.headers["audit-id"].to_str().unwrap().to_string();

    let events = eventually("the Secret's event at the webhook", || async {
        let lists = lists.lock().unwrap().clone();
        let events: Vec<Value> = lists
            .iter()
            .inspect(|l| {
                assert_eq!(
                    (&l["kind"], &l["apiVersion"]),
                    (&json!("EventList"), &json!("audit.k8s.io/v1"))
                );
            })
            .flat_map(|l| l["items"].as_array().unwrap().clone())
            .collect();
        let arrived = |id: &str| events.iter().any(|e| e["auditID"] == id);
        (arrived(&audit_id) && arrived(&refused_id) && arrived(&bob_id)).then_some(events)
    })
    .await;
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["auditID"] == refused_id.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (&failed[0]["stage"], &failed[0]["user"], &failed[0]["verb"]),
        (&json!("ResponseStarted"), &json!({}), &json!("list"))
    );
    let impersonated = events
        .iter()
        .find(|e| e["auditID"] == bob_id.as_str())
        .unwrap();
    assert_eq!(
        impersonated["impersonatedUser"],
        json!({"username": "bob", "groups": ["system:authenticated"]})
    );
    assert_ne!(impersonated["user"]["username"], "bob");
    assert_eq!(
        failed[0]["responseStatus"],
        json!({"metadata": {}, "message": "Authentication failed, attempted: bearer", "code": 401})
    );
    let sent: Vec<&Value> = events
        .iter()
        .filter(|e| e["auditID"] == audit_id.as_str())
        .collect();
    assert_eq!(sent.len(), 1, "RequestReceived is omitted: {sent:?}");
    let e = sent[0];
    assert_eq!(
        (
            &e["stage"],
            &e["level"],
            &e["verb"],
            &e["objectRef"]["name"]
        ),
        (
            &json!("ResponseComplete"),
            &json!("Metadata"),
            &json!("create"),
            &json!("hooked")
        )
    );
    assert_eq!(e["responseStatus"]["code"], 201);
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains("aHVudGVyMg==")
    );
    // Nothing the policy does not select went there.
    assert!(
        events
            .iter()
            .all(|e| e["objectRef"]["resource"] != "namespaces")
    );
}

/// ConfigMap creates at Metadata, at every stage.
const CREATES: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
  verbs: [create]
  resources: [{group: "", resources: [configmaps]}]
"#;

/// The events of `lists` for one request, in the order they arrived; each list must hold one
/// event, as a blocking webhook sends them.
fn events_of(lists: &Mutex<Vec<Value>>, audit_id: &str) -> Vec<Value> {
    let lists = lists.lock().unwrap();
    for list in lists.iter() {
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    }
    lists
        .iter()
        .map(|l| l["items"][0].clone())
        .filter(|e| e["auditID"] == audit_id)
        .collect()
}

#[tokio::test]
async fn a_blocking_webhook_has_a_requests_events_before_the_request_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let lists = Arc::new(Mutex::new(Vec::new()));
    let (_webhook, webhook_flag) = start_webhook(dir.path(), lists.clone());
    let mut server = TestServer::up(&[
        "--builtin-controllers=false",
        &audit::policy_flag(dir.path(), CREATES),
        &webhook_flag,
        "--audit-webhook-mode=blocking",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "blocked"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let audit_id = r.headers["audit-id"].to_str().unwrap().to_string();
    // No waiting: the webhook had the RequestReceived event before the handler ran, and the
    // ResponseComplete event before the response was let go.
    let events = events_of(&lists, &audit_id);
    assert_eq!(events[0]["objectRef"]["resource"], "configmaps");
    assert_eq!(
        events
            .iter()
            .map(|e| e["stage"].clone())
            .collect::<Vec<_>>(),
        [json!("RequestReceived"), json!("ResponseComplete")]
    );
    assert_eq!(events[1]["responseStatus"]["code"], 201);
}

#[tokio::test]
async fn a_blocking_strict_webhook_that_cannot_store_the_first_event_fails_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let lists = Arc::new(Mutex::new(Vec::new()));
    let (_webhook, webhook_flag) = start_webhook_answering(dir.path(), lists.clone(), 500);
    let policy = audit::policy_flag(dir.path(), CREATES);
    let mut strict = TestServer::up(&[
        "--builtin-controllers=false",
        &policy,
        &webhook_flag,
        "--audit-webhook-mode=blocking-strict",
        "--audit-webhook-initial-backoff=10ms",
    ]);
    strict.wait_ready().await;
    let admin = strict.admin();
    let path = "/api/v1/namespaces/default/configmaps";
    let r = admin
        .json("POST", path, &json!({"metadata": {"name": "unaudited"}}))
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.body,
        "Internal Server Error: \"/api/v1/namespaces/default/configmaps\": failed to store audit event\n"
    );
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "text/plain; charset=utf-8"
    );
    assert!(r.headers.contains_key("audit-id"));
    // The webhook was asked, and the handler never ran.
    assert!(!lists.lock().unwrap().is_empty());
    let r = admin.get(&format!("{path}/unaudited")).await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let scraped = Scrape::of(&admin).await;
    assert_eq!(
        scraped.value("apiserver_audit_requests_rejected_total", &[]),
        1.0
    );
    assert_eq!(
        scraped.value("apiserver_audit_error_total", &[("plugin", "webhook")]),
        1.0
    );

    // In `blocking` mode the same failure is only counted: the request goes on.
    let lenient_dir = tempfile::tempdir().unwrap();
    let (_lenient_webhook, lenient_flag) =
        start_webhook_answering(lenient_dir.path(), Arc::default(), 500);
    let mut lenient = TestServer::up(&[
        "--builtin-controllers=false",
        &policy,
        &lenient_flag,
        "--audit-webhook-mode=blocking",
        "--audit-webhook-initial-backoff=10ms",
    ]);
    lenient.wait_ready().await;
    let admin = lenient.admin();
    let r = admin
        .json(
            "POST",
            path,
            &json!({"metadata": {"name": "audited-or-not"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let scraped = Scrape::of(&admin).await;
    assert_eq!(
        scraped.value("apiserver_audit_requests_rejected_total", &[]),
        0.0
    );
    assert!(scraped.value("apiserver_audit_error_total", &[("plugin", "webhook")]) >= 1.0);
}
