//! The Webhook authorization mode against a started server: a real HTTPS webhook (in this
//! process, on its own thread) answers the SubjectAccessReviews kubeboot sends, with the bearer
//! token and CA of its kubeconfig-format file. Its answers decide in mode order
//! (`Node,Webhook,RBAC`): an allow needs no binding, a deny overrides a cluster-admin binding,
//! no opinion falls through to RBAC; answers are cached; an unreachable webhook makes a
//! request that nothing else allows a 500, as upstream's.

use crate::support::backend::{Backend, Body, full};
use crate::support::kubeboot::TestServer;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The token the webhook's kubeconfig carries and the webhook demands.
const TOKEN: &str = "authz-webhook-secret";

/// Starts the webhook, recording the reviews it is sent in `seen`; writes its kubeconfig-format
/// file (the CA as a file next to it, named relatively, as upstream resolves it) into `dir`.
fn start_webhook(dir: &Path, seen: Arc<Mutex<Vec<Value>>>) -> (Backend, PathBuf) {
    let backend = Backend::start(
        None,
        Arc::new(move |req, _| {
            let seen = seen.clone();
            Box::pin(async move { answer(req, &seen).await })
        }),
    );
    std::fs::write(dir.join("authz-webhook-ca.crt"), &backend.ca_pem).unwrap();
    let kubeconfig = dir.join("authz-webhook.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: authz\n  cluster:\n    \
             server: https://{}/authorize\n    certificate-authority: authz-webhook-ca.crt\n\
             users:\n- name: kubeboot\n  user:\n    token: {TOKEN}\n\
             contexts:\n- name: webhook\n  context:\n    cluster: authz\n    user: kubeboot\n\
             current-context: webhook\n",
            backend.addr
        ),
    )
    .unwrap();
    (backend, kubeconfig)
}

/// The webhook's policy: alice may read pods in `hooked`; mallory is denied everything; anyone
/// else gets no opinion. Requests without the kubeconfig's token are 401.
async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    seen: &Mutex<Vec<Value>>,
) -> hyper::Response<Body> {
    let authorized = req
        .headers()
        .get("authorization")
        .is_some_and(|v| v == format!("Bearer {TOKEN}").as_str());
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    if !authorized || path != "/authorize" {
        return hyper::Response::builder()
            .status(401)
            .body(full(""))
            .unwrap();
    }
    let review: Value = serde_json::from_slice(&body).unwrap();
    seen.lock().unwrap().push(review.clone());
    let spec = &review["spec"];
    let attrs = &spec["resourceAttributes"];
    let status = match spec["user"].as_str() {
        Some("mallory") => json!({"allowed": false, "denied": true, "reason": "mallory is banned"}),
        Some("alice")
            if attrs["namespace"] == "hooked"
                && attrs["resource"] == "pods"
                && ["get", "list"].contains(&attrs["verb"].as_str().unwrap_or_default()) =>
        {
            json!({"allowed": true, "reason": "alice reads pods"})
        }
        _ => json!({"allowed": false, "reason": "the webhook has no opinion"}),
    };
    let reply = json!({
        "apiVersion": review["apiVersion"], "kind": "SubjectAccessReview", "status": status,
    });
    hyper::Response::builder()
        .header("content-type", "application/json")
        .body(full(reply.to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_webhook_decides_in_mode_order_with_cached_answers_and_a_500_when_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let reviews = Arc::new(Mutex::new(Vec::new()));
    let (mut webhook, kubeconfig) = start_webhook(dir.path(), reviews.clone());
    let received = || reviews.lock().unwrap().clone();
    let config_flag = format!(
        "--authorization-webhook-config-file={}",
        kubeconfig.display()
    );
    let mut server = TestServer::up(&[
        "--authorization-mode=Node,Webhook,RBAC",
        &config_flag,
        "--authorization-webhook-version=v1",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "hooked"}}),
        )
        .await;
    // mallory holds cluster-admin through RBAC, bob view in `hooked`.
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            &json!({"metadata": {"name": "mallory-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]}),
        )
        .await;
    admin
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/hooked/rolebindings",
            &json!({"metadata": {"name": "bob-view"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]}),
        )
        .await;
    let pods = "/api/v1/namespaces/hooked/pods";

    // Allowed by the webhook alone: alice has no binding.
    let alice = server.as_user("alice", &["devs"]);
    let r = alice.get(pods).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let reviews = received();
    let review = reviews
        .iter()
        .find(|r| r["spec"]["user"] == "alice")
        .expect("the webhook was asked about alice");
    assert_eq!(review["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(review["kind"], "SubjectAccessReview");
    assert_eq!(
        review["spec"]["resourceAttributes"],
        json!({"namespace": "hooked", "verb": "list", "version": "v1", "resource": "pods"})
    );
    assert_eq!(
        review["spec"]["groups"],
        json!(["devs", "system:authenticated"])
    );
    // The same question again is answered from the cache.
    let asked = received().len();
    assert_eq!(alice.get(pods).await.unwrap().status, 200);
    assert_eq!(received().len(), asked, "a cached answer was asked again");

    // No opinion from the webhook, none from RBAC: 403 with the webhook's reason.
    let r = alice
        .get("/api/v1/namespaces/hooked/secrets")
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" \
         in the namespace \"hooked\": the webhook has no opinion"
    );

    // The webhook's deny comes before RBAC's cluster-admin binding.
    let mallory = server.as_user("mallory", &[]);
    let r = mallory.get(pods).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "pods is forbidden: User \"mallory\" cannot list resource \"pods\" in API group \"\" \
         in the namespace \"hooked\": mallory is banned"
    );

    // No opinion falls through to RBAC.
    let bob = server.as_user("bob", &[]);
    assert_eq!(bob.get(pods).await.unwrap().status, 200);

    // A SubjectAccessReview asks the same chain and carries the webhook's reason.
    let r = admin
        .json(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &json!({"spec": {"user": "mallory", "resourceAttributes":
                {"namespace": "hooked", "verb": "get", "resource": "pods"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json()["status"],
        json!({"allowed": false, "denied": true, "reason": "mallory is banned"})
    );
    // A webhook's rules cannot be listed: the rules review says it is incomplete.
    let r = alice
        .json(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            &json!({"spec": {"namespace": "hooked"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["status"]["incomplete"], true);
    assert_eq!(
        r.json()["status"]["evaluationError"],
        "webhook authorizer does not support user rule resolution"
    );

    // Unreachable: a question nothing else allows is a 500 naming the failure; a cached answer,
    // RBAC's allow after the webhook's silence, and system:masters still work.
    webhook.stop();
    let carol = server.as_user("carol", &[]);
    let r = carol.get(pods).await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "InternalError");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Internal error occurred: Post \"https://{}/authorize\": ",
            webhook.addr
        )),
        "{message}"
    );
    assert_eq!(alice.get(pods).await.unwrap().status, 200);
    assert_eq!(bob.get(pods).await.unwrap().status, 200);
    assert_eq!(admin.get(pods).await.unwrap().status, 200);
}

#[tokio::test]
async fn the_webhook_flags_are_checked_as_upstream_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = crate::support::kubeboot::run_kubeboot(dir.path(), args);
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["serve", "--authorization-mode=Webhook,RBAC"]);
    assert!(
        err.contains("authorization-mode Webhook's authorization config file not passed"),
        "{err}"
    );
    let err = run(&[
        "serve",
        "--authorization-mode=RBAC",
        "--authorization-webhook-config-file=/dev/null",
    ]);
    assert!(
        err.contains("cannot specify --authorization-webhook-config-file without mode Webhook"),
        "{err}"
    );
    let err = run(&[
        "serve",
        "--authorization-mode=Webhook",
        "--authorization-webhook-config-file=/dev/null",
        "--authorization-webhook-version=v2",
    ]);
    assert!(
        err.contains("unsupported authorization version \"v2\""),
        "{err}"
    );
    let missing = dir.path().join("missing.kubeconfig");
    let err = run(&[
        "up",
        "--authorization-mode=Webhook",
        &format!("--authorization-webhook-config-file={}", missing.display()),
    ]);
    assert!(
        err.contains("--authorization-webhook-config-file") && err.contains("missing.kubeconfig"),
        "{err}"
    );
}
