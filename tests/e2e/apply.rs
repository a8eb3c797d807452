//! Server-side apply and managedFields, driven by real kubectl, kube-rs and raw requests.

use crate::common::{failed, kubectls, ok};
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use serde_json::{Value, json};

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or("").to_string(),
                e["operation"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn apply(admin: &Https, path: &str, query: &str, body: &Value) -> (u16, Value) {
    let reply = admin
        .with_body(
            "PATCH",
            &format!("{path}?{query}"),
            "application/apply-patch+yaml",
            body.to_string(),
        )
        .await;
    (reply.status, reply.json())
}

#[tokio::test]
async fn kubectl_server_side_apply_creates_prunes_conflicts_forces_and_dry_runs() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    for (version, kubectl) in kubectls() {
        let name = format!("ssa-{}", version.replace('.', "-"));
        let path = format!("/api/v1/namespaces/default/configmaps/{name}");
        let manifest = |data: &str| {
            let file = server.dir.path().join(format!("{name}.yaml"));
            std::fs::write(
                &file,
                format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{app: demo}}\ndata:\n{data}"
                ),
            )
            .unwrap();
            file.display().to_string()
        };
        let run = |args: &[&str]| server.kubectl(&kubectl, args);

        let file = manifest("  a: one\n  b: two\n");
        let out = ok(
            &run(&["apply", "--server-side", "-f", &file]),
            "apply create",
        );
        assert!(out.contains("serverside-applied"), "{version}: {out}");
        let created = admin.get(&path).await.unwrap().json();
        assert_eq!(created["data"], json!({"a": "one", "b": "two"}));
        assert_eq!(
            managers(&created),
            [("kubectl".to_string(), "Apply".to_string())]
        );
        assert_eq!(
            created["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}),
            "{version}"
        );

        // Unchanged: nothing is written.
        ok(
            &run(&["apply", "--server-side", "-f", &file]),
            "apply unchanged",
        );
        let again = admin.get(&path).await.unwrap().json();
        assert_eq!(
            again["metadata"]["resourceVersion"],
            created["metadata"]["resourceVersion"]
        );

        // A field dropped from the configuration goes.
        let file = manifest("  a: one\n");
        ok(
            &run(&["apply", "--server-side", "-f", &file]),
            "apply without b",
        );
        let pruned = admin.get(&path).await.unwrap().json();
        assert_eq!(pruned["data"], json!({"a": "one"}), "{version}");

        // Dry run: answered, not written.
        let changed = manifest("  a: dry\n");
        let out = ok(
            &run(&[
                "apply",
                "--server-side",
                "--dry-run=server",
                "-f",
                &changed,
                "-o",
                "json",
            ]),
            "dry run",
        );
        let answered: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(answered["data"]["a"], "dry");
        assert_eq!(admin.get(&path).await.unwrap().json()["data"]["a"], "one");

        // Another manager wanting another value conflicts, in kubectl's words.
        let theirs = manifest("  a: theirs\n");
        let out = run(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            &theirs,
        ]);
        let stderr = failed(&out, "conflicting apply");
        assert!(
            stderr.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.a"#),
            "{version}: {stderr}"
        );
        assert!(stderr.contains("--force-conflicts"), "{stderr}");

        // Forced, it takes the field.
        ok(
            &run(&[
                "apply",
                "--server-side",
                "--field-manager=other",
                "--force-conflicts",
                "-f",
                &theirs,
            ]),
            "forced apply",
        );
        let forced = admin.get(&path).await.unwrap().json();
        assert_eq!(forced["data"]["a"], "theirs");
        let fields = &forced["metadata"]["managedFields"];
        let kubectl_entry = fields
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == "kubectl")
            .unwrap();
        assert!(
            kubectl_entry["fieldsV1"].get("f:data").is_none(),
            "{fields}"
        );

        // An Update next to the Apply entries, as `get --show-managed-fields` shows them.
        ok(&run(&["label", "configmap", &name, "extra=yes"]), "label");
        let yaml = ok(
            &run(&[
                "get",
                "configmap",
                &name,
                "-o",
                "yaml",
                "--show-managed-fields",
            ]),
            "get",
        );
        assert!(yaml.contains("operation: Apply"), "{yaml}");
        assert!(yaml.contains("operation: Update"), "{yaml}");
        assert!(yaml.contains("f:extra: {}"), "{yaml}");
        let plain = ok(&run(&["get", "configmap", &name, "-o", "yaml"]), "get");
        assert!(!plain.contains("managedFields"), "{plain}");

        // A dry-run apply that would create writes nothing.
        let fresh = format!("{name}-dry");
        let file = server.dir.path().join(format!("{fresh}.yaml"));
        std::fs::write(
            &file,
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {fresh}\n"),
        )
        .unwrap();
        ok(
            &run(&[
                "apply",
                "--server-side",
                "--dry-run=server",
                "-f",
                &file.display().to_string(),
            ]),
            "dry-run create",
        );
        let missing = admin
            .get(&format!("/api/v1/namespaces/default/configmaps/{fresh}"))
            .await
            .unwrap();
        assert_eq!(missing.status, 404);

        // From client-side to server-side apply: kubectl takes over what it applied before.
        let csa = format!("{name}-csa");
        let write = |value: &str| {
            let file = server.dir.path().join(format!("{csa}.yaml"));
            std::fs::write(
                &file,
                format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {csa}\ndata:\n  a: {value}\n"
                ),
            )
            .unwrap();
            file.display().to_string()
        };
        ok(&run(&["apply", "-f", &write("one")]), "client-side apply");
        ok(
            &run(&["apply", "--server-side", "-f", &write("two")]),
            "server-side apply after client-side apply",
        );
        let upgraded = admin
            .get(&format!("/api/v1/namespaces/default/configmaps/{csa}"))
            .await
            .unwrap()
            .json();
        assert_eq!(upgraded["data"]["a"], "two");
    }
}

fn deployment(name: &str, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}
        }
    })
}

#[tokio::test]
async fn apply_merges_containers_by_name_across_managers_and_reports_conflicts_as_upstream() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let path = "/apis/apps/v1/namespaces/default/deployments/web";

    let (status, body) = apply(&admin, path, "", &deployment("web", json!([]))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
    );

    let (status, body) = apply(
        &admin,
        path,
        "fieldManager=a",
        &deployment("web", json!([{"name": "a", "image": "a:1"}])),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = apply(
        &admin,
        path,
        "fieldManager=b",
        &deployment("web", json!([{"name": "b", "image": "b:1"}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let names = |obj: &Value| -> Vec<String> {
        obj["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&body), ["a", "b"]);
    // Defaults were applied to both, owned by nobody.
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"],
        "IfNotPresent"
    );

    // a drops its container: it goes, b's stays.
    let (status, body) = apply(
        &admin,
        path,
        "fieldManager=a",
        &deployment("web", json!([])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["b"]);

    // An Update manager's field with another value conflicts, worded as upstream.
    let scaled = admin
        .with_body(
            "PATCH",
            &format!("{path}?fieldManager=kubectl-client-side-apply"),
            "application/merge-patch+json",
            r#"{"spec":{"replicas":3}}"#,
        )
        .await;
    assert_eq!(scaled.status, 200, "{}", scaled.body);
    let mut wants_two = deployment("web", json!([{"name": "b", "image": "b:1"}]));
    wants_two["spec"]["replicas"] = json!(2);
    let (status, body) = apply(&admin, path, "fieldManager=b", &wants_two).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["reason"], "Conflict");
    assert_eq!(
        body["message"],
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    assert_eq!(
        body["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using apps/v1", "field": ".spec.replicas"}])
    );
    // The same value is shared, not a conflict.
    wants_two["spec"]["replicas"] = json!(3);
    let (status, body) = apply(&admin, path, "fieldManager=b", &wants_two).await;
    assert_eq!(status, 200, "{body}");

    // The body must be of the URL's kind and name.
    let mut wrong = deployment("web", json!([]));
    wrong["kind"] = json!("StatefulSet");
    let (status, body) = apply(&admin, path, "fieldManager=a", &wrong).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "invalid object type: apps/v1, Kind=StatefulSet"
    );
    let (status, body) = apply(
        &admin,
        path,
        "fieldManager=a",
        &deployment("other", json!([])),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "the name of the object (other) does not match the name on the URL (web)"
    );

    // Creates and updates record who wrote, from the User-Agent when no fieldManager is given.
    let created = admin
        .json(
            "POST",
            "/api/v1/namespaces/default/configmaps?fieldManager=creator",
            &json!({"metadata": {"name": "c", "labels": {"x": "y"}}, "data": {"k": "v"}}),
        )
        .await
        .json();
    assert_eq!(
        managers(&created),
        [("creator".to_string(), "Update".to_string())]
    );
    assert_eq!(
        created["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
    );
    // An empty list clears them.
    let cleared = admin
        .with_body(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/merge-patch+json",
            r#"{"metadata":{"managedFields":[]}}"#,
        )
        .await
        .json();
    assert!(
        cleared["metadata"].get("managedFields").is_none(),
        "{cleared}"
    );
}

#[tokio::test]
async fn kube_rs_applies_a_deployment_and_its_status_through_the_status_subresource() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};

    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let client = server.kube_client().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let params = PatchParams::apply("kube-rs-test");

    let desired = deployment("kr", json!([{"name": "app", "image": "app:1"}]));
    let created = api
        .patch("kr", &params, &Patch::Apply(&desired))
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("kr"));

    let status = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "status": {"replicas": 1, "readyReplicas": 1}
    });
    let params = PatchParams::apply("status-writer");
    let patched = api
        .patch_status("kr", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    let st = patched.status.unwrap();
    assert_eq!(st.replicas, Some(1));
    assert_eq!(st.ready_replicas, Some(1));
    let entries = patched.metadata.managed_fields.unwrap();
    let status_entry = entries
        .iter()
        .find(|e| e.manager.as_deref() == Some("status-writer"))
        .expect("status writer entry");
    assert_eq!(status_entry.operation.as_deref(), Some("Apply"));
    assert_eq!(status_entry.subresource.as_deref(), Some("status"));
    let fields = &status_entry.fields_v1.as_ref().unwrap().0;
    assert_eq!(
        fields,
        &json!({"f:status": {"f:readyReplicas": {}, "f:replicas": {}}})
    );
    let spec_entry = entries
        .iter()
        .find(|e| e.manager.as_deref() == Some("kube-rs-test"))
        .unwrap();
    assert!(
        spec_entry
            .fields_v1
            .as_ref()
            .unwrap()
            .0
            .get("f:status")
            .is_none()
    );

    // A spec in a status apply changes nothing.
    let mut sneaky = status.clone();
    sneaky["spec"] = json!({"replicas": 7});
    let patched = api
        .patch_status("kr", &params, &Patch::Apply(&sneaky))
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(1));
}

/// The managedFields entry of `manager` for `subresource` ("" for the main resource).
fn entry<'a>(obj: &'a Value, manager: &str, subresource: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == manager && e["subresource"].as_str().unwrap_or("") == subresource)
        .unwrap_or_else(|| panic!("no {manager}/{subresource:?} entry in {obj}"))
}

#[tokio::test]
async fn the_servers_own_writes_record_kube_apiserver_as_their_manager() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let get = |path: &'static str| {
        let admin = &admin;
        async move {
            let r = admin.get(path).await.unwrap();
            assert_eq!(r.status, 200, "GET {path}: {}", r.body);
            r.json()
        }
    };

    // Objects the server creates at start, as upstream's loopback client records them.
    let default = get("/api/v1/namespaces/default").await;
    let e = entry(&default, "kube-apiserver", "");
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["apiVersion"], "v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(
        e["fieldsV1"]["f:metadata"]["f:labels"]["f:kubernetes.io/metadata.name"],
        json!({})
    );
    assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");

    let service = get("/api/v1/namespaces/default/services/kubernetes").await;
    let e = entry(&service, "kube-apiserver", "");
    assert_eq!(e["operation"], "Update");
    assert!(e["fieldsV1"]["f:spec"]["f:ports"].is_object(), "{e}");

    let auth =
        get("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication").await;
    let e = entry(&auth, "kube-apiserver", "");
    assert_eq!(e["fieldsV1"]["f:data"]["f:client-ca-file"], json!({}));

    // A controller's status write is an Update of the status subresource.
    let crd = crate::crds::simple_crd("managers.example.com", "gadgets", "Gadget");
    let user = admin
        .json(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?fieldManager=tester",
            &crd,
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.body);
    let established = crate::crds::established(&admin, "gadgets.managers.example.com").await;
    let mine = entry(&established, "tester", "");
    assert!(mine["fieldsV1"].get("f:status").is_none(), "{mine}");
    let status = entry(&established, "kube-apiserver", "status");
    assert_eq!(status["operation"], "Update");
    assert_eq!(status["apiVersion"], "apiextensions.k8s.io/v1");
    assert!(
        status["fieldsV1"]["f:status"]["f:acceptedNames"].is_object(),
        "{status}"
    );
    assert!(
        status["fieldsV1"]["f:status"]["f:conditions"].is_object(),
        "{status}"
    );
    assert!(status["fieldsV1"].get("f:spec").is_none(), "{status}");
}
