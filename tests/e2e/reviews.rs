//! The review APIs against a started server: SelfSubjectReview through `kubectl auth whoami`
//! and plain HTTPS, their discovery, and what a create-only resource refuses.

use crate::common::{kubectls, ok};
use crate::support::kubeboot::TestServer;
use serde_json::json;

const SSR: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

#[tokio::test]
async fn whoami_answers_with_the_requesters_identity() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    // kubectl 1.27 asks only authentication.k8s.io/v1beta1, which 1.33 (outside its version
    // skew) does not serve; the later ones ask v1.
    for (version, kubectl) in kubectls().into_iter().filter(|(v, _)| *v != "1.27") {
        let out = ok(
            &server.kubectl(&kubectl, &["auth", "whoami"]),
            "kubectl auth whoami",
        );
        let rows: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["ATTRIBUTE", "VALUE"], "kubectl {version}:\n{out}");
        assert_eq!(
            rows[1],
            ["Username", "kubernetes-admin"],
            "kubectl {version}:\n{out}"
        );
        assert_eq!(
            rows[2],
            ["Groups", "[system:masters", "system:authenticated]"],
            "kubectl {version}:\n{out}"
        );
    }

    let admin = server.admin();
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let r = admin.json("POST", SSR, &review).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let body = r.json();
    assert_eq!(body["kind"], "SelfSubjectReview");
    assert_eq!(body["status"]["userInfo"]["username"], "kubernetes-admin");
    assert!(body["metadata"]["creationTimestamp"].is_string(), "{body}");

    // Anonymous callers are refused by authorization, not answered.
    let r = server.anonymous().json("POST", SSR, &review).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Create is the only verb; a body of another kind is a 400.
    let r = admin.get(SSR).await.unwrap();
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (405, json!("MethodNotAllowed"))
    );
    let wrong = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"});
    let r = admin.json("POST", SSR, &wrong).await;
    assert_eq!(r.status, 400, "{}", r.body);

    // Discovery lists it as upstream does: cluster-scoped, create only.
    let list = admin
        .get("/apis/authentication.k8s.io/v1")
        .await
        .unwrap()
        .json();
    let ssr = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "selfsubjectreviews")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(
        (&ssr["kind"], &ssr["namespaced"], &ssr["verbs"]),
        (
            &json!("SelfSubjectReview"),
            &json!(false),
            &json!(["create"])
        )
    );
}
