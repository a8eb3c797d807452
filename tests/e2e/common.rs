//! Fixtures of the e2e suite on top of `support`: the versioned kubectl binaries, and checks
//! of command results and watch events, and a two-version CRD.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The versioned kubectl binaries of the `kubectl` Debian package, plus v1.35 from the npm layer
/// that scripts/test installs. A missing binary fails the test: these are required, not optional.
pub fn kubectls() -> Vec<(&'static str, PathBuf)> {
    let debian =
        std::env::var("KUBECTL_DIR").unwrap_or_else(|_| "/usr/lib/google-cloud-sdk/bin".into());
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
    let list = vec![
        ("1.27", Path::new(&debian).join("kubectl.1.27")),
        ("1.32", Path::new(&debian).join("kubectl.1.32")),
        ("1.35", tools.join("layer-v35/kubectl/kubectl")),
    ];
    for (version, path) in &list {
        assert!(
            path.exists(),
            "kubectl {version} not found at {} — run scripts/test, which installs it",
            path.display()
        );
    }
    list
}

/// The kubectl of `version` among [`kubectls`].
pub fn kubectl_version(version: &str) -> PathBuf {
    kubectls()
        .into_iter()
        .find(|(v, _)| *v == version)
        .unwrap_or_else(|| panic!("no kubectl {version}"))
        .1
}

/// The newest kubectl.
pub fn newest_kubectl() -> PathBuf {
    kubectls().pop().unwrap().1
}

/// The stdout of a command that must have succeeded; fails with both streams otherwise.
pub fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The stderr of a command that must have failed; fails with both streams otherwise.
pub fn failed(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what} succeeded but must fail:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The `(type, object name)` of each watch event.
pub fn types_and_names(events: &[Value]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect()
}

/// Whether kubectl run with `-v=6` logged the response to its watch request: from then on the
/// server has the watch registered, and every later change reaches it.
pub fn kubectl_watching(stderr: &str) -> bool {
    stderr
        .lines()
        .any(|l| l.contains("watch=true") && l.contains("200 OK"))
}

/// Flags for tests of list and watch mechanics that count every object of a namespace: without
/// the built-in controllers no `kube-root-ca.crt` or `default` ServiceAccount appears in it
/// mid-test, as upstream's apiserver integration tests run with no controller manager.
pub const WITHOUT_CONTROLLERS: &[&str] = &["--builtin-controllers=false"];

/// Creates a namespaced CRD `<plural>.example.com` for `kind`, served at v1 (stored) and v2 with
/// schemas keeping every field, so that the versions differ in apiVersion alone.
pub async fn two_version_crd(admin: &crate::support::https::Https, plural: &str, kind: &str) {
    let version = |name: &str, storage: bool| {
        serde_json::json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
    };
    admin
        .create(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &serde_json::json!({"metadata": {"name": format!("{plural}.example.com")}, "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind},
                "versions": [version("v1", true), version("v2", false)]}}),
        )
        .await;
}
