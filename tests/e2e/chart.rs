//! The Helm chart (charts/kubeboot): linted, and installed, upgraded and uninstalled by real
//! helm v4 against a started kubeboot; its server flags are accepted by kubeboot itself.
//! helm v4 installs and upgrades with server-side apply, its default.

use crate::common::ok;
use crate::support::kubeboot::{TestServer, run_kubeboot};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// helm v4 from the npm layer scripts/test installs; missing is a failure, not a skip.
fn helm() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/layer-v35/helm/helm");
    assert!(
        path.exists(),
        "helm not found at {} — run scripts/test, which installs it",
        path.display()
    );
    path
}

fn chart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/kubeboot")
        .display()
        .to_string()
}

#[tokio::test]
async fn helm_installs_upgrades_and_uninstalls_the_chart_on_kubeboot() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let kubeconfig = format!("--kubeconfig={}", server.kubeconfig().display());
    let cache = server.dir.path().join("helm-cache");
    let run = |args: &[&str]| {
        Command::new(helm())
            .args(args)
            .arg(&kubeconfig)
            .env("HELM_CACHE_HOME", &cache)
            .env("HELM_CONFIG_HOME", cache.join("config"))
            .env("HELM_DATA_HOME", cache.join("data"))
            .output()
            .unwrap()
    };
    let lint = ok(&run(&["lint", &chart()]), "helm lint");
    assert!(lint.contains("0 chart(s) failed"), "{lint}");

    ok(
        &run(&[
            "install",
            "demo",
            &chart(),
            "--namespace",
            "charts",
            "--create-namespace",
        ]),
        "helm install",
    );
    let releases: Value = serde_json::from_str(&ok(
        &run(&["list", "--namespace", "charts", "-o", "json"]),
        "helm list",
    ))
    .unwrap();
    assert_eq!(releases[0]["name"], "demo");
    assert_eq!(releases[0]["status"], "deployed");
    let admin = server.admin();
    let sts = admin
        .get("/apis/apps/v1/namespaces/charts/statefulsets/demo-kubeboot")
        .await
        .unwrap()
        .json();
    assert_eq!(
        sts["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "up"
    );
    // Installed by server-side apply: helm owns the fields as an applier.
    assert!(
        sts["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["manager"] == "helm" && e["operation"] == "Apply"),
        "{}",
        sts["metadata"]["managedFields"]
    );
    let svc = admin
        .get("/api/v1/namespaces/charts/services/demo-kubeboot")
        .await
        .unwrap()
        .json();
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.0.0.")
    );

    ok(
        &run(&[
            "upgrade",
            "demo",
            &chart(),
            "--namespace",
            "charts",
            "--set",
            "service.port=8443",
        ]),
        "helm upgrade",
    );
    let svc = admin
        .get("/api/v1/namespaces/charts/services/demo-kubeboot")
        .await
        .unwrap()
        .json();
    assert_eq!(svc["spec"]["ports"][0]["port"], 8443);
    let history = ok(
        &run(&["history", "demo", "--namespace", "charts", "-o", "json"]),
        "helm history",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&history)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    ok(
        &run(&["uninstall", "demo", "--namespace", "charts", "--wait"]),
        "helm uninstall",
    );
    assert_eq!(
        admin
            .get("/api/v1/namespaces/charts/services/demo-kubeboot")
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        admin
            .get("/apis/apps/v1/namespaces/charts/statefulsets/demo-kubeboot")
            .await
            .unwrap()
            .status,
        404
    );
}

#[test]
fn the_charts_server_flags_are_accepted_by_kubeboot() {
    let rendered = ok(
        &Command::new(helm())
            .args([
                "template",
                "t",
                &chart(),
                "--set",
                "extraArgs={--service-cluster-ip-range=10.96.0.0/16}",
            ])
            .output()
            .unwrap(),
        "helm template",
    );
    let sts = rendered
        .split("\n---")
        .find(|doc| doc.contains("kind: StatefulSet"))
        .expect("a StatefulSet");
    let args: Vec<String> = sts
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("args:"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| l.trim_start().trim_start_matches("- ").to_string())
        .collect();
    assert_eq!(args[0], "up");
    assert!(
        args.iter()
            .any(|a| a == "--service-cluster-ip-range=10.96.0.0/16"),
        "{args:?}"
    );
    // `init` takes the same flags as `up` and validates all of them, without serving.
    let dir = tempfile::tempdir().unwrap();
    let mut init: Vec<&str> = vec!["init"];
    init.extend(
        args[1..]
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with("--data-dir")),
    );
    let out = run_kubeboot(dir.path(), &init);
    assert!(
        out.status.success(),
        "{init:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
