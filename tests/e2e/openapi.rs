//! kubectl reads the OpenAPI documents of a started server: `explain` takes the path every
//! kubectl ≥ 1.27 takes (aggregated discovery, the v3 root, the hashed group-version document,
//! the GVK lookup, `$ref`s), kubectl 1.27 reads v2 as gnostic protobuf, and `create
//! --validate=strict` asks the server to validate only when the document shows the parameter.
//! Each kubectl runs with `-v=6` and a cache of its own, so that every request it makes is logged.

use crate::common::kubectl_version;
use crate::crds::create_crd;
use crate::support::kubeboot::TestServer;
use serde_json::{Value, json};
use std::process::Output;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\n\
spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n\
\x20   spec: {containers: [{name: web, image: nginx}]}\n";

/// A kubectl of one version against `server`, with a cache directory of its own.
struct Kubectl<'a> {
    server: &'a TestServer,
    bin: std::path::PathBuf,
    cache: tempfile::TempDir,
    /// `METHOD /path?query` of every request kubectl made, in order.
    seen: Vec<String>,
}

impl<'a> Kubectl<'a> {
    fn new(server: &'a TestServer, version: &str) -> Self {
        Self {
            server,
            bin: kubectl_version(version),
            cache: tempfile::tempdir().unwrap(),
            seen: Vec::new(),
        }
    }

    /// Runs kubectl with `args`, recording the requests it logged.
    fn run(&mut self, args: &[&str]) -> Output {
        let cache = format!("--cache-dir={}", self.cache.path().display());
        let mut all = vec![cache.as_str(), "-v=6"];
        all.extend_from_slice(args);
        let output = self.server.kubectl(&self.bin, &all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        self.seen.extend(stderr.lines().filter_map(request));
        output
    }

    /// Runs kubectl with `args`, which must succeed; its stdout.
    fn ok(&mut self, args: &[&str]) -> String {
        let output = self.run(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{args:?}\nstdout: {stdout}\nstderr: {}\n{:#?}",
            String::from_utf8_lossy(&output.stderr),
            self.seen
        );
        stdout
    }
}

/// `METHOD /path?query` of a request kubectl logged at -v=6: `… round_trippers.go:553] GET
/// https://host/path?query 200 OK in 3 milliseconds` up to 1.32, `… "Response" verb="GET"
/// url="https://host/path?query" status="200 OK" …` since.
fn request(line: &str) -> Option<String> {
    let (method, url) = if let Some((_, rest)) = line.split_once(" verb=\"") {
        let (method, rest) = rest.split_once('"')?;
        let (_, rest) = rest.split_once(" url=\"")?;
        (method, rest.split_once('"')?.0)
    } else {
        let (_, rest) = line.split_once("round_trippers.go:")?;
        let mut words = rest.split_once("] ")?.1.split_whitespace();
        (words.next()?, words.next()?)
    };
    let path = &url[url.find("://")? + 3..];
    Some(format!("{method} {}", &path[path.find('/')?..]))
}

/// Whether kubectl asked to create the Deployment with server-side strict validation.
fn sent_strict_create(seen: &[String]) -> bool {
    seen.iter().any(|r| {
        r.starts_with("POST /apis/apps/v1/namespaces/default/deployments?")
            && r.contains("fieldValidation=Strict")
    })
}

/// kubectl 1.32 and 1.35 explain from v3, and their `create --validate=strict` finds the
/// parameter on the PATCH operation of v3, so they send `fieldValidation=Strict` without
/// reading v2.
#[tokio::test]
async fn kubectl_explains_deployment_fields_and_validates_strictly_from_v3() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let manifest = server.dir.path().join("deploy.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();
    let manifest = manifest.display().to_string();
    for version in ["1.32", "1.35"] {
        let mut kubectl = Kubectl::new(&server, version);
        let stdout = kubectl.ok(&["explain", "deployments.spec.template.spec.containers.ports"]);
        assert!(stdout.contains("GROUP:      apps"), "{version}: {stdout}");
        assert!(
            stdout.contains("KIND:       Deployment"),
            "{version}: {stdout}"
        );
        assert!(
            stdout.contains("containerPort\t<integer> -required-"),
            "{version}: {stdout}"
        );
        // Whether the create succeeds (once per server) does not matter: the query it sent does.
        kubectl.run(&["create", "--validate=strict", "-f", &manifest]);
        let seen = &kubectl.seen;
        assert!(sent_strict_create(seen), "{version}: {seen:#?}");
        // Client-side validation would have fetched v2; the server-side parameter check on v3
        // made it unnecessary.
        assert!(
            !seen.iter().any(|r| r.contains("/openapi/v2")),
            "{version}: {seen:#?}"
        );
    }
}

/// kubectl 1.27 still reads /openapi/v2 as gnostic protobuf: its query-parameter verifier
/// looks for `fieldValidation` on the PATCH operation of the kind, and client-side `apply`
/// builds its schema from it. A 406 there made it fall back to `/swagger-2.0.0.pb-v1` and fail.
#[tokio::test]
async fn kubectl_1_27_applies_and_explains_with_the_v2_protobuf_document() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let manifest = server.dir.path().join("deploy.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();
    let manifest = manifest.display().to_string();
    let mut kubectl = Kubectl::new(&server, "1.27");
    let mut outputs = Vec::new();
    for args in [
        &["apply", "--dry-run=client", "-f", &manifest][..],
        &[
            "apply",
            "--dry-run=client",
            "--validate=true",
            "-f",
            &manifest,
        ][..],
        // The v2 explainer reads the whole schema from the protobuf document: the kind's GVK
        // extension (YAML), `$ref`s, properties, `required`, types.
        &[
            "explain",
            "--output=plaintext-openapiv2",
            "deployment.spec.template.spec.containers.ports",
        ][..],
    ] {
        outputs.push(kubectl.ok(args));
    }
    assert!(outputs[0].contains("deployment.apps/web created (dry run)"));
    assert!(
        outputs[2].contains("KIND:     Deployment"),
        "{}",
        outputs[2]
    );
    assert!(
        outputs[2].contains("containerPort\t<integer> -required-"),
        "{}",
        outputs[2]
    );
    // The query-parameter verifier found `fieldValidation` on the PATCH of deployments in the
    // v2 document, so the create asks the server to validate.
    kubectl.run(&["create", "--validate=strict", "-f", &manifest]);
    let seen = &kubectl.seen;
    assert!(sent_strict_create(seen), "{seen:#?}");
    assert!(
        seen.iter().any(|r| r.starts_with("GET /openapi/v2")),
        "{seen:#?}"
    );
}

/// The Widget schema the openapi unit tests publish too: descriptions, defaults, enums,
/// nullable, int-or-string, embedded resources and `oneOf`.
fn widget_schema() -> Value {
    serde_json::from_str(include_str!("../testdata/widget-schema.json")).unwrap()
}

/// A namespaced `Widget` of kubectl.example.com/v1 with status and scale, and a schema with
/// descriptions, defaults, enums, nullable, int-or-string, embedded resources and `oneOf`.
fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.kubectl.example.com"},
        "spec": {
            "group": "kubectl.example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.replicas"}
                },
                "schema": {"openAPIV3Schema": widget_schema()}
            }]
        }
    })
}

/// kubectl (1.27+ reads the v3 group-version document) explains a custom kind and its fields
/// from the published schema.
#[tokio::test]
async fn kubectl_explains_a_custom_kind_and_its_spec() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    create_crd(&server.admin(), &widget_crd()).await;
    for version in ["1.32", "1.35"] {
        let mut kubectl = Kubectl::new(&server, version);
        for (what, expected) in [
            ("widgets", "DESCRIPTION:\n    A widget."),
            ("widgets.spec", "color\t<string>"),
            ("widgets.spec", "size\t<integer> -required-"),
            ("widgets.metadata", "ObjectMeta is metadata"),
            // The property's own description too, as the conformance suite checks.
            (
                "widgets.metadata",
                "DESCRIPTION:\n    Standard object's metadata.",
            ),
        ] {
            let stdout = kubectl.ok(&["explain", what]);
            assert!(
                stdout.contains("GROUP:      kubectl.example.com"),
                "{version}: {stdout}"
            );
            assert!(stdout.contains("KIND:       Widget"), "{version}: {stdout}");
            assert!(stdout.contains(expected), "{version} {what}: {stdout}");
        }
        let seen = &kubectl.seen;
        assert!(
            seen.iter()
                .any(|r| r.starts_with("GET /openapi/v3/apis/kubectl.example.com/v1?hash=")),
            "{version}: {seen:#?}"
        );
    }
}

#[test]
fn kubectl_request_lines_of_both_log_formats_are_read() {
    assert_eq!(
        request(
            "I1203 07:20:05.623549   19549 round_trippers.go:553] POST https://127.0.0.1:26443/api/v1/namespaces/default/configmaps?fieldValidation=Strict 201 Created in 9 milliseconds"
        ),
        Some("POST /api/v1/namespaces/default/configmaps?fieldValidation=Strict".into())
    );
    assert_eq!(
        request(
            r#"I1203 07:20:06.071847   19563 round_trippers.go:632] "Response" verb="GET" url="https://127.0.0.1:26443/openapi/v3?timeout=32s" status="200 OK" milliseconds=8"#
        ),
        Some("GET /openapi/v3?timeout=32s".into())
    );
    assert_eq!(request("I1203 reflector.go:287] Starting reflector"), None);
}
