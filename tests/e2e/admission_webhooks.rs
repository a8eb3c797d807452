//! Admission webhooks against a started server: a real HTTPS webhook (in this process, on its
//! own thread) answers the AdmissionReviews kubeboot sends. A mutating webhook reached through
//! a Service (resolved to its EndpointSlice, verified as `<service>.<namespace>.svc` against the
//! caBundle) labels ConfigMaps; a validating one reached by URL refuses those labelled
//! `deny=true` with its own Status and warns. Their namespaceSelector, objectSelector and
//! matchConditions are respected, dry runs reach them as such, and with the webhook down
//! failurePolicy decides: Fail is upstream's 500, Ignore admits.

use crate::common::{failed, newest_kubectl, ok, two_version_crd};
use crate::support::backend::{Backend, full};
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The reviews the webhook was sent, with the path each went to.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

const DENIED: &str = "configmaps labelled deny=true are not allowed";
const WARNING: &str = "checked by deny.example.com";

/// A test webhook's response to the AdmissionRequest sent to a path.
type Answer = fn(&str, &Value) -> Value;

/// Starts an HTTPS webhook, its certificate valid for 127.0.0.1 and `names`, that records each
/// review it is sent in `seen` (with the path and query it went to) and answers with `answer`.
fn start_webhook(names: &[&str], seen: &Seen, answer: Answer) -> Backend {
    let seen = seen.clone();
    Backend::start_as(
        names,
        None,
        Arc::new(move |req, _| {
            let seen = seen.clone();
            Box::pin(async move {
                let path = req.uri().path().to_string();
                let query = req.uri().query().unwrap_or("").to_string();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let review: Value = serde_json::from_slice(&body).unwrap();
                let response = answer(&path, &review["request"]);
                seen.lock()
                    .unwrap()
                    .push((format!("{path}?{query}"), review));
                let reply = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "response": response});
                hyper::Response::builder()
                    .header("content-type", "application/json")
                    .body(full(reply.to_string()))
                    .unwrap()
            })
        }),
    )
}

/// The webhook's answers: `/mutate` adds the label `mutated=true`; `/validate` refuses objects
/// labelled `deny=true` with a 403 and warns either way; `/audit` admits.
fn answer(path: &str, request: &Value) -> Value {
    let uid = request["uid"].clone();
    let labels = &request["object"]["metadata"]["labels"];
    match path {
        "/mutate" => {
            let patch = if labels.is_object() {
                json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "true"}])
            } else {
                json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "true"}}])
            };
            let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch})
        }
        "/validate" if labels["deny"] == "true" => json!({
            "uid": uid, "allowed": false, "warnings": [WARNING],
            "status": {"code": 403, "reason": "Forbidden", "message": DENIED},
        }),
        "/validate" => json!({"uid": uid, "allowed": true, "warnings": [WARNING]}),
        _ => json!({"uid": uid, "allowed": true}),
    }
}

fn configmap(name: &str, labels: Value, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "data": {"k": "v"}})
}

#[tokio::test]
async fn webhooks_mutate_and_validate_with_selectors_conditions_dry_runs_and_failure_policies() {
    let seen: Seen = Arc::default();
    let mut webhook = start_webhook(&["hooks.webhooks.svc"], &seen, answer);
    let port = webhook.addr.port();
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem);
    let sent = |path: &str| -> Vec<Value> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(path))
            .map(|(_, r)| r["request"].clone())
            .collect()
    };

    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    for (name, labels) in [
        ("hooked", json!({"webhooks": "on"})),
        ("plain", json!({})),
        ("webhooks", json!({})),
    ] {
        admin
            .create(
                "/api/v1/namespaces",
                &json!({"metadata": {"name": name, "labels": labels}}),
            )
            .await;
    }
    // The mutating webhook's Service: no selector, its endpoint given by hand.
    webhook
        .publish_as_service(&admin, "webhooks", "hooks")
        .await;
    let rule = json!([{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
        "resources": ["configmaps"]}]);
    let hooked = json!({"matchLabels": {"webhooks": "on"}});
    admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            &json!({"metadata": {"name": "label-adder"},
                "webhooks": [{"name": "mutate.example.com", "rules": rule, "namespaceSelector": hooked,
                    "clientConfig": {"caBundle": ca_bundle,
                        "service": {"namespace": "webhooks", "name": "hooks", "path": "/mutate"}},
                    "sideEffects": "None", "failurePolicy": "Ignore", "timeoutSeconds": 5,
                    "admissionReviewVersions": ["v1"]}]}),
        )
        .await;
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let validating = |policy: &str| {
        json!({"metadata": {"name": "deny-labelled"},
            "webhooks": [
                {"name": "deny.example.com", "rules": rule, "namespaceSelector": hooked,
                    "clientConfig": {"caBundle": ca_bundle, "url": url("/validate")},
                    "matchConditions": [{"name": "not-skipped",
                        "expression": "!has(object.metadata.annotations) || !('skip' in object.metadata.annotations)"}],
                    "sideEffects": "NoneOnDryRun", "failurePolicy": policy, "timeoutSeconds": 5,
                    "admissionReviewVersions": ["v1beta1", "v1"]},
                {"name": "audit.example.com", "rules": rule,
                    "objectSelector": {"matchLabels": {"audited": "yes"}},
                    "clientConfig": {"caBundle": ca_bundle, "url": url("/audit")},
                    "sideEffects": "None", "failurePolicy": policy,
                    "admissionReviewVersions": ["v1"]}]})
    };
    let created = admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            &validating("Fail"),
        )
        .await;
    let kubectl = newest_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let apply = |name: &str, obj: &Value, ns: &str, extra: &[&str]| {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, obj.to_string()).unwrap();
        let mut args = vec!["apply", "-n", ns, "-f", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        server.kubectl(&kubectl, &args)
    };

    // An admitted ConfigMap in the selected namespace: mutated through the Service, validated
    // by URL with the webhook's warning printed by kubectl. The configurations were just
    // created; the informers see them within moments.
    let out = eventually("the webhooks to be called", || {
        let out = apply(
            "plain-cm",
            &configmap("a", json!({"app": "x"}), json!({})),
            "hooked",
            &[],
        );
        async move { (!sent("/validate").is_empty()).then_some(out) }
    })
    .await;
    ok(&out, "kubectl apply a");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains(&format!("Warning: {WARNING}")), "{stderr}");
    let got = admin
        .get("/api/v1/namespaces/hooked/configmaps/a")
        .await
        .unwrap()
        .json();
    assert_eq!(
        got["metadata"]["labels"],
        json!({"app": "x", "mutated": "true"})
    );
    let review = sent("/validate").pop().unwrap();
    assert_eq!(review["operation"], "CREATE");
    assert_eq!(review["namespace"], "hooked");
    assert_eq!(
        review["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        review["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    // The validating webhook sees the mutated object, and who asked.
    assert_eq!(review["object"]["metadata"]["labels"]["mutated"], "true");
    assert!(
        review["userInfo"]["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("system:masters"))
    );
    // Client-side apply of a new object is a create.
    assert_eq!(review["options"]["kind"], "CreateOptions");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(p, _)| p == "/validate?timeout=5s")
    );

    // A denial, through kubectl and as the Status upstream sends.
    let deny = configmap("b", json!({"deny": "true"}), json!({}));
    let stderr = failed(&apply("deny", &deny, "hooked", &[]), "kubectl apply b");
    assert!(
        stderr.contains(&format!(
            "admission webhook \"deny.example.com\" denied the request: {DENIED}"
        )),
        "{stderr}"
    );
    let r = admin
        .json("POST", "/api/v1/namespaces/hooked/configmaps", &deny)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        format!("admission webhook \"deny.example.com\" denied the request: {DENIED}")
    );
    assert_eq!(
        r.headers.get("warning").unwrap(),
        &format!("299 - \"{WARNING}\"")
    );

    // matchConditions: an annotated object skips the validating webhook.
    let skipped = configmap("c", json!({"deny": "true"}), json!({"skip": "yes"}));
    ok(
        &apply("skipped", &skipped, "hooked", &[]),
        "kubectl apply c",
    );

    // namespaceSelector: nothing is sent for the other namespace.
    let before = seen.lock().unwrap().len();
    ok(
        &apply("elsewhere", &deny, "plain", &[]),
        "kubectl apply b in plain",
    );
    let got = admin
        .get("/api/v1/namespaces/plain/configmaps/b")
        .await
        .unwrap()
        .json();
    assert!(got["metadata"]["labels"].get("mutated").is_none());
    assert_eq!(seen.lock().unwrap().len(), before);

    // objectSelector: only the labelled object reaches the audit webhook, in any namespace.
    assert!(sent("/audit").is_empty());
    ok(
        &apply(
            "audited",
            &configmap("d", json!({"audited": "yes"}), json!({})),
            "plain",
            &[],
        ),
        "kubectl apply d",
    );
    assert_eq!(sent("/audit").len(), 1);

    // A dry run reaches webhooks whose side effects allow it, flagged as such, and stores nothing.
    ok(
        &apply(
            "dry",
            &configmap("e", json!({}), json!({})),
            "hooked",
            &["--dry-run=server"],
        ),
        "dry run",
    );
    assert_eq!(sent("/mutate").pop().unwrap()["dryRun"], true);
    assert_eq!(sent("/validate").pop().unwrap()["dryRun"], true);
    assert_eq!(
        admin
            .get("/api/v1/namespaces/hooked/configmaps/e")
            .await
            .unwrap()
            .status,
        404
    );

    // The webhook down: the mutating one (Ignore) is skipped, the validating one (Fail) refuses
    // with upstream's 500.
    webhook.stop();
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/hooked/configmaps",
            &configmap("f", json!({}), json!({})),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "InternalError");
    let message = status["message"].as_str().unwrap();
    let expected = format!(
        "Internal error occurred: failed calling webhook \"deny.example.com\": failed to call webhook: \
         Post \"https://127.0.0.1:{port}/validate?timeout=5s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
    );
    assert_eq!(message, expected);

    // failurePolicy Ignore admits.
    let mut ignore = validating("Ignore");
    ignore["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    let r = admin
        .json(
            "PUT",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/deny-labelled",
            &ignore,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("failurePolicy Ignore to admit", || async {
        let r = admin
            .json(
                "POST",
                "/api/v1/namespaces/hooked/configmaps",
                &configmap("f", json!({}), json!({})),
            )
            .await;
        (r.status == 201).then_some(())
    })
    .await;
}

/// The answers of the reinvocation test's webhooks: `/first` labels `first=yes` and, once the
/// object carries `second`, notes it in an annotation; `/second` labels `second=yes`.
fn reinvoked(path: &str, request: &Value) -> Value {
    let labels = &request["object"]["metadata"]["labels"];
    let mut patch = Vec::new();
    if !labels.is_object() {
        patch.push(json!({"op": "add", "path": "/metadata/labels", "value": {}}));
    }
    match path {
        "/first" => {
            patch.push(json!({"op": "add", "path": "/metadata/labels/first", "value": "yes"}));
            if labels.get("second").is_some() {
                patch.push(json!({"op": "add", "path": "/metadata/annotations",
                    "value": {"seen-second": "yes"}}));
            }
        }
        _ => patch.push(json!({"op": "add", "path": "/metadata/labels/second", "value": "yes"})),
    }
    let patch = base64::engine::general_purpose::STANDARD.encode(json!(patch).to_string());
    json!({"uid": request["uid"], "allowed": true, "patchType": "JSONPatch", "patch": patch})
}

#[tokio::test]
async fn mutating_webhooks_are_reinvoked_if_needed_and_side_effects_are_none_in_v1() {
    let seen: Seen = Arc::default();
    let webhook = start_webhook(&["localhost"], &seen, reinvoked);
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem);
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", webhook.addr.port());
    let calls = |path: &str| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("{path}?")))
            .count()
    };
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "hooked"}}),
        )
        .await;
    let rule = json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
        "resources": ["configmaps"]}]);
    // Configurations run in name order: a-first's webhook before b-second's.
    for (config, name, path, reinvocation) in [
        ("a-first", "first.example.com", "/first", "IfNeeded"),
        ("b-second", "second.example.com", "/second", "Never"),
    ] {
        admin
            .create(
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                &json!({"metadata": {"name": config},
                    "webhooks": [{"name": name, "rules": rule, "reinvocationPolicy": reinvocation,
                        "clientConfig": {"caBundle": ca_bundle, "url": url(path)},
                        "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}),
            )
            .await;
    }
    // v1 knows no side effects a dry run could not undo: `Some` and `Unknown` are refused as
    // upstream refuses them, so a dry run can only reach webhooks that allow it.
    let side_effects = |effects: &str| {
        json!({"metadata": {"name": "side-effects"},
            "webhooks": [{"name": "some.example.com", "rules": rule,
                "clientConfig": {"caBundle": ca_bundle, "url": url("/some")},
                // The authorizer, asked of the request's own resource; an error would skip the
                // webhook (Ignore).
                "matchConditions": [{"name": "may-create",
                    "expression": "authorizer.requestResource.check('create').allowed()"}],
                "sideEffects": effects, "failurePolicy": "Ignore",
                "admissionReviewVersions": ["v1"]}]})
    };
    for effects in ["Some", "Unknown"] {
        let r = admin
            .json(
                "POST",
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
                &side_effects(effects),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(
            r.json()["message"],
            format!(
                "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"side-effects\" is invalid: \
                 webhooks[0].sideEffects: Unsupported value: \"{effects}\": supported values: \"None\", \"NoneOnDryRun\""
            )
        );
    }
    admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            &side_effects("NoneOnDryRun"),
        )
        .await;
    let configmaps = "/api/v1/namespaces/hooked/configmaps";

    // The second webhook changed the object after the first ran: the first is called again
    // and sees the second's label; the second is not.
    let created = eventually("all three webhooks to be called", || async {
        let r = admin
            .json("POST", configmaps, &configmap("a", json!({}), json!({})))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let seen_all = calls("/first") > 0 && calls("/second") > 0 && calls("/some") > 0;
        if !seen_all {
            let r = admin
                .request("DELETE", &format!("{configmaps}/a"), &[])
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            seen.lock().unwrap().clear();
        }
        seen_all.then(|| r.json())
    })
    .await;
    assert_eq!(
        created["metadata"]["labels"],
        json!({"first": "yes", "second": "yes"})
    );
    assert_eq!(
        created["metadata"]["annotations"],
        json!({"seen-second": "yes"})
    );
    assert_eq!(
        (calls("/first"), calls("/second"), calls("/some")),
        (2, 1, 1)
    );

    // A dry run reaches them all, flagged as such; the mutations show in the answer only.
    seen.lock().unwrap().clear();
    let r = admin
        .json(
            "POST",
            &format!("{configmaps}?dryRun=All"),
            &configmap("b", json!({}), json!({})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json()["metadata"]["annotations"],
        json!({"seen-second": "yes"})
    );
    assert_eq!(
        (calls("/first"), calls("/second"), calls("/some")),
        (2, 1, 1)
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(_, r)| r["request"]["dryRun"] == true)
    );
    let r = admin.get(&format!("{configmaps}/b")).await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
}

#[tokio::test]
async fn webhooks_see_equivalent_versions_converted_unless_their_match_policy_is_exact() {
    let seen: Seen = Arc::default();
    let webhook = start_webhook(&["localhost"], &seen, answer);
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem);
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", webhook.addr.port());
    let sent = |path: &str| -> Vec<Value> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(path))
            .map(|(_, r)| r["request"].clone())
            .collect()
    };
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    two_version_crd(&admin, "widgets", "Widget").await;
    // Both webhooks name v1 only: the mutating one with the default matchPolicy (Equivalent),
    // the validating one Exact.
    let rule = json!([{"operations": ["CREATE"], "apiGroups": ["example.com"], "apiVersions": ["v1"],
        "resources": ["widgets"]}]);
    admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            &json!({"metadata": {"name": "equivalent"},
                "webhooks": [{"name": "mutate.example.com", "rules": rule,
                    "clientConfig": {"caBundle": ca_bundle, "url": url("/mutate")},
                    "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}),
        )
        .await;
    admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            &json!({"metadata": {"name": "exact"},
                "webhooks": [{"name": "audit.example.com", "rules": rule, "matchPolicy": "Exact",
                    "clientConfig": {"caBundle": ca_bundle, "url": url("/audit")},
                    "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}),
        )
        .await;
    let widget = |version: &str, name: &str| {
        json!({"apiVersion": format!("example.com/{version}"), "kind": "Widget",
            "metadata": {"name": name}, "spec": {"size": 1}})
    };
    let widgets = |version: &str| format!("/apis/example.com/{version}/namespaces/default/widgets");

    // Asked of v2: the mutating webhook sees it as v1 and labels it; the Exact one is not asked.
    let created = eventually("the CRD and the webhooks to be live", || async {
        let r = admin.json("POST", &widgets("v2"), &widget("v2", "a")).await;
        if r.status == 404 {
            return None;
        }
        assert_eq!(r.status, 201, "{}", r.body);
        if sent("/mutate").is_empty() {
            let r = admin
                .request("DELETE", &format!("{}/a", widgets("v2")), &[])
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            return None;
        }
        Some(r.json())
    })
    .await;
    assert_eq!(created["apiVersion"], "example.com/v2");
    assert_eq!(created["metadata"]["labels"], json!({"mutated": "true"}));
    let review = sent("/mutate").pop().unwrap();
    assert_eq!(
        review["kind"],
        json!({"group": "example.com", "version": "v1", "kind": "Widget"})
    );
    assert_eq!(
        review["resource"],
        json!({"group": "example.com", "version": "v1", "resource": "widgets"})
    );
    assert_eq!(
        review["requestKind"],
        json!({"group": "example.com", "version": "v2", "kind": "Widget"})
    );
    assert_eq!(
        review["requestResource"],
        json!({"group": "example.com", "version": "v2", "resource": "widgets"})
    );
    assert_eq!(review["object"]["apiVersion"], "example.com/v1");
    assert!(sent("/audit").is_empty());

    // Asked of v1, both see it as asked.
    let r = admin.json("POST", &widgets("v1"), &widget("v1", "b")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let review = eventually("the Exact webhook to be asked", || async {
        sent("/audit").pop()
    })
    .await;
    assert_eq!(review["requestKind"]["version"], "v1");
    assert_eq!(review["object"]["apiVersion"], "example.com/v1");
}

/// A webhook refusing `rm` in exec: it sees the pod's exec as a CONNECT of PodExecOptions.
fn connect_answer(_path: &str, request: &Value) -> Value {
    let command = request["object"]["command"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if command.contains(&json!("rm")) {
        json!({"uid": request["uid"], "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": "rm is not allowed"}})
    } else {
        json!({"uid": request["uid"], "allowed": true})
    }
}

#[tokio::test]
async fn connects_are_admitted_with_their_options() {
    let seen: Seen = Arc::default();
    let webhook = start_webhook(&["localhost"], &seen, connect_answer);
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem);
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/default/pods",
            &json!({"metadata": {"name": "p"}, "spec": {"automountServiceAccountToken": false,
                "containers": [{"name": "app", "image": "nginx"}]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            &json!({"metadata": {"name": "exec-guard"},
                "webhooks": [{"name": "connect.example.com",
                    "rules": [{"operations": ["CONNECT"], "apiGroups": [""], "apiVersions": ["v1"],
                        "resources": ["pods/*"]}],
                    "clientConfig": {"caBundle": ca_bundle,
                        "url": format!("https://127.0.0.1:{}/connect", webhook.addr.port())},
                    "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}),
        )
        .await;
    let exec =
        "/api/v1/namespaces/default/pods/p/exec?container=app&stdout=true&command=rm&command=-rf";
    let r = eventually("the webhook to be asked", || async {
        let r = admin
            .with_body("POST", exec, "application/json", String::new())
            .await;
        (r.status == 403).then_some(r)
    })
    .await;
    assert_eq!(
        r.json()["message"],
        "admission webhook \"connect.example.com\" denied the request: rm is not allowed"
    );
    let review = seen.lock().unwrap().last().unwrap().1["request"].clone();
    assert_eq!(review["operation"], "CONNECT");
    assert_eq!(
        review["kind"],
        json!({"group": "", "version": "v1", "kind": "PodExecOptions"})
    );
    assert_eq!(review["subResource"], "exec");
    assert_eq!(review["name"], "p");
    assert_eq!(
        review["object"],
        json!({"kind": "PodExecOptions", "apiVersion": "v1", "stdout": true,
            "container": "app", "command": ["rm", "-rf"]})
    );

    // Admitted, the exec goes on to the pod's node; this pod has none.
    let r = admin
        .with_body(
            "POST",
            "/api/v1/namespaces/default/pods/p/exec?container=app&stdout=true&command=ls",
            "application/json",
            String::new(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["message"], "pod p does not have a host assigned");

    // kubectl prints the refusal.
    let stderr = failed(
        &server.kubectl(
            &newest_kubectl(),
            &["exec", "p", "-c", "app", "--", "rm", "x"],
        ),
        "kubectl exec rm",
    );
    assert!(stderr.contains("rm is not allowed"), "{stderr}");
    // Logs are reads: no CONNECT for them.
    let before = seen.lock().unwrap().len();
    admin
        .get("/api/v1/namespaces/default/pods/p/log")
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), before);
}
