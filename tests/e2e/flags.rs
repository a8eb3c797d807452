//! Flags that change what is served, against started servers: `--runtime-config` turns group
//! versions and resources off everywhere a client looks (discovery, OpenAPI, the paths
//! themselves), and refuses or warns of keys it cannot honour, in upstream's words;
//! `--logging-format=json` writes upstream's JSON lines.

use crate::common::{newest_kubectl, ok};
use crate::support::kubeboot::{TestServer, run_kubeboot};
use crate::support::wait::eventually;

#[tokio::test]
async fn runtime_config_turns_off_versions_and_resources_everywhere() {
    let mut server = TestServer::up(&[
        "--runtime-config=batch/v1=false,apps/v1/deployments=false,resource.k8s.io/v1beta1=true",
    ]);
    server.wait_ready().await;
    let admin = server.admin();

    let groups = admin.get("/apis").await.unwrap().json();
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert!(!names.contains(&"batch"), "{names:?}");
    assert!(names.contains(&"apps"), "{names:?}");

    let apps = admin.get("/apis/apps/v1").await.unwrap().json();
    let resources: Vec<&str> = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(!resources.contains(&"deployments"), "{resources:?}");
    assert!(resources.contains(&"replicasets"), "{resources:?}");

    assert_eq!(admin.get("/apis/batch/v1/jobs").await.unwrap().status, 404);
    assert_eq!(
        admin
            .get("/apis/apps/v1/namespaces/default/deployments")
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        admin
            .get("/apis/apps/v1/namespaces/default/replicasets")
            .await
            .unwrap()
            .status,
        200
    );

    let v3 = admin.get("/openapi/v3").await.unwrap().json();
    assert!(v3["paths"].get("apis/batch/v1").is_none(), "{v3}");
    assert!(v3["paths"].get("apis/apps/v1").is_some(), "{v3}");
    let v2 = admin.get("/openapi/v2").await.unwrap().json();
    let paths = v2["paths"].as_object().unwrap();
    assert!(!paths.keys().any(|p| p.contains("/deployments")));
    assert!(paths.keys().any(|p| p.contains("/replicasets")));

    let out = ok(
        &server.kubectl(&newest_kubectl(), &["api-resources", "-o", "name"]),
        "kubectl api-resources",
    );
    assert!(
        !out.lines()
            .any(|l| l == "jobs.batch" || l == "deployments.apps")
    );
    assert!(out.lines().any(|l| l == "replicasets.apps"), "{out}");

    assert!(
        server.stderr().contains(
            "--runtime-config: kubeboot does not serve resource.k8s.io/v1beta1; the key has no effect"
        ),
        "{}",
        server.stderr()
    );
}

#[test]
fn runtime_config_errors_are_upstreams_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (value, message) in [
        (
            "api/all=false",
            "--runtime-config: invalid key with only api/all=false",
        ),
        ("foo", "--runtime-config: runtime-config invalid key foo"),
        (
            "widgets.example.com/v1=true",
            "--runtime-config: unknown api groups widgets.example.com",
        ),
        (
            "batch/v1=maybe",
            r#"--runtime-config: invalid value of batch/v1: maybe, err: strconv.ParseBool: parsing "maybe": invalid syntax"#,
        ),
    ] {
        let out = run_kubeboot(dir.path(), &["init", &format!("--runtime-config={value}")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{value}: {err}");
        assert!(err.contains(message), "{value}: {err}");
    }
}

#[tokio::test]
async fn admission_plugins_run_as_enabled_and_unimplemented_ones_are_named() {
    // NamespaceLifecycle runs by default: no writes into a namespace that does not exist.
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let cm = serde_json::json!({"metadata": {"name": "c"}});
    let r = server
        .admin()
        .json("POST", "/api/v1/namespaces/ghost/configmaps", &cm)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    drop(server);

    let mut server = TestServer::up(&[
        "--disable-admission-plugins=NamespaceLifecycle",
        "--enable-admission-plugins=PodTopologyLabels",
    ]);
    server.wait_ready().await;
    let r = server
        .admin()
        .json("POST", "/api/v1/namespaces/ghost/configmaps", &cm)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let stderr = server.stderr();
    assert!(
        stderr.contains(
            "--enable-admission-plugins: kubeboot does not implement PodTopologyLabels yet"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn json_logs_are_upstreams_lines_and_the_start_up_log_names_the_hooks_once() {
    let mut server = TestServer::up(&["--logging-format=json"]);
    server.wait_ready().await;
    let finished = eventually("the hooks' line", || async {
        let stderr = server.stderr();
        stderr
            .lines()
            .find(|l| l.contains("post-start hooks finished"))
            .map(str::to_string)
    })
    .await;
    assert!(finished.starts_with(r#"{"ts":"#), "{finished}");
    let line: serde_json::Value = serde_json::from_str(&finished).unwrap();
    assert_eq!(line["v"], 0);
    let hooks = line["hooks"].as_str().unwrap();
    assert!(
        hooks.contains("priority-and-fairness-config-producer"),
        "{hooks}"
    );
    assert!(hooks.contains("rbac/bootstrap-roles"), "{hooks}");
    let stderr = server.stderr();
    for l in stderr.lines() {
        let parsed: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(parsed["msg"].is_string() && parsed["ts"].is_f64(), "{l}");
    }
    assert!(!stderr.contains("PostStartHookFinished"), "{stderr}");
}
