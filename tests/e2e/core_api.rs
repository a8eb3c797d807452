//! The built-in API over REST and watch: kubectl, raw HTTPS and kube-rs against a started server.

use crate::common::{
    WITHOUT_CONTROLLERS, kubectl_version, kubectl_watching, kubectls, ok, types_and_names,
};
use crate::support::kubeboot::TestServer;
use crate::support::wait::Background;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: NS
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS, labels: {tier: config}}
data: {mode: blue}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: NS}
data: {password: aHVudGVyMg==}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: runner, namespace: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: NS}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: NS}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: NS}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: [echo, hi]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: NS}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: NS}
spec:
  rules:
  - host: web.example.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: NS}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: runner, namespace: NS}]
"#;

/// The kubectl workflow of the issue, run with one kubectl binary in namespace `ns`.
async fn kubectl_workflow(
    server: &TestServer,
    kubectl: &Path,
    version: &str,
    ns: &str,
    dir: &Path,
) {
    let k = |args: &[&str]| server.kubectl(kubectl, args);
    let manifest = dir.join(format!("manifest-{ns}.yaml"));
    std::fs::write(&manifest, MANIFEST.replace("NS", ns)).unwrap();
    let file = manifest.to_str().unwrap();
    let what = |s: &str| format!("kubectl {version}: {s}");

    let first = ok(&k(&["apply", "-f", file]), &what("apply"));
    assert_eq!(
        first.matches(" created").count(),
        12,
        "{}\n{first}",
        what("apply")
    );
    let again = ok(&k(&["apply", "-f", file]), &what("re-apply"));
    assert_eq!(
        again.matches(" unchanged").count(),
        12,
        "{}\n{again}",
        what("re-apply")
    );
    std::fs::write(
        &manifest,
        MANIFEST
            .replace("NS", ns)
            .replace("mode: blue", "mode: green"),
    )
    .unwrap();
    let changed = ok(&k(&["apply", "-f", file]), &what("apply change"));
    assert!(
        changed.contains("configmap/settings configured"),
        "{changed}"
    );
    assert_eq!(changed.matches(" unchanged").count(), 11, "{changed}");

    // diff: nothing to show for the applied manifest, a difference once it changes.
    let same = k(&["diff", "-f", file]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}: {}",
        what("diff"),
        String::from_utf8_lossy(&same.stderr)
    );
    let changed_file = dir.join(format!("changed-{ns}.yaml"));
    std::fs::write(
        &changed_file,
        MANIFEST
            .replace("NS", ns)
            .replace("mode: blue", "mode: purple"),
    )
    .unwrap();
    let differs = k(&["diff", "-f", changed_file.to_str().unwrap()]);
    assert_eq!(
        differs.status.code(),
        Some(1),
        "{}: {}",
        what("diff with a change"),
        String::from_utf8_lossy(&differs.stderr)
    );
    assert!(String::from_utf8_lossy(&differs.stdout).contains("+  mode: purple"));

    let cm: Value = serde_json::from_str(&ok(
        &k(&["get", "cm", "settings", "-n", ns, "-o", "json"]),
        &what("get -o json"),
    ))
    .unwrap();
    assert_eq!(cm["data"]["mode"], "green");
    assert!(
        cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    let yaml = ok(
        &k(&["get", "deploy", "web", "-n", ns, "-o", "yaml"]),
        &what("get -o yaml"),
    );
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("image: nginx:1.25"),
        "{yaml}"
    );
    assert_eq!(
        ok(
            &k(&["get", "cm", "-n", ns, "-l", "tier=config", "-o", "name"]),
            &what("-l")
        ),
        "configmap/settings\n"
    );
    let names = ok(
        &k(&[
            "get",
            "deploy,sts,svc,job,cronjob,ingress",
            "-n",
            ns,
            "-o",
            "name",
        ]),
        &what("get -o name"),
    );
    for n in [
        "deployment.apps/web",
        "statefulset.apps/db",
        "service/web",
        "job.batch/once",
        "cronjob.batch/nightly",
        "ingress.networking.k8s.io/web",
    ] {
        assert!(names.contains(n), "{n} missing:\n{names}");
    }
    let jp = ok(
        &k(&[
            "get",
            "deploy",
            "web",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.replicas}",
        ]),
        &what("jsonpath"),
    );
    assert_eq!(jp, "2");
    let all = ok(
        &k(&[
            "get",
            "cm",
            "-A",
            "--field-selector",
            &format!("metadata.namespace={ns}"),
            "-o",
            "name",
        ]),
        &what("-A --field-selector"),
    );
    assert!(all.contains("configmap/settings"), "{all}");
    let wide = ok(
        &k(&["get", "deploy", "-n", ns, "-o", "wide"]),
        &what("-o wide"),
    );
    assert!(wide.starts_with("NAME"), "{wide}");
    let described = ok(
        &k(&["describe", "cm", "settings", "-n", ns]),
        &what("describe"),
    );
    assert!(
        described.contains("Name:") && described.contains("settings"),
        "{described}"
    );

    ok(
        &k(&["label", "cm", "settings", "-n", ns, "team=a"]),
        &what("label"),
    );
    ok(
        &k(&["annotate", "cm", "settings", "-n", ns, "note=hi"]),
        &what("annotate"),
    );
    let cm: Value = serde_json::from_str(&ok(
        &k(&["get", "cm", "settings", "-n", ns, "-o", "json"]),
        &what("get"),
    ))
    .unwrap();
    assert_eq!(
        (
            cm["metadata"]["labels"]["team"].as_str(),
            cm["metadata"]["annotations"]["note"].as_str()
        ),
        (Some("a"), Some("hi"))
    );

    ok(
        &k(&[
            "patch",
            "cm",
            "settings",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ]),
        &what("merge patch"),
    );
    ok(
        &k(&[
            "patch",
            "cm",
            "settings",
            "-n",
            ns,
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/data/c","value":"3"}]"#,
        ]),
        &what("json patch"),
    );
    ok(
        &k(&[
            "patch",
            "deploy",
            "web",
            "-n",
            ns,
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
        ]),
        &what("strategic patch"),
    );
    let containers = ok(
        &k(&[
            "get",
            "deploy",
            "web",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}",
        ]),
        &what("get containers"),
    );
    assert_eq!(
        containers, "sidecar nginx",
        "strategic merge keeps nginx and adds sidecar by name"
    );
    let data = ok(
        &k(&["get", "cm", "settings", "-n", ns, "-o", "jsonpath={.data}"]),
        &what("get data"),
    );
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap(),
        json!({"mode": "green", "b": "2", "c": "3"})
    );

    ok(
        &k(&["scale", "deploy", "web", "-n", ns, "--replicas=5"]),
        &what("scale"),
    );
    ok(
        &k(&["set", "image", "deploy/web", "-n", ns, "nginx=nginx:1.26"]),
        &what("set image"),
    );
    let deploy: Value = serde_json::from_str(&ok(
        &k(&["get", "deploy", "web", "-n", ns, "-o", "json"]),
        &what("get deploy"),
    ))
    .unwrap();
    assert_eq!(deploy["spec"]["replicas"], 5);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][1]["image"],
        "nginx:1.26"
    );
    assert!(
        deploy["metadata"]["generation"].as_i64().unwrap() >= 4,
        "generation counts spec changes: {}",
        deploy["metadata"]
    );

    // edit with a scripted editor.
    let editor = dir.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/team: a/team: edited/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let edit = std::process::Command::new(kubectl)
        .arg(format!("--kubeconfig={}", server.kubeconfig().display()))
        .args(["edit", "cm", "settings", "-n", ns])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    ok(&edit, &what("edit"));
    let team = ok(
        &k(&[
            "get",
            "cm",
            "settings",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.labels.team}",
        ]),
        &what("get after edit"),
    );
    assert_eq!(team, "edited");

    // Typed generators send protobuf bodies.
    ok(
        &k(&[
            "create",
            "configmap",
            "generated",
            "-n",
            ns,
            "--from-literal=k=v",
        ]),
        &what("create configmap (protobuf)"),
    );
    ok(
        &k(&[
            "create",
            "secret",
            "generic",
            "gen-secret",
            "-n",
            ns,
            "--from-literal=k=v",
        ]),
        &what("create secret (protobuf)"),
    );
    let v = ok(
        &k(&[
            "get",
            "secret",
            "gen-secret",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.k}",
        ]),
        &what("get secret"),
    );
    assert_eq!(v, "dg==", "base64 of v");
    let explained = ok(
        &k(&["explain", "deployment.spec.template.spec.containers.ports"]),
        &what("explain"),
    );
    assert!(explained.contains("containerPort"), "{explained}");

    let mut waiter = Background::spawn(
        server.kubectl_command(
            kubectl,
            &[
                "wait",
                "--for=delete",
                "cm/generated",
                "-n",
                ns,
                "--timeout=30s",
                "-v=6",
            ],
        ),
        dir,
        &format!("wait-{ns}"),
    );
    // kubectl wait has found the object and watches it before it goes.
    waiter
        .wait_for_stderr(&what("wait --for=delete watching"), kubectl_watching)
        .await;
    ok(
        &k(&["delete", "cm", "generated", "-n", ns, "--wait=false"]),
        &what("delete generated"),
    );
    ok(&waiter.wait(), &what("wait --for=delete"));

    ok(
        &k(&["delete", "cm", "settings", "-n", ns, "--wait=true"]),
        &what("delete"),
    );
    let gone = k(&["get", "cm", "settings", "-n", ns]);
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("not found"));
    ok(
        &k(&["delete", "namespace", ns, "--wait=true", "--timeout=60s"]),
        &what("delete namespace"),
    );
    let left = ok(
        &k(&["get", "deploy,svc,secret,sa", "-n", ns, "-o", "name"]),
        &what("get after namespace delete"),
    );
    assert!(left.is_empty(), "{} left behind:\n{left}", ns);
}

#[tokio::test]
async fn kubectl_127_132_and_135_apply_get_patch_scale_and_delete() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let dir = tempfile::tempdir().unwrap();
    for (version, kubectl) in kubectls() {
        let ns = format!("kubectl-{}", version.replace('.', "-"));
        kubectl_workflow(&server, &kubectl, version, &ns, dir.path()).await;
    }
}

#[tokio::test]
async fn kubectl_get_watch_observes_added_modified_and_deleted() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let kubectl = kubectl_version("1.32");
    let mut watch = Background::spawn(
        server.kubectl_command(
            &kubectl,
            &[
                "get",
                "cm",
                "--field-selector=metadata.name=watched",
                "-w",
                "--output-watch-events",
                "-o",
                "custom-columns=EVENT:.type,NAME:.object.metadata.name,V:.object.data.v",
                "--request-timeout=30s",
                "-v=6",
            ],
        ),
        server.dir.path(),
        "kubectl-get-w",
    );
    // The watch is established before the changes happen.
    watch
        .wait_for_stderr("kubectl get -w watching", kubectl_watching)
        .await;
    let admin = server.admin();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"v": "1"}});
    assert_eq!(
        admin
            .json("POST", "/api/v1/namespaces/default/configmaps", &cm)
            .await
            .status,
        201
    );
    let r = admin
        .with_body(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/watched",
            "application/merge-patch+json",
            r#"{"data":{"v":"2"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        admin
            .request(
                "DELETE",
                "/api/v1/namespaces/default/configmaps/watched",
                &[]
            )
            .await
            .unwrap()
            .status,
        200
    );
    watch
        .wait_for_stdout("the DELETED event", |out| out.contains("DELETED"))
        .await;
    let out = watch.kill();
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        events,
        vec![
            vec!["ADDED", "watched", "1"],
            vec!["MODIFIED", "watched", "2"],
            vec!["DELETED", "watched", "2"]
        ],
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn raw_watch_resumes_from_a_resource_version_and_sends_bookmarks_for_watch_lists() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/api/v1/namespaces/default/configmaps";
    let mut rvs = Vec::new();
    for i in 0..3 {
        let r = admin
            .json(
                "POST",
                base,
                &json!({"metadata": {"name": format!("w{i}")}, "data": {"i": i.to_string()}}),
            )
            .await;
        rvs.push(
            r.json()["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // From the first object's revision: exactly the two later creates, then the stream times out.
    let r = admin
        .get(&format!(
            "{base}?watch=true&resourceVersion={}&timeoutSeconds=1",
            rvs[0]
        ))
        .await
        .unwrap();
    let events = r.json_lines();
    let names = types_and_names(&events);
    assert_eq!(names, vec![("ADDED", "w1"), ("ADDED", "w2")]);
    // A watch-list (sendInitialEvents) ends its initial events with the annotated bookmark.
    let r = admin
        .get(&format!("{base}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"))
        .await
        .unwrap();
    let events = r.json_lines();
    assert_eq!(events.len(), 4, "{}", r.body);
    assert!(events[..3].iter().all(|e| e["type"] == "ADDED"));
    assert_eq!(events[3]["type"], "BOOKMARK");
    assert_eq!(
        events[3]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // Label selectors filter watch events.
    let r = admin
        .get(&format!(
            "{base}?watch=true&labelSelector=nope%3Dyes&timeoutSeconds=1"
        ))
        .await
        .unwrap();
    assert_eq!(r.body, "");
}

#[tokio::test]
async fn lists_paginate_with_continue_tokens_at_one_snapshot() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/api/v1/namespaces/default/configmaps";
    for i in 0..25 {
        assert_eq!(
            admin
                .json(
                    "POST",
                    base,
                    &json!({"metadata": {"name": format!("p{i:02}")}})
                )
                .await
                .status,
            201
        );
    }
    let first = admin.get(&format!("{base}?limit=10")).await.unwrap().json();
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    assert_eq!(first["metadata"]["remainingItemCount"], 15);
    // A write between pages does not show up in later pages of the same list.
    admin
        .json("POST", base, &json!({"metadata": {"name": "p99-late"}}))
        .await;
    let mut names: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut token = first["metadata"]["continue"].as_str().unwrap().to_string();
    loop {
        let page = admin
            .get(&format!("{base}?limit=10&continue={token}"))
            .await
            .unwrap()
            .json();
        assert_eq!(page["metadata"]["resourceVersion"].as_str().unwrap(), rv);
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    let want: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
    assert_eq!(names, want);
    let r = admin
        .get(&format!("{base}?limit=10&continue=garbage"))
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn every_error_is_a_status_with_upstreams_code_and_reason() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/api/v1/namespaces/default/configmaps";
    let status = |r: &crate::support::https::Reply, code: u16, reason: &str| {
        assert_eq!(r.status, code, "{}", r.body);
        let s = r.json();
        assert_eq!(
            (
                s["kind"].as_str(),
                s["status"].as_str(),
                s["reason"].as_str(),
                s["code"].as_u64()
            ),
            (
                Some("Status"),
                Some("Failure"),
                Some(reason),
                Some(code as u64)
            ),
            "{s}"
        );
        s
    };
    let s = status(
        &admin.get(&format!("{base}/missing")).await.unwrap(),
        404,
        "NotFound",
    );
    assert_eq!(s["message"], r#"configmaps "missing" not found"#);
    assert_eq!(
        s["details"],
        json!({"name": "missing", "kind": "configmaps"})
    );
    let s = status(
        &admin
            .get("/apis/apps/v1/namespaces/default/deployments/missing")
            .await
            .unwrap(),
        404,
        "NotFound",
    );
    assert_eq!(s["message"], r#"deployments.apps "missing" not found"#);

    let cm = json!({"metadata": {"name": "dup"}});
    let created = admin.json("POST", base, &cm).await.json();
    let s = status(&admin.json("POST", base, &cm).await, 409, "AlreadyExists");
    assert_eq!(s["message"], r#"configmaps "dup" already exists"#);
    let stale = json!({"metadata": {"name": "dup", "resourceVersion": "1"}, "data": {"a": "b"}});
    let s = status(
        &admin.json("PUT", &format!("{base}/dup"), &stale).await,
        409,
        "Conflict",
    );
    assert_eq!(
        s["message"],
        r#"Operation cannot be fulfilled on configmaps "dup": the object has been modified; please apply your changes to the latest version and try again"#
    );
    let mut fresh = created.clone();
    fresh["data"] = json!({"a": "b"});
    assert_eq!(
        admin
            .json("PUT", &format!("{base}/dup"), &fresh)
            .await
            .status,
        200
    );

    let s = status(
        &admin
            .json(
                "POST",
                base,
                &json!({"metadata": {"name": "Bad_Name", "labels": {"bad key": "x"}}}),
            )
            .await,
        422,
        "Invalid",
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with(r#"ConfigMap "Bad_Name" is invalid: ["#),
        "{s}"
    );
    let causes: Vec<&str> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(causes, vec!["metadata.name", "metadata.labels"]);
    assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
    let s = status(
        &admin.json("POST", base, &json!({"metadata": {}})).await,
        422,
        "Invalid",
    );
    assert_eq!(
        s["details"]["causes"][0]["message"],
        "Required value: name or generateName is required"
    );

    status(
        &admin
            .with_body("POST", base, "application/json", "{not json")
            .await,
        400,
        "BadRequest",
    );
    let s = status(
        &admin
            .json(
                "POST",
                base,
                &json!({"metadata": {"name": "typed"}, "data": {"a": 1}}),
            )
            .await,
        400,
        "BadRequest",
    );
    assert!(s["message"].as_str().unwrap().contains("data.a"), "{s}");
    let s = status(
        &admin
            .json(
                "POST",
                &format!("{base}?fieldValidation=Strict"),
                &json!({"metadata": {"name": "strict"}, "bogus": 1}),
            )
            .await,
        400,
        "BadRequest",
    );
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains(r#"unknown field "bogus""#),
        "{s}"
    );
    let r = admin
        .json(
            "POST",
            base,
            &json!({"metadata": {"name": "warned"}, "bogus": 1}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.headers.get("warning").unwrap(),
        r#"299 - "unknown field \"bogus\"""#
    );

    status(
        &admin.json("POST", &format!("{base}/dup"), &cm).await,
        405,
        "MethodNotAllowed",
    );
    status(
        &admin.with_body("POST", base, "text/plain", "hello").await,
        415,
        "UnsupportedMediaType",
    );
    status(
        &admin
            .with_body(
                "PATCH",
                &format!("{base}/dup"),
                "application/x-nonsense",
                "{}",
            )
            .await,
        415,
        "UnsupportedMediaType",
    );
    status(
        &admin
            .request("GET", &format!("{base}/dup"), &[("accept", "text/html")])
            .await
            .unwrap(),
        406,
        "NotAcceptable",
    );
    let s = status(
        &admin
            .json(
                "POST",
                "/api/v1/namespaces/nowhere/configmaps",
                &json!({"metadata": {"name": "x"}}),
            )
            .await,
        404,
        "NotFound",
    );
    assert_eq!(s["message"], r#"namespaces "nowhere" not found"#);
    let s = status(
        &admin
            .request("DELETE", "/api/v1/namespaces/kube-system", &[])
            .await
            .unwrap(),
        403,
        "Forbidden",
    );
    assert_eq!(
        s["message"],
        r#"namespaces "kube-system" is forbidden: this namespace may not be deleted"#
    );
    // A namespace kept Terminating by a finalizer of its content takes nothing new.
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "ending"}}),
        )
        .await;
    admin
        .create(
            "/api/v1/namespaces/ending/configmaps",
            &json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .await;
    let deleted = admin
        .request("DELETE", "/api/v1/namespaces/ending", &[])
        .await
        .unwrap();
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let s = status(
        &admin
            .json(
                "POST",
                "/api/v1/namespaces/ending/configmaps",
                &json!({"metadata": {"name": "late"}}),
            )
            .await,
        403,
        "Forbidden",
    );
    assert_eq!(
        s["message"],
        r#"configmaps "late" is forbidden: unable to create new content in namespace ending because it is being terminated"#
    );
    assert_eq!(s["details"]["name"], "late");
    assert_eq!(s["details"]["kind"], "configmaps");
    assert_eq!(
        s["details"]["causes"],
        json!([{"reason": "NamespaceTerminating", "message": "namespace ending is being terminated", "field": "metadata.namespace"}])
    );
    // A body naming another namespace is a 400 before admission looks at either.
    let s = status(
        &admin
            .json(
                "POST",
                "/api/v1/namespaces/ending/configmaps",
                &json!({"metadata": {"name": "elsewhere", "namespace": "default"}}),
            )
            .await,
        400,
        "BadRequest",
    );
    assert_eq!(
        s["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    // Without a name (generateName), upstream's message names no object.
    let s = status(
        &admin
            .json(
                "POST",
                "/api/v1/namespaces/ending/configmaps",
                &json!({"metadata": {"generateName": "late-"}}),
            )
            .await,
        403,
        "Forbidden",
    );
    assert_eq!(
        s["message"],
        "configmaps is forbidden: unable to create new content in namespace ending because it is being terminated"
    );
    let released = admin
        .with_body(
            "PATCH",
            "/api/v1/namespaces/ending/configmaps/held",
            "application/json-patch+json",
            r#"[{"op": "remove", "path": "/metadata/finalizers"}]"#,
        )
        .await;
    assert_eq!(released.status, 200, "{}", released.body);
    status(
        &admin
            .get(&format!("{base}?fieldSelector=spec.nothing%3Dx"))
            .await
            .unwrap(),
        400,
        "BadRequest",
    );
}

#[tokio::test]
async fn dry_run_validates_and_defaults_but_writes_nothing() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/api/v1/namespaces/default/configmaps";
    let r = admin
        .json(
            "POST",
            &format!("{base}?dryRun=All"),
            &json!({"metadata": {"name": "dry"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.json()["metadata"]["uid"].is_string());
    assert_eq!(admin.get(&format!("{base}/dry")).await.unwrap().status, 404);
    admin
        .json(
            "POST",
            base,
            &json!({"metadata": {"name": "real"}, "data": {"a": "1"}}),
        )
        .await;
    let r = admin
        .with_body(
            "PATCH",
            &format!("{base}/real?dryRun=All"),
            "application/merge-patch+json",
            r#"{"data":{"a":"2"}}"#,
        )
        .await;
    assert_eq!(r.json()["data"]["a"], "2");
    assert_eq!(
        admin.get(&format!("{base}/real")).await.unwrap().json()["data"]["a"],
        "1"
    );
    assert_eq!(
        admin
            .request("DELETE", &format!("{base}/real?dryRun=All"), &[])
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        admin.get(&format!("{base}/real")).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn finalizers_hold_an_object_until_they_are_removed() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let url = "/api/v1/namespaces/default/configmaps/held";
    admin
        .json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .await;
    let r = admin.request("DELETE", url, &[]).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.json()["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        r.body
    );
    let held = admin.get(url).await.unwrap().json();
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    // New finalizers cannot be added while terminating.
    let r = admin
        .with_body(
            "PATCH",
            url,
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}"#,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = admin
        .with_body(
            "PATCH",
            url,
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(admin.get(url).await.unwrap().status, 404);
    // propagationPolicy=Orphan is recorded as the orphan finalizer.
    admin
        .json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "orphaned"}}),
        )
        .await;
    let r = admin
        .with_body(
            "DELETE",
            "/api/v1/namespaces/default/configmaps/orphaned",
            "application/json",
            r#"{"propagationPolicy":"Orphan"}"#,
        )
        .await;
    assert_eq!(
        r.json()["metadata"]["finalizers"],
        json!(["orphan"]),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn status_and_scale_subresources_change_only_their_part() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/apis/apps/v1/namespaces/default/deployments";
    let deploy = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 7}});
    let created = admin.json("POST", base, &deploy).await.json();
    assert!(
        created
            .get("status")
            .is_none_or(|s| s.get("replicas").is_none()),
        "status is not settable on create: {created}"
    );
    assert_eq!(created["metadata"]["generation"], 1);
    let r = admin
        .with_body(
            "PATCH",
            &format!("{base}/d/status"),
            "application/merge-patch+json",
            r#"{"status":{"replicas":3},"spec":{"replicas":9}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = admin.get(&format!("{base}/d")).await.unwrap().json();
    assert_eq!(
        (
            d["status"]["replicas"].as_i64(),
            d["spec"]["replicas"].as_i64()
        ),
        (Some(3), Some(1))
    );
    let r = admin
        .with_body(
            "PATCH",
            &format!("{base}/d"),
            "application/merge-patch+json",
            r#"{"status":{"replicas":0}}"#,
        )
        .await;
    assert_eq!(
        r.json()["status"]["replicas"],
        3,
        "main-resource writes never change status"
    );
    let scale = admin.get(&format!("{base}/d/scale")).await.unwrap().json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(
        (
            scale["spec"]["replicas"].as_i64(),
            scale["status"]["replicas"].as_i64(),
            scale["status"]["selector"].as_str()
        ),
        (Some(1), Some(3), Some("a=b"))
    );
    let r = admin.json("PUT", &format!("{base}/d/scale"), &json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"}, "spec": {"replicas": 4}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = admin.get(&format!("{base}/d")).await.unwrap().json();
    assert_eq!(
        (
            d["spec"]["replicas"].as_i64(),
            d["metadata"]["generation"].as_i64()
        ),
        (Some(4), Some(2))
    );
}

#[tokio::test]
async fn services_get_unique_cluster_ips_and_node_ports_released_on_delete() {
    let mut server = TestServer::up(&[
        "--service-cluster-ip-range=10.20.0.0/28",
        "--service-node-port-range=30100-30101",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/api/v1/namespaces/default/services";
    let svc = |name: &str, extra: Value| {
        let mut s = json!({"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}});
        if let (Some(spec), Value::Object(extra)) = (s["spec"].as_object_mut(), extra) {
            spec.extend(extra);
        }
        s
    };
    let kubernetes = admin
        .get(&format!("{base}/kubernetes"))
        .await
        .unwrap()
        .json();
    assert_eq!(kubernetes["spec"]["clusterIP"], "10.20.0.1");
    assert_eq!(kubernetes["spec"]["ports"][0]["port"], 443);
    let mut ips = vec!["10.20.0.1".to_string()];
    for name in ["a", "b", "c"] {
        let r = admin.json("POST", base, &svc(name, json!({}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let ip = r.json()["spec"]["clusterIP"].as_str().unwrap().to_string();
        assert!(
            ip.starts_with("10.20.0.") && !ips.contains(&ip),
            "{ip} reused or out of range: {ips:?}"
        );
        ips.push(ip);
    }
    let r = admin
        .json("POST", base, &svc("taken", json!({"clusterIP": ips[1]})))
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("provided IP is already allocated"),
        "{}",
        r.body
    );
    let r = admin
        .json(
            "POST",
            base,
            &svc("outside", json!({"clusterIP": "10.99.0.1"})),
        )
        .await;
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("provided IP is not in the valid range"),
        "{}",
        r.body
    );
    assert_eq!(
        admin
            .request("DELETE", &format!("{base}/a"), &[])
            .await
            .unwrap()
            .status,
        200
    );
    let r = admin
        .json("POST", base, &svc("reuse", json!({"clusterIP": ips[1]})))
        .await;
    assert_eq!(
        r.status, 201,
        "a released IP can be requested again: {}",
        r.body
    );
    let r = admin
        .json("POST", base, &svc("headless", json!({"clusterIP": "None"})))
        .await;
    assert_eq!(r.json()["spec"]["clusterIP"], "None");

    let np = |name: &str| svc(name, json!({"type": "NodePort"}));
    let p1 = admin.json("POST", base, &np("np1")).await.json()["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .unwrap();
    let p2 = admin.json("POST", base, &np("np2")).await.json()["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .unwrap();
    assert!(p1 != p2 && (30100..=30101).contains(&p1) && (30100..=30101).contains(&p2));
    let r = admin.json("POST", base, &np("np3")).await;
    assert_eq!(r.status, 422, "the node port range is full: {}", r.body);
    admin
        .request("DELETE", &format!("{base}/np1"), &[])
        .await
        .unwrap();
    assert_eq!(
        admin.json("POST", base, &np("np3")).await.status,
        201,
        "a released node port is reused"
    );
}

#[tokio::test]
async fn discovery_serves_legacy_and_aggregated_documents_and_tables() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let groups = admin.get("/apis").await.unwrap().json();
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "coordination.k8s.io",
        "policy",
        "storage.k8s.io",
    ] {
        assert!(names.contains(&g), "{g} missing from {names:?}");
    }
    let apps = admin.get("/apis/apps/v1").await.unwrap().json();
    let scale = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .unwrap();
    assert_eq!(
        (scale["group"].as_str(), scale["kind"].as_str()),
        (Some("autoscaling"), Some("Scale"))
    );
    let r = admin.request("GET", "/apis", &[("accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")]).await.unwrap();
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let agg = r.json();
    let apps = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let deploy = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .unwrap();
    assert_eq!(deploy["scope"], "Namespaced");
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert_eq!(deploy["subresources"][0]["subresource"], "scale");
    let core = admin
        .request(
            "GET",
            "/api",
            &[(
                "accept",
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
            )],
        )
        .await
        .unwrap()
        .json();
    assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2beta1");

    let table = admin
        .request(
            "GET",
            "/api/v1/namespaces",
            &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
        )
        .await
        .unwrap()
        .json();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(table["rows"].as_array().unwrap().len(), 4);
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let meta = admin
        .request(
            "GET",
            "/api/v1/namespaces",
            &[(
                "accept",
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
            )],
        )
        .await
        .unwrap()
        .json();
    assert_eq!(meta["kind"], "PartialObjectMetadataList");

    for (version, kubectl) in kubectls() {
        let out = ok(
            &server.kubectl(
                &kubectl,
                &["api-resources", "--api-group=apps", "-o", "name"],
            ),
            &format!("kubectl {version} api-resources"),
        );
        assert_eq!(
            out,
            "controllerrevisions.apps\ndaemonsets.apps\ndeployments.apps\nreplicasets.apps\nstatefulsets.apps\n"
        );
        let out = ok(&server.kubectl(&kubectl, &["api-versions"]), "api-versions");
        assert!(out.contains("apps/v1\n") && out.contains("v1\n"), "{out}");
    }
}

#[tokio::test]
async fn kube_rs_crud_list_and_watcher_against_kubeboot() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
    use kube::runtime::watcher;

    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let client = server.kube_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    for streaming in [false, true] {
        let cfg = if streaming {
            watcher::Config::default().streaming_lists()
        } else {
            watcher::Config::default()
        };
        let label = if streaming { "streaming" } else { "listwatch" };
        let mut events = watcher::watcher(api.clone(), cfg.labels(&format!("run={label}"))).boxed();
        // The initial (empty) list completes before any change is made.
        loop {
            match events.try_next().await.unwrap().unwrap() {
                watcher::Event::InitDone => break,
                _ => continue,
            }
        }
        let name = format!("kube-rs-{label}");
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"run": label}}, "data": {"v": "1"}}),
        )
        .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
        let patch = json!({"data": {"v": "2"}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        api.delete(&name, &DeleteParams::default()).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let ev = tokio::time::timeout(Duration::from_secs(20), events.try_next())
                .await
                .expect("watcher event")
                .unwrap()
                .unwrap();
            match ev {
                watcher::Event::Apply(o) => seen.push(format!("apply {}", o.data.unwrap()["v"])),
                watcher::Event::Delete(o) => seen.push(format!("delete {}", o.data.unwrap()["v"])),
                _ => {}
            }
        }
        assert_eq!(seen, vec!["apply 1", "apply 2", "delete 2"], "{label}");
    }

    for i in 0..7 {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("paged-{i}"), "labels": {"set": "paged"}}}),
        )
        .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let page = api
        .list(&ListParams::default().labels("set=paged").limit(3))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let token = page.metadata.continue_.clone().unwrap();
    let rest = api
        .list(
            &ListParams::default()
                .labels("set=paged")
                .limit(10)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 4);
    let all: Vec<ConfigMap> = api
        .list(&ListParams::default().labels("set=paged"))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 7);
    let one = api.get("paged-3").await.unwrap();
    assert_eq!(one.metadata.labels.unwrap()["set"], "paged");
    let replaced = api
        .replace("paged-3", &PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "paged-3", "resourceVersion": one.metadata.resource_version}, "data": {"x": "y"}})).unwrap())
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["x"], "y");
}

#[tokio::test]
async fn compacted_revisions_answer_410_to_lists_continue_tokens_and_watches() {
    // A watch cache of 3 events: a watch further back than that goes to the compacted store.
    let mut server = TestServer::up(&[
        "--etcd-compaction-interval=1s",
        "--storage-compaction-keep=1",
        "--default-watch-cache-size=3",
    ]);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/api/v1/namespaces/default/configmaps";
    for i in 0..5 {
        admin
            .json(
                "POST",
                base,
                &json!({"metadata": {"name": format!("old-{i}")}}),
            )
            .await;
    }
    let page = admin.get(&format!("{base}?limit=2")).await.unwrap().json();
    let rv = page["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    // Keep writing until the compactor has passed the page's revision and the one after it, so
    // the events a watch from the page's revision needs are gone too (bounded by the deadline).
    let next = rv.parse::<i64>().unwrap() + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    let expired = loop {
        admin
            .json(
                "POST",
                base,
                &json!({"metadata": {"name": format!("new-{i}")}}),
            )
            .await;
        i += 1;
        let at = |r: &str| format!("{base}?resourceVersion={r}&resourceVersionMatch=Exact");
        let r = admin.get(&at(&rv)).await.unwrap();
        let after = admin.get(&at(&next.to_string())).await.unwrap();
        if r.status == 410 && after.status == 410 {
            break r.json();
        }
        assert!(Instant::now() < deadline, "revision {next} never compacted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(expired["reason"], "Expired");
    assert!(
        expired["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("too old resource version: {rv} (")),
        "{expired}"
    );

    let r = admin
        .get(&format!("{base}?limit=2&continue={token}"))
        .await
        .unwrap();
    assert_eq!(r.status, 410, "{}", r.body);
    let s = r.json();
    assert_eq!(s["reason"], "Expired");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("The provided continue parameter is too old"),
        "{s}"
    );

    // Push the page's revision out of the 3-event watch cache too.
    for j in 0..5 {
        admin
            .json(
                "POST",
                base,
                &json!({"metadata": {"name": format!("more-{j}")}}),
            )
            .await;
    }
    let r = admin
        .get(&format!(
            "{base}?watch=true&resourceVersion={rv}&timeoutSeconds=5"
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let first: Value = serde_json::from_str(r.body.lines().next().expect("an event")).unwrap();
    assert_eq!(first["type"], "ERROR", "rv {rv}: {}", r.body);
    assert_eq!(
        (
            first["object"]["code"].as_u64(),
            first["object"]["reason"].as_str()
        ),
        (Some(410), Some("Expired"))
    );
}

#[tokio::test]
async fn generate_name_is_set_before_the_rules_that_derive_from_it_run() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let job = json!({"metadata": {"generateName": "run-"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    let r = admin
        .json("POST", "/apis/batch/v1/namespaces/default/jobs", &job)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let name = created["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("run-") && name.len() == 9, "{name}");
    assert_eq!(
        created["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        name
    );
}

#[tokio::test]
async fn pods_on_a_node_are_deleted_gracefully_and_unscheduled_pods_at_once() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let base = "/api/v1/namespaces/default/pods";
    let pod = |name: &str, node: Option<&str>| {
        let mut p = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        if let Some(node) = node {
            p["spec"]["nodeName"] = json!(node);
        }
        p
    };
    assert_eq!(
        admin.json("POST", base, &pod("loose", None)).await.status,
        201
    );
    let r = admin
        .request("DELETE", &format!("{base}/loose"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        admin.get(&format!("{base}/loose")).await.unwrap().status,
        404,
        "an unscheduled pod goes at once"
    );

    assert_eq!(
        admin
            .json("POST", base, &pod("bound", Some("node-1")))
            .await
            .status,
        201
    );
    let r = admin
        .request("DELETE", &format!("{base}/bound"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let terminating = r.json();
    assert!(
        terminating["metadata"]["deletionTimestamp"].is_string(),
        "{terminating}"
    );
    assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 30);
    // Still there for its kubelet; a delete with a shorter grace period shortens it.
    let r = admin
        .request("DELETE", &format!("{base}/bound?gracePeriodSeconds=5"), &[])
        .await
        .unwrap();
    assert_eq!(r.json()["metadata"]["deletionGracePeriodSeconds"], 5);
    // The kubelet's final delete (grace period 0) removes it.
    let r = admin
        .request("DELETE", &format!("{base}/bound?gracePeriodSeconds=0"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        admin.get(&format!("{base}/bound")).await.unwrap().status,
        404
    );
}
