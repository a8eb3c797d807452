//! API Priority and Fairness against a started server: upstream's bootstrap FlowSchemas and
//! PriorityLevelConfigurations served and listed by kubectl, their `Dangling` conditions and
//! validation, every response naming its classification, and a noisy user confined to a
//! priority level of one seat and a queue of one — queued, then refused with 429 — while the
//! administrator's requests all succeed; a busy level borrowing the seats idle ones lend; and
//! lists estimated at a seat per hundred objects they go through.

use crate::common::{newest_kubectl, ok};
use crate::support::backend::{Backend, full};
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use crate::support::scrape::Scrape;
use crate::support::wait::eventually;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const FLOWSCHEMAS: &str = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas";
const LEVELS: &str = "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations";

/// The `Dangling` condition of FlowSchema `name`, once the server has written it with `status`.
async fn dangling(admin: &Https, name: &str, status: &str) -> Value {
    eventually(&format!("Dangling={status} on {name}"), || async {
        let fs = admin
            .get(&format!("{FLOWSCHEMAS}/{name}"))
            .await
            .ok()?
            .json();
        fs["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Dangling" && c["status"] == status)
            .cloned()
    })
    .await
}

fn uid(obj: &Value) -> String {
    obj["metadata"]["uid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_bootstrap_configuration_is_served_kept_and_validated_as_upstreams() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();

    let out = server.kubectl(&newest_kubectl(), &["get", "flowschemas"]);
    let table = ok(&out, "kubectl get flowschemas");
    for row in [
        "exempt   exempt   1   <none>",
        "catch-all   catch-all   10000   ByUser",
        "global-default   global-default   9900   ByUser",
        "probes   exempt   2   <none>",
    ] {
        let words: Vec<_> = row.split_whitespace().collect();
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().take(4).eq(words.iter().copied())),
            "{row} in\n{table}"
        );
    }
    assert_eq!(
        table.lines().count(),
        12,
        "11 schemas and a header:\n{table}"
    );
    let out = server.kubectl(&newest_kubectl(), &["get", "prioritylevelconfigurations"]);
    let table = ok(&out, "kubectl get prioritylevelconfigurations");
    assert!(
        table.lines().any(|l| l.split_whitespace().take(6).eq([
            "workload-low",
            "Limited",
            "100",
            "128",
            "6",
            "50"
        ])),
        "{table}"
    );

    // Every schema's level exists, and the server says so.
    let found = dangling(&admin, "global-default", "False").await;
    assert_eq!(found["reason"], "Found");
    assert_eq!(
        found["message"],
        r#"This FlowSchema references the PriorityLevelConfiguration object named "global-default" and it exists"#
    );
    // Read once its own condition is written, so the write below races nothing.
    dangling(&admin, "catch-all", "False").await;
    let catch_all = admin
        .get(&format!("{FLOWSCHEMAS}/catch-all"))
        .await
        .unwrap()
        .json();
    assert_eq!(
        catch_all["metadata"]["annotations"]["apf.kubernetes.io/autoupdate-spec"],
        "true"
    );
    assert!(
        catch_all["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |m| m["manager"] == "api-priority-and-fairness-config-consumer-v1"
                    && m["subresource"] == "status"
            ),
        "{catch_all}"
    );

    // A schema naming no level dangles.
    let orphan = json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": "orphan"},
        "spec": {"priorityLevelConfiguration": {"name": "nowhere"},
                 "rules": [{"subjects": [{"kind": "User", "user": {"name": "nobody"}}],
                            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/version"]}]}]}});
    let created = admin.create(FLOWSCHEMAS, &orphan).await;
    assert_eq!(created["spec"]["matchingPrecedence"], 1000, "defaulted");
    let missing = dangling(&admin, "orphan", "True").await;
    assert_eq!(missing["reason"], "NotFound");

    // Upstream's validation: the mandatory specs are fixed, precedence 1 is exempt's.
    let mut changed = catch_all.clone();
    changed["spec"]["matchingPrecedence"] = json!(9000);
    let r = admin
        .json("PUT", &format!("{FLOWSCHEMAS}/catch-all"), &changed)
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("spec of 'catch-all' must equal the fixed value"),
        "{}",
        r.body
    );
    let mut first = orphan.clone();
    first["metadata"]["name"] = json!("first");
    first["spec"]["matchingPrecedence"] = json!(1);
    let r = admin.json("POST", FLOWSCHEMAS, &first).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["details"]["causes"][0]["message"],
        "Invalid value: 1: only the schema named 'exempt' may have matchingPrecedence 1"
    );
    let level = json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
        "metadata": {"name": "wide"},
        "spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queue",
                 "queuing": {"queues": 4, "handSize": 5}}}}});
    let r = admin.json("POST", LEVELS, &level).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["details"]["causes"][0]["field"],
        "spec.limited.limitResponse.queuing.handSize"
    );

    // Every response names its classification: the administrator is exempt.
    let exempt_level = admin.get(&format!("{LEVELS}/exempt")).await.unwrap().json();
    let exempt_schema = admin
        .get(&format!("{FLOWSCHEMAS}/exempt"))
        .await
        .unwrap()
        .json();
    let r = admin.get("/api/v1/namespaces").await.unwrap();
    assert_eq!(
        r.headers["x-kubernetes-pf-prioritylevel-uid"],
        uid(&exempt_level).as_str()
    );
    assert_eq!(
        r.headers["x-kubernetes-pf-flowschema-uid"],
        uid(&exempt_schema).as_str()
    );
    let levels = admin
        .get("/debug/api_priority_and_fairness/dump_priority_levels")
        .await
        .unwrap();
    assert!(
        levels.body.starts_with("PriorityLevelName, ActiveQueues,"),
        "{}",
        levels.body
    );
    assert!(levels.body.contains("\nworkload-low,"), "{}", levels.body);
}

#[tokio::test]
async fn without_priority_and_fairness_responses_name_no_classification() {
    let mut server = TestServer::up(&["--enable-priority-and-fairness=false"]);
    server.wait_ready().await;
    let admin = server.admin();
    let r = admin.get("/api/v1/namespaces").await.unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.headers.contains_key("x-kubernetes-pf-flowschema-uid"));
    // The objects are still kept, as upstream's storage keeps them.
    let fs = admin.get(&format!("{FLOWSCHEMAS}/exempt")).await.unwrap();
    assert_eq!(fs.status, 200, "{}", fs.body);
    let dump = admin
        .get("/debug/api_priority_and_fairness/dump_priority_levels")
        .await
        .unwrap();
    assert_eq!(dump.status, 404);
}

/// A validating webhook that holds every review until released, so a request can be kept
/// executing for as long as the test needs; a `probe` it answers at once, and counts apart.
fn holding_webhook(
    seen: Arc<AtomicUsize>,
    probed: Arc<AtomicUsize>,
    released: tokio::sync::watch::Receiver<bool>,
) -> Backend {
    Backend::start(
        None,
        Arc::new(move |req, _| {
            let (seen, probed, mut released) = (seen.clone(), probed.clone(), released.clone());
            Box::pin(async move {
                use http_body_util::BodyExt;
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let review: Value = serde_json::from_slice(&body).unwrap();
                if review["request"]["object"]["metadata"]["name"] == "probe" {
                    probed.fetch_add(1, Ordering::SeqCst);
                } else {
                    seen.fetch_add(1, Ordering::SeqCst);
                    let _ = released.wait_for(|r| *r).await;
                }
                let reply = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "response": {"uid": review["request"]["uid"], "allowed": true}});
                hyper::Response::builder()
                    .header("content-type", "application/json")
                    .body(full(reply.to_string()))
                    .unwrap()
            })
        }),
    )
}

/// A [`holding_webhook`], and the ValidatingWebhookConfiguration sending it the creates of
/// ConfigMaps labelled `slow`.
async fn hold_slow_configmaps(
    admin: &Https,
    seen: Arc<AtomicUsize>,
    probed: Arc<AtomicUsize>,
    released: tokio::sync::watch::Receiver<bool>,
) -> Backend {
    let webhook = holding_webhook(seen, probed, released);
    let ca = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem)
    };
    admin
        .create(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            &json!({"metadata": {"name": "hold"}, "webhooks": [{
                "name": "hold.kubeboot.test",
                "clientConfig": {"url": format!("https://127.0.0.1:{}/validate", webhook.addr.port()), "caBundle": ca},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
                "objectSelector": {"matchLabels": {"slow": "true"}},
                "admissionReviewVersions": ["v1"], "sideEffects": "None", "timeoutSeconds": 30}]}),
        )
        .await;
    webhook
}

fn slow_configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"slow": "true"}}})
}

#[tokio::test]
async fn a_noisy_user_is_queued_then_refused_while_the_administrator_is_served() {
    // One seat in all: each level with shares gets ceil(1 × shares / sum) = 1.
    let mut server = TestServer::up(&[
        "--max-requests-inflight=1",
        "--max-mutating-requests-inflight=0",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    let noisy = server.as_user("noisy", &[]);

    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &json!({"metadata": {"name": "noisy-edits"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "noisy"}]}),
        )
        .await;
    let level = admin
        .create(
            LEVELS,
            // It neither lends nor borrows: its one seat stays its only one.
            &json!({"metadata": {"name": "noisy"}, "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Queue",
                    "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 1}}}}}),
        )
        .await;
    let schema = admin
        .create(
            FLOWSCHEMAS,
            &json!({"metadata": {"name": "noisy"}, "spec": {
                "priorityLevelConfiguration": {"name": "noisy"}, "matchingPrecedence": 500,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [{"subjects": [{"kind": "User", "user": {"name": "noisy"}}],
                    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                       "namespaces": ["*"], "clusterScope": true}]}]}}),
        )
        .await;
    // Once the schema is found, the filter's configuration holds it too.
    dangling(&admin, "noisy", "False").await;

    let seen = Arc::new(AtomicUsize::new(0));
    let probed = Arc::new(AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(false);
    let _webhook = hold_slow_configmaps(&admin, seen.clone(), probed.clone(), released).await;

    let path = "/api/v1/namespaces/default/configmaps";
    // The noisy user's binding has reached the authorizer (its requests before are its own
    // level's, one at a time, and counted below).
    eventually("the noisy user's binding", || async {
        (noisy.get(path).await.ok()?.status == 200).then_some(())
    })
    .await;
    let noisy_flow = [("flow_schema", "noisy"), ("priority_level", "noisy")];
    let dispatched = |s: &Scrape| {
        s.value(
            "apiserver_flowcontrol_dispatched_requests_total",
            &noisy_flow,
        )
    };
    let dispatched_before = dispatched(&Scrape::of(&admin).await);
    eventually("the webhook to be live", || async {
        let r = admin
            .json(
                "POST",
                &format!("{path}?dryRun=All"),
                &slow_configmap("probe"),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        (probed.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    // The first takes the level's one seat and is held by the webhook.
    let executing = {
        let noisy = server.as_user("noisy", &[]);
        tokio::spawn(async move { noisy.json("POST", path, &slow_configmap("first")).await })
    };
    eventually("the first request at the webhook", || async {
        (seen.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    // The second waits in the level's one queue.
    let queued = {
        let noisy = server.as_user("noisy", &[]);
        tokio::spawn(async move { noisy.json("POST", path, &slow_configmap("second")).await })
    };
    eventually("the second request queued", || async {
        let s = Scrape::of(&admin).await;
        let waiting = s.value(
            "apiserver_flowcontrol_current_inqueue_requests",
            &[("flow_schema", "noisy"), ("priority_level", "noisy")],
        );
        (waiting == 1.0).then_some(())
    })
    .await;

    // The third finds the seat taken and the queue full: 429, as upstream answers it.
    let refused = noisy.get(path).await.unwrap();
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body, "Too many requests, please try again later.\n");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(
        refused.headers["x-kubernetes-pf-flowschema-uid"],
        uid(&schema).as_str()
    );
    assert_eq!(
        refused.headers["x-kubernetes-pf-prioritylevel-uid"],
        uid(&level).as_str()
    );

    // Meanwhile every request of the administrator succeeds.
    for _ in 0..10 {
        let r = admin.get(path).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let requests = admin
        .get("/debug/api_priority_and_fairness/dump_requests?includeRequestDetails=1")
        .await
        .unwrap();
    let noisy_rows: Vec<_> = requests
        .body
        .lines()
        .filter(|l| l.starts_with("noisy,"))
        .collect();
    assert_eq!(noisy_rows.len(), 2, "{}", requests.body);
    assert!(
        noisy_rows
            .iter()
            .all(|l| l.contains("noisy,") && l.contains("create,"))
    );

    release.send_replace(true);
    for request in [executing, queued] {
        let r = request.await.unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let s = Scrape::of(&admin).await;
    assert_eq!(
        s.value(
            "apiserver_flowcontrol_rejected_requests_total",
            &[noisy_flow[0], noisy_flow[1], ("reason", "queue-full")]
        ),
        1.0
    );
    assert_eq!(dispatched(&s) - dispatched_before, 2.0);
    assert_eq!(
        s.value(
            "apiserver_flowcontrol_nominal_limit_seats",
            &[("priority_level", "noisy")]
        ),
        1.0
    );
    assert_eq!(
        s.value(
            "apiserver_flowcontrol_rejected_requests_total",
            &[("flow_schema", "exempt")]
        ),
        0.0
    );
}

#[tokio::test]
async fn a_busy_level_borrows_the_seats_idle_levels_lend() {
    // Ten seats. "borrower" has ceil(10 × 10 / 255) = 1 of its own, lends none and may borrow
    // 300% of it; the bootstrap levels lend theirs.
    let mut server = TestServer::up(&[
        "--max-requests-inflight=10",
        "--max-mutating-requests-inflight=0",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &json!({"metadata": {"name": "busy-edits"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "busy"}]}),
        )
        .await;
    admin
        .create(
            LEVELS,
            &json!({"metadata": {"name": "borrower"}, "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 10, "lendablePercent": 0, "borrowingLimitPercent": 300,
                "limitResponse": {"type": "Queue",
                    "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 10}}}}}),
        )
        .await;
    admin
        .create(
            FLOWSCHEMAS,
            &json!({"metadata": {"name": "busy"}, "spec": {
                "priorityLevelConfiguration": {"name": "borrower"}, "matchingPrecedence": 500,
                "rules": [{"subjects": [{"kind": "User", "user": {"name": "busy"}}],
                    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                       "namespaces": ["*"], "clusterScope": true}]}]}}),
        )
        .await;
    dangling(&admin, "busy", "False").await;
    let level = [("priority_level", "borrower")];
    let s = Scrape::of(&admin).await;
    let seats = |s: &Scrape, metric: &str| s.value(metric, &level);
    assert_eq!(seats(&s, "apiserver_flowcontrol_nominal_limit_seats"), 1.0);
    assert_eq!(seats(&s, "apiserver_flowcontrol_lower_limit_seats"), 1.0);
    assert_eq!(seats(&s, "apiserver_flowcontrol_upper_limit_seats"), 4.0);

    let seen = Arc::new(AtomicUsize::new(0));
    let probed = Arc::new(AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(false);
    let _webhook = hold_slow_configmaps(&admin, seen.clone(), probed.clone(), released).await;
    let busy = server.as_user("busy", &[]);
    let path = "/api/v1/namespaces/default/configmaps";
    eventually("the busy user's binding and the webhook", || async {
        let r = busy
            .json(
                "POST",
                &format!("{path}?dryRun=All"),
                &slow_configmap("probe"),
            )
            .await;
        (r.status == 201 && probed.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;

    // Four held requests: the level's demand is four seats. Within an adjustment period or
    // two (ten seconds each) the level has borrowed up to its limit and all four execute.
    let held: Vec<_> = (0..4)
        .map(|i| {
            let busy = server.as_user("busy", &[]);
            tokio::spawn(async move {
                busy.json("POST", path, &slow_configmap(&format!("held-{i}")))
                    .await
            })
        })
        .collect();
    eventually("all four executing at once", || async {
        (seen.load(Ordering::SeqCst) == 4).then_some(())
    })
    .await;
    let s = Scrape::of(&admin).await;
    assert_eq!(seats(&s, "apiserver_flowcontrol_current_limit_seats"), 4.0);
    assert!(seats(&s, "apiserver_flowcontrol_demand_seats_high_watermark") >= 4.0);
    assert!(seats(&s, "apiserver_flowcontrol_target_seats") > 1.0);
    assert!(s.value("apiserver_flowcontrol_seat_fair_frac", &[]) > 0.0);
    // What it borrowed came from the levels that lend: workload-low, idle, lends 90% of its 4.
    assert!(
        s.value(
            "apiserver_flowcontrol_current_limit_seats",
            &[("priority_level", "workload-low")]
        ) < 4.0
    );

    release.send_replace(true);
    for request in held {
        let r = request.await.unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

#[tokio::test]
async fn lists_are_estimated_at_a_seat_per_hundred_objects_they_go_through() {
    let mut server = TestServer::up(&["--builtin-controllers=false"]);
    server.wait_ready().await;
    let admin = server.admin();
    // A role of its own: the aggregated `view` is filled by a built-in controller.
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            &json!({"metadata": {"name": "configmap-reader"}, "rules": [{"apiGroups": [""],
                "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
        )
        .await;
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &json!({"metadata": {"name": "reader-views"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "reader"}]}),
        )
        .await;
    let path = "/api/v1/namespaces/default/configmaps";
    for i in 0..250 {
        admin
            .create(path, &json!({"metadata": {"name": format!("cm-{i}")}}))
            .await;
    }
    // The reader's requests are global-default's, whose most is 8 seats at 600.
    let reader = server.as_user("reader", &[]);
    eventually("the reader's binding", || async {
        (reader.get(path).await.ok()?.status == 200).then_some(())
    })
    .await;
    let flow = [
        ("flow_schema", "global-default"),
        ("priority_level", "global-default"),
    ];
    let estimated = |s: &Scrape| {
        (
            s.value("apiserver_flowcontrol_work_estimated_seats_sum", &flow),
            s.value("apiserver_flowcontrol_work_estimated_seats_count", &flow),
        )
    };
    let before = estimated(&Scrape::of(&admin).await);

    // From the watch cache, a list goes through every stored ConfigMap: 250 and the few the
    // server keeps elsewhere, ⌈≥250/100⌉ = 3 seats, its first page of 50 too.
    let r = reader.get(path).await.unwrap();
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 250);
    let r = reader.get(&format!("{path}?limit=50")).await.unwrap();
    let token = r.json()["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    // A continuation is read from storage: twice its page, 100 objects, 1 seat; one object by
    // name, 1 seat.
    let r = reader
        .get(&format!("{path}?limit=50&continue={token}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = reader
        .get(&format!("{path}?fieldSelector=metadata.name%3Dcm-7"))
        .await
        .unwrap();
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);

    let after = estimated(&Scrape::of(&admin).await);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (3.0 + 3.0 + 1.0 + 1.0, 4.0)
    );
    // The administrator's requests are exempt, and not estimated.
    assert_eq!(
        Scrape::of(&admin).await.value(
            "apiserver_flowcontrol_work_estimated_seats_count",
            &[("priority_level", "exempt")]
        ),
        0.0
    );
}
