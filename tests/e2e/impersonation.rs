//! Impersonation against a started server: `kubectl --as` runs as the impersonated user when
//! the caller may `impersonate`, is refused with upstream's 403 when not, and a caller's own
//! `X-Remote-*` headers change nothing.

use crate::common::{newest_kubectl, ok};
use crate::support::kubeboot::TestServer;
use serde_json::json;

const SSR: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn kubectl_as_impersonates_only_for_those_allowed_to() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let kubectl = newest_kubectl();

    // The admin may impersonate anyone.
    let out = server.kubectl(&kubectl, &["--as=bob", "auth", "whoami"]);
    let table = rows(&ok(&out, "kubectl --as=bob auth whoami"));
    assert_eq!(table[1], ["Username", "bob"]);
    assert_eq!(table[2], ["Groups", "[system:authenticated]"]);
    let out = server.kubectl(&kubectl, &["--as=bob", "--as-group=devs", "auth", "whoami"]);
    let table = rows(&ok(&out, "kubectl --as=bob --as-group=devs auth whoami"));
    assert_eq!(table[2], ["Groups", "[devs", "system:authenticated]"]);
    let out = server.kubectl(
        &kubectl,
        &[
            "--as=system:serviceaccount:kube-system:default",
            "auth",
            "whoami",
        ],
    );
    let table = rows(&ok(&out, "kubectl --as=<service account> auth whoami"));
    assert_eq!(
        table[2],
        [
            "Groups",
            "[system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated]"
        ]
    );

    // The caller's own X-Remote-* headers are no identity.
    let admin = server.admin();
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let r = admin
        .with_body("POST", SSR, "application/json", review.to_string())
        .await;
    assert_eq!(
        r.json()["status"]["userInfo"]["username"],
        "kubernetes-admin"
    );
    let mut sender = admin.connect().await.unwrap();
    let r = crate::support::https::Https::send_body(
        &mut sender,
        "POST",
        SSR,
        &[
            ("content-type", "application/json"),
            ("x-remote-user", "evil"),
            ("x-remote-group", "system:masters"),
        ],
        review.to_string().into(),
    )
    .await
    .unwrap();
    assert_eq!(
        r.json()["status"]["userInfo"]["username"],
        "kubernetes-admin",
        "{}",
        r.body
    );

    // alice may not impersonate: upstream's 403.
    let refused = r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#;
    let r = server
        .as_user("alice", &[])
        .request(
            "GET",
            "/api/v1/namespaces/default/pods",
            &[("impersonate-user", "bob")],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (403, json!(refused))
    );
    let alice = server.user_kubeconfig("alice", &[]);
    let out = std::process::Command::new(crate::common::kubectl_version("1.32"))
        .arg(format!("--kubeconfig={}", alice.display()))
        .args(["--as=bob", "get", "pods"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // kubectl's discovery asks first and reports the 403 without its message.
    assert!(stderr.contains("Error from server (Forbidden)"), "{stderr}");

    // A group without a user is refused, as upstream.
    let r = admin
        .request("GET", "/api", &[("impersonate-group", "devs")])
        .await
        .unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
}
