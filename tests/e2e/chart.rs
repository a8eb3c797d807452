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

    // What the chart renders, with the default values and on etcd, passes the server's
    // validation and admission (kubectl's server-side dry run).
    server
        .admin()
        .create(
            "/api/v1/namespaces",
            &serde_json::json!({"metadata": {"name": "dry"}}),
        )
        .await;
    let kubectl = crate::common::kubectls().pop().unwrap().1;
    for values in [
        "",
        "replicas=2,etcd.endpoints={https://etcd:2379},pki.existingSecret=pki",
    ] {
        let chart = chart();
        let mut template = vec!["template", "dry", chart.as_str(), "--namespace", "dry"];
        if !values.is_empty() {
            template.extend(["--set", values]);
        }
        let rendered = ok(&run(&template), "helm template");
        let manifest = server.dir.path().join("rendered.yaml");
        std::fs::write(&manifest, &rendered).unwrap();
        let manifest = manifest.display().to_string();
        let applied = ok(
            &server.kubectl(
                &kubectl,
                &["apply", "--dry-run=server", "-n", "dry", "-f", &manifest],
            ),
            "kubectl apply --dry-run=server",
        );
        assert!(
            applied.contains("statefulset.apps/dry-kubeboot created (server dry run)"),
            "{values}: {applied}"
        );
    }

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
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["args"][0], "init");
    assert_eq!(pod["containers"][0]["args"][0], "serve");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    // kubeadm's probes; the grace period outlasts the shutdown delay and the drain.
    assert_eq!(container["startupProbe"]["failureThreshold"], 24);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(pod["terminationGracePeriodSeconds"], 75);
    // The kubeconfig's publisher may write its one Secret and nothing else; it alone gets
    // API credentials.
    assert_eq!(pod["initContainers"][1]["args"][0], "publish-kubeconfig");
    let kubectl = crate::common::kubectls().remove(0).1;
    let can_i = |what: &str| {
        let out = server.kubectl(
            &kubectl,
            &[
                "auth",
                "can-i",
                "patch",
                what,
                "-n",
                "charts",
                "--as=system:serviceaccount:charts:demo-kubeboot",
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(can_i("secrets/demo-kubeboot-admin-kubeconfig"), "yes");
    assert_eq!(can_i("secrets/other"), "no");
    // As that ServiceAccount, with a token of it, the publisher does its job.
    let token = ok(
        &server.kubectl(
            &kubectl,
            &["create", "token", "demo-kubeboot", "-n", "charts"],
        ),
        "kubectl create token",
    );
    let ca = server.data_dir().join("pki/ca.crt");
    let as_publisher = server.dir.path().join("publisher.kubeconfig");
    std::fs::write(
        &as_publisher,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {
                "server": format!("https://{}", server.addr()),
                "certificate-authority": ca.display().to_string()}}],
            "users": [{"name": "u", "user": {"token": token.trim()}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "charts"}}],
        })
        .to_string(),
    )
    .unwrap();
    let published = publish_kubeconfig(
        &server.kubeconfig(),
        "demo-kubeboot-admin-kubeconfig",
        "https://demo-kubeboot.charts.svc:443",
        &as_publisher,
    );
    ok(
        &published,
        "publish-kubeconfig as the chart's ServiceAccount",
    );
    let secret = admin
        .get("/api/v1/namespaces/charts/secrets/demo-kubeboot-admin-kubeconfig")
        .await
        .unwrap();
    assert_eq!(secret.status, 200, "{}", secret.body);
    let mounts = |c: &Value| c["volumeMounts"].to_string();
    assert!(mounts(&pod["initContainers"][1]).contains("/var/run/secrets/kubernetes.io"));
    assert!(!mounts(&pod["containers"][0]).contains("/var/run/secrets/kubernetes.io"));
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
    // Values the schema refuses never reach the cluster.
    let refused = run(&[
        "upgrade",
        "demo",
        &chart(),
        "--namespace",
        "charts",
        "--set",
        "replicas=0",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("/replicas"), "{stderr}");
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
    // Three servers on etcd (another release: a StatefulSet's volume claims cannot change):
    // a PodDisruptionBudget, the etcd flags, the PKI from a Secret.
    ok(
        &run(&[
            "install",
            "ha",
            &chart(),
            "--namespace",
            "ha",
            "--create-namespace",
            "--set",
            "replicas=3,etcd.endpoints={https://etcd-0.etcd:2379},etcd.tlsSecret=etcd-client,pki.existingSecret=kubeboot-pki",
        ]),
        "helm install on etcd",
    );
    let pdb = admin
        .get("/apis/policy/v1/namespaces/ha/poddisruptionbudgets/ha-kubeboot")
        .await
        .unwrap();
    assert_eq!(pdb.status, 200, "{}", pdb.body);
    assert_eq!(pdb.json()["spec"]["maxUnavailable"], 1);
    let sts = admin
        .get("/apis/apps/v1/namespaces/ha/statefulsets/ha-kubeboot")
        .await
        .unwrap()
        .json();
    assert_eq!(sts["spec"]["replicas"], 3);
    let args = &sts["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--etcd-servers=https://etcd-0.etcd:2379"),
        "{args}"
    );
    let secrets: Vec<&Value> = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["secret"]["secretName"].as_str().map(|_| v))
        .collect();
    assert_eq!(secrets.len(), 2, "{secrets:?}");
    assert!(
        sts["spec"]["volumeClaimTemplates"].is_null(),
        "no claim on etcd"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&history)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2,
        "the refused upgrade left no revision"
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
    let sts: Value = serde_saphyr::from_str(sts).unwrap();
    let args = |container: &Value| -> Vec<String> {
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let pod = &sts["spec"]["template"]["spec"];
    let (init_args, serve_args) = (args(&pod["initContainers"][0]), args(&pod["containers"][0]));
    assert_eq!(init_args[0], "init");
    assert_eq!(serve_args[0], "serve");
    assert_eq!(init_args[1..], serve_args[1..], "one set of flags");
    let args = serve_args;
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

/// Runs `kubeboot publish-kubeconfig` of `kubeconfig` to the Secret `secret`, pointed at
/// `server`, against the cluster `$KUBECONFIG` = `cluster` names.
fn publish_kubeconfig(
    kubeconfig: &Path,
    secret: &str,
    server: &str,
    cluster: &Path,
) -> std::process::Output {
    Command::new(crate::support::kubeboot::KUBEBOOT)
        .arg("publish-kubeconfig")
        .arg(format!("--secret={secret}"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--server={server}"))
        .env("KUBECONFIG", cluster)
        .output()
        .unwrap()
}

/// `kubeboot publish-kubeconfig`, the chart's second init container, applies the admin
/// kubeconfig pointed at the Service as a Secret of the cluster it runs in (here kubeboot
/// itself, through `$KUBECONFIG`); the published kubeconfig works.
#[tokio::test]
async fn publish_kubeconfig_applies_the_admin_kubeconfig_as_a_secret() {
    use base64::Engine;
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let publish = |kubeconfig: &Path| {
        publish_kubeconfig(
            kubeconfig,
            "kb-admin",
            "https://kb.example:443",
            &server.kubeconfig(),
        )
    };
    for _ in 0..2 {
        // Applied, so running it again (a restarted pod) just keeps the Secret.
        ok(&publish(&server.kubeconfig()), "publish-kubeconfig");
    }
    let secret = server
        .admin()
        .get("/api/v1/namespaces/default/secrets/kb-admin")
        .await
        .unwrap()
        .json();
    let published = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["admin.kubeconfig"].as_str().unwrap())
        .unwrap();
    let published: Value = serde_saphyr::from_slice(&published).unwrap();
    let original: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(server.kubeconfig()).unwrap()).unwrap();
    assert_eq!(
        published["clusters"][0]["cluster"]["server"],
        "https://kb.example:443"
    );
    assert_eq!(
        published["users"], original["users"],
        "the same credentials"
    );
    assert!(
        secret["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["manager"] == "kubeboot-publish-kubeconfig" && e["operation"] == "Apply"),
        "{}",
        secret["metadata"]
    );

    // With the server's real address, the published kubeconfig is the administrator's.
    let file = server.dir.path().join("published.kubeconfig");
    std::fs::write(&file, serde_json::to_vec(&published).unwrap()).unwrap();
    let kubectl = crate::common::kubectls().remove(0).1;
    let out = Command::new(kubectl)
        .arg(format!("--kubeconfig={}", file.display()))
        .arg(format!("--server=https://{}", server.addr()))
        .args(["auth", "can-i", "*", "*"])
        .output()
        .unwrap();
    assert_eq!(ok(&out, "kubectl auth can-i").trim(), "yes");

    // A kubeconfig that is not there is an error naming it.
    let missing = server.dir.path().join("missing.kubeconfig");
    let out = publish(&missing);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.kubeconfig"), "{stderr}");
}
