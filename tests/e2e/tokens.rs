//! Service-account tokens against a started server: `kubectl create token` issues them,
//! kubectl authenticates with them, TokenReview and the issuer's JWKS agree with them, and a
//! token whose ServiceAccount or Pod is gone, or that another key signed, is a 401.

use crate::common::{kubectls, ok};
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kubeboot::auth::serviceaccount::keys::SigningKey;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

/// kubectl `bin` against `server` authenticated by `token` alone.
fn kubectl_with_token(server: &TestServer, bin: &Path, token: &str, args: &[&str]) -> Output {
    std::process::Command::new(bin)
        .arg("--kubeconfig=/dev/null")
        .arg(format!("--server=https://{}", server.addr()))
        .arg(format!(
            "--certificate-authority={}",
            server.data_dir().join("pki/ca.crt").display()
        ))
        .arg(format!("--token={token}"))
        .args(args)
        .output()
        .unwrap()
}

/// An HTTPS client presenting `token` and no certificate.
fn bearer(server: &TestServer) -> Https {
    let ca = std::fs::read(server.data_dir().join("pki/ca.crt")).unwrap();
    Https::new(server.addr(), &ca, None)
}

async fn status_with_token(server: &TestServer, token: &str, path: &str) -> u16 {
    let auth = format!("Bearer {token}");
    bearer(server)
        .request("GET", path, &[("authorization", &auth)])
        .await
        .unwrap()
        .status
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn whoami_user(out: &Output) -> String {
    let text = ok(out, "kubectl auth whoami");
    text.lines()
        .find_map(|l| l.strip_prefix("Username"))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .to_string()
}

#[tokio::test]
async fn kubectl_create_token_issues_tokens_that_authenticate_until_their_objects_go() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create("/api/v1/namespaces", &json!({"metadata": {"name": "x"}}))
        .await;
    admin
        .create(
            "/api/v1/namespaces/x/serviceaccounts",
            &json!({"metadata": {"name": "robot"}}),
        )
        .await;

    for (version, kubectl) in kubectls().into_iter().filter(|(v, _)| *v != "1.27") {
        let out = server.kubectl(
            &kubectl,
            &["create", "token", "robot", "-n", "x", "--duration=1h"],
        );
        let token = ok(&out, "kubectl create token").trim().to_string();
        let c = claims(&token);
        assert_eq!(c["sub"], "system:serviceaccount:x:robot", "{version}: {c}");
        assert_eq!(
            c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
            3600
        );
        assert_eq!(
            c["aud"],
            json!(["https://kubernetes.default.svc.cluster.local"])
        );
        assert!(c["jti"].is_string());
        let out = kubectl_with_token(&server, &kubectl, &token, &["auth", "whoami"]);
        assert_eq!(
            whoami_user(&out),
            "system:serviceaccount:x:robot",
            "{version}"
        );
    }

    // Bound to a pod: the pod is named in the identity, and the token dies with it.
    admin
        .create(
            "/api/v1/namespaces/x/pods",
            &json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "robot",
                "containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
    let kubectl = &crate::common::newest_kubectl();
    let out = server.kubectl(
        kubectl,
        &[
            "create",
            "token",
            "robot",
            "-n",
            "x",
            "--bound-object-kind=Pod",
            "--bound-object-name=p",
        ],
    );
    let pod_token = ok(&out, "kubectl create token --bound-object-kind=Pod")
        .trim()
        .to_string();
    let out = kubectl_with_token(&server, kubectl, &pod_token, &["auth", "whoami"]);
    let text = ok(&out, "whoami");
    assert!(
        text.contains("authentication.kubernetes.io/pod-name"),
        "{text}"
    );
    assert_eq!(status_with_token(&server, &pod_token, "/api").await, 200);
    let r = admin
        .json("DELETE", "/api/v1/namespaces/x/pods/p", &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_with_token(&server, &pod_token, "/api").await, 401);

    // The ServiceAccount going takes its tokens with it.
    let out = server.kubectl(kubectl, &["create", "token", "robot", "-n", "x"]);
    let token = ok(&out, "kubectl create token").trim().to_string();
    assert_eq!(status_with_token(&server, &token, "/api").await, 200);
    let r = admin
        .json(
            "DELETE",
            "/api/v1/namespaces/x/serviceaccounts/robot",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_with_token(&server, &token, "/api").await, 401);
}

#[tokio::test]
async fn forged_tampered_and_garbage_tokens_are_401_and_the_jwks_verifies_real_ones() {
    let mut server = TestServer::up(&["--service-account-max-token-expiration=1h"]);
    server.wait_ready().await;
    let admin = server.admin();
    let request = |seconds: i64| {
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds}})
    };
    let path = "/api/v1/namespaces/default/serviceaccounts/default/token";
    // The default ServiceAccount is made by a controller; wait for it.
    crate::support::wait::answers(
        &admin,
        "/api/v1/namespaces/default/serviceaccounts/default",
        200,
    )
    .await;
    let r = admin.json("POST", path, &request(7200)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let issued = r.json();
    assert_eq!(issued["kind"], "TokenRequest");
    // Capped by --service-account-max-token-expiration.
    assert_eq!(issued["spec"]["expirationSeconds"], 3600);
    let token = issued["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        claims(&token)["exp"].as_i64().unwrap() - claims(&token)["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(status_with_token(&server, &token, "/api").await, 200);

    // Upstream's validation.
    let r = admin.json("POST", path, &request(60)).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"#
    );
    let r = admin
        .json(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/nobody/token",
            &request(3600),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // The signature verifies against the published key of its kid.
    let jwks = admin.get("/openid/v1/jwks").await.unwrap();
    assert_eq!(
        jwks.headers.get("content-type").unwrap(),
        "application/jwk-set+json"
    );
    let jwks = jwks.json();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("{jwks} has no key {}", header["kid"]));
    assert_eq!((&key["kty"], &key["alg"]), (&json!("EC"), &json!("ES256")));
    let coordinate = |c: &str| URL_SAFE_NO_PAD.decode(key[c].as_str().unwrap()).unwrap();
    let mut point = vec![4u8];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    let (signed, signature) = token.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .expect("the token verifies against /openid/v1/jwks");
    let discovery = admin
        .get("/.well-known/openid-configuration")
        .await
        .unwrap()
        .json();
    assert_eq!(
        discovery["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );

    // The same claims signed by another key; a garbage token; a tampered one.
    let (other_key, _) = kubeboot::pki::certs::new_service_account_key().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.key"), other_key).unwrap();
    let other = SigningKey::load(&dir.path().join("other.key")).unwrap();
    let forged_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": other.public.kid}).to_string()),
        token.split('.').nth(1).unwrap()
    );
    let forged = format!(
        "{forged_input}.{}",
        URL_SAFE_NO_PAD.encode(other.sign(forged_input.as_bytes()).unwrap())
    );
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]));
    for bad in [forged.as_str(), "garbage", tampered.as_str()] {
        assert_eq!(status_with_token(&server, bad, "/api").await, 401, "{bad}");
    }
    // No credentials at all stays anonymous (a 403 at authorization, not a 401).
    assert_ne!(server.anonymous().get("/livez").await.unwrap().status, 401);

    // kube-controller-manager's legacy token cleaner reads since when legacy tokens are tracked.
    let tracking = crate::support::wait::answers(
        &admin,
        "/api/v1/namespaces/kube-system/configmaps/kube-apiserver-legacy-service-account-token-tracking",
        200,
    )
    .await
    .json();
    let since = tracking["data"]["since"].as_str().unwrap();
    assert_eq!(
        (since.len(), &since[4..5], &since[7..8]),
        (10, "-", "-"),
        "{tracking}"
    );

    // TokenReview says the same.
    let review = |t: &str| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": t}});
    let r = admin
        .json(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &review(&token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let status = &r.json()["status"];
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:default"
    );
    assert_eq!(
        status["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    let r = admin
        .json(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &review(&forged),
        )
        .await;
    let status = &r.json()["status"];
    assert!(status.get("authenticated").is_none(), "{status}");
    assert!(status["error"].is_string(), "{status}");
}

#[tokio::test]
async fn bootstrap_tokens_authenticate_until_they_expire() {
    let mut server = TestServer::up(&["--enable-bootstrap-token-auth"]);
    server.wait_ready().await;
    let admin = server.admin();
    let secret = |id: &str, expiration: &str| {
        json!({"metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token",
            "stringData": {"token-id": id, "token-secret": "0123456789abcdef",
                "usage-bootstrap-authentication": "true", "expiration": expiration,
                "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}})
    };
    let secrets = "/api/v1/namespaces/kube-system/secrets";
    admin
        .create(secrets, &secret("abcdef", "2999-01-01T00:00:00Z"))
        .await;
    admin
        .create(secrets, &secret("expird", "2000-01-01T00:00:00Z"))
        .await;

    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let whoami = |token: &'static str| {
        let client = bearer(&server);
        let review = review.clone();
        async move {
            let auth = format!("Bearer {token}");
            let mut sender = client.connect().await.unwrap();
            Https::send_body(
                &mut sender,
                "POST",
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                review.to_string().into(),
            )
            .await
            .unwrap()
        }
    };
    let r = whoami("abcdef.0123456789abcdef").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let user = &r.json()["status"]["userInfo"];
    assert_eq!(user["username"], "system:bootstrap:abcdef");
    assert_eq!(
        user["groups"],
        json!([
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:authenticated"
        ])
    );
    for bad in ["expird.0123456789abcdef", "abcdef.0123456789abcdee"] {
        assert_eq!(whoami(bad).await.status, 401, "{bad}");
    }
}
