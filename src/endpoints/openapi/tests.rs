//! Tests of the OpenAPI documents built for every built-in kind, and of how they are served.

use super::*;
use crate::endpoints::full;
use http_body_util::BodyExt;
use std::sync::LazyLock;

static OPENAPI: LazyLock<OpenApi> = LazyLock::new(|| {
    let infos: Vec<ResourceInfo> = crate::registry::kinds::builtin()
        .iter()
        .map(|s| s.info().clone())
        .collect();
    let openapi = OpenApi::build(&infos);
    let start = std::time::Instant::now();
    openapi.warm();
    let documents = openapi.builtin();
    eprintln!(
        "openapi: rendered in {:?}: v2 {} bytes, v3 {} documents, {} bytes",
        start.elapsed(),
        documents.v2.bytes.len(),
        documents.v3.len(),
        documents.v3.values().map(|d| d.bytes.len()).sum::<usize>()
    );
    openapi
});

fn get(uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut builder = http::Request::get(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    OPENAPI
        .serve(&builder.body(full("")).unwrap())
        .expect("an OpenAPI path")
}

fn body(response: Response) -> Value {
    let bytes = futures::executor::block_on(response.into_body().collect())
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn v3(gv: &str) -> Value {
    body(get(&format!("/openapi/v3/{gv}"), &[]))
}

fn param_names(operation: &Value) -> Vec<&str> {
    operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

/// Every `$ref` of `value`, as written.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn deployment_schema_carries_its_group_version_kind_and_no_required_metadata() {
    let doc = v3("apis/apps/v1");
    let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    assert!(deployment.get("required").is_none());
    assert_eq!(
        deployment["properties"]["metadata"]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    let list = &doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "DeploymentList", "version": "v1"}])
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
}

#[test]
fn pod_spec_containers_have_merge_strategy_by_name_and_a_map_list_type() {
    for doc in [v3("api/v1"), v3("apis/apps/v1")] {
        let containers =
            &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    }
    let doc = v3("api/v1");
    let finalizers = &doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
        ["properties"]["finalizers"];
    assert_eq!(finalizers["x-kubernetes-list-type"], "set");
}

#[test]
fn write_operations_of_deployments_list_field_validation_and_their_gvk() {
    let doc = v3("apis/apps/v1");
    let collection = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
    let post = &collection["post"];
    assert!(param_names(post).contains(&"fieldValidation"));
    assert_eq!(post["x-kubernetes-action"], "post");
    assert_eq!(
        post["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let list = &collection["get"];
    for name in [
        "labelSelector",
        "fieldSelector",
        "limit",
        "continue",
        "resourceVersion",
        "resourceVersionMatch",
        "watch",
        "allowWatchBookmarks",
        "sendInitialEvents",
        "timeoutSeconds",
    ] {
        assert!(param_names(list).contains(&name), "{name}");
    }
    assert_eq!(list["x-kubernetes-action"], "list");
    let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    // kubectl reads the PATCH operation: fieldValidation decides server-side validation and the
    // strategic-merge-patch content type decides whether `apply` uses these schemas.
    let patch = &item["patch"];
    assert!(param_names(patch).contains(&"fieldValidation"));
    assert!(param_names(patch).contains(&"force"));
    assert!(
        patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some()
    );
    assert!(param_names(&item["put"]).contains(&"fieldValidation"));
    assert!(param_names(&item["delete"]).contains(&"propagationPolicy"));
    assert!(param_names(&item["delete"]).contains(&"gracePeriodSeconds"));
    assert_eq!(
        param_names(item),
        vec!["name", "namespace", "pretty"],
        "path-level parameters"
    );
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["put"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert!(
        doc["components"]["schemas"]
            .get("io.k8s.api.autoscaling.v1.Scale")
            .is_some()
    );
    let status = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
    assert_eq!(
        status["patch"]["operationId"],
        "patchAppsV1NamespacedDeploymentStatus"
    );
    assert_eq!(
        doc["paths"]["/apis/apps/v1/watch/deployments"]["get"]["x-kubernetes-action"],
        "watchlist"
    );
    assert!(doc["paths"].get("/apis/apps/v1/deployments").is_some());
}

#[test]
fn cluster_scoped_kinds_have_no_namespace_paths() {
    let doc = v3("apis/rbac.authorization.k8s.io/v1");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"));
    assert_eq!(
        paths["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["operationId"],
        "listRbacAuthorizationV1ClusterRole"
    );
    assert!(
        !paths
            .contains_key("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/clusterroles")
    );
}

#[test]
fn every_reference_resolves_in_every_document() {
    let root = body(get("/openapi/v3", &[]));
    for gv in root["paths"].as_object().unwrap().keys() {
        let doc = v3(gv);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").expect(r);
            assert!(schemas.contains_key(name), "{gv}: {r}");
        }
        assert_eq!(doc["openapi"], "3.0.0");
    }
    let v2 = body(get("/openapi/v2", &[]));
    let definitions = v2["definitions"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&v2, &mut all);
    for r in all {
        let name = r.strip_prefix("#/definitions/").expect(r);
        assert!(definitions.contains_key(name), "v2: {r}");
    }
    assert_eq!(v2["swagger"], "2.0");
    let post = &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
    assert!(param_names(post).contains(&"fieldValidation"));
    assert!(param_names(post).contains(&"body"));
}

#[test]
fn root_links_every_group_version_with_its_current_hash() {
    let response = get("/openapi/v3", &[]);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let root = body(response);
    let paths = root["paths"].as_object().unwrap();
    assert!(paths.contains_key("api/v1") && paths.contains_key("apis/apps/v1"));
    let url = paths["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
    let hash = url.strip_prefix("/openapi/v3/apis/apps/v1?hash=").unwrap();
    assert_eq!(hash.len(), 128);

    let hashed = get(url, &[]);
    assert_eq!(hashed.status(), StatusCode::OK);
    assert_eq!(hashed.headers()[header::CACHE_CONTROL], "public, immutable");
    assert!(hashed.headers().contains_key(header::EXPIRES));
    assert_eq!(hashed.headers()[header::ETAG], format!("\"{hash}\""));

    let plain = get("/openapi/v3/apis/apps/v1", &[]);
    assert_eq!(plain.headers()[header::CACHE_CONTROL], "no-cache, private");

    let stale = get("/openapi/v3/apis/apps/v1?hash=ABC", &[]);
    assert_eq!(stale.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(stale.headers()[header::LOCATION], url);
}

#[test]
fn if_none_match_with_the_current_etag_is_not_modified() {
    for uri in ["/openapi/v2", "/openapi/v3", "/openapi/v3/api/v1"] {
        let etag = get(uri, &[]).headers()[header::ETAG].clone();
        let again = get(uri, &[("if-none-match", etag.to_str().unwrap())]);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{uri}");
        let other = get(uri, &[("if-none-match", "\"OTHER\"")]);
        assert_eq!(other.status(), StatusCode::OK, "{uri}");
    }
}

#[test]
fn v2_is_negotiated_between_json_and_gnostic_protobuf_and_yaml_is_not_acceptable() {
    let response = get("/openapi/v2", &[("accept", "application/yaml")]);
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(body(response)["reason"], "NotAcceptable");
    for (accept, content_type) in [
        (V2_PROTOBUF, V2_PROTOBUF),
        (V2_PROTOBUF_DEPRECATED, V2_PROTOBUF),
        (
            &*format!("{V2_PROTOBUF_DEPRECATED}, application/json"),
            V2_PROTOBUF,
        ),
        (
            &*format!("{V2_PROTOBUF_DEPRECATED};q=0.5, application/json"),
            "application/json",
        ),
        ("application/json, */*", "application/json"),
        ("*/*", "application/json"),
        ("", "application/json"),
    ] {
        let response = get("/openapi/v2", &[("accept", accept)]);
        assert_eq!(response.status(), StatusCode::OK, "{accept}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            content_type,
            "{accept}"
        );
    }
    // One ETag for both forms, as upstream (the Vary header tells caches apart).
    let json = get("/openapi/v2", &[]);
    let etag = json.headers()[header::ETAG].to_str().unwrap().to_string();
    let proto = get("/openapi/v2", &[("accept", V2_PROTOBUF_DEPRECATED)]);
    assert_eq!(proto.headers()[header::ETAG], etag.as_str());
    assert_eq!(proto.headers()[header::VARY], "Accept");
    let cached = get(
        "/openapi/v2",
        &[("accept", V2_PROTOBUF), ("if-none-match", &etag)],
    );
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let req = |uri: &str| http::Request::get(uri).body(full("")).unwrap();
    assert!(
        OPENAPI
            .serve(&req("/openapi/v3/apis/example.com/v1"))
            .is_none()
    );
    assert!(OPENAPI.serve(&req("/api/v1")).is_none());
}

/// A test-only reader of gnostic messages: the payloads of field `number`, in order.
pub(super) fn pb_all(message: &[u8], number: u32) -> Vec<&[u8]> {
    use crate::endpoints::protobuf::wire::{Reader, WireValue};
    let mut reader = Reader::new(message);
    let mut out = Vec::new();
    while let Some((n, value)) = reader.next_field().unwrap() {
        if let (true, WireValue::Bytes(bytes)) = (n == number, value) {
            out.push(bytes);
        }
    }
    out
}

pub(super) fn pb_one(message: &[u8], number: u32) -> &[u8] {
    let all = pb_all(message, number);
    assert_eq!(all.len(), 1, "field {number}");
    all[0]
}

pub(super) fn pb_str(message: &[u8], number: u32) -> &str {
    std::str::from_utf8(pb_one(message, number)).unwrap()
}

/// The value of the `Named*` pair called `name` among the payloads of field `number`.
pub(super) fn pb_named<'a>(message: &'a [u8], number: u32, name: &str) -> &'a [u8] {
    pb_all(message, number)
        .into_iter()
        .find(|pair| pb_str(pair, 1) == name)
        .map(|pair| pb_one(pair, 2))
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The YAML text of vendor extension `name` (a `NamedAny` at `number`).
pub(super) fn pb_extension<'a>(message: &'a [u8], number: u32, name: &str) -> &'a str {
    pb_str(pb_named(message, number, name), 2)
}

#[test]
fn v2_protobuf_decodes_to_the_json_document_with_gvk_extensions_and_field_validation() {
    let json = body(get("/openapi/v2", &[]));
    let start = std::time::Instant::now();
    let encoded = v2proto::encode(&json);
    eprintln!(
        "v2 protobuf: {} bytes (JSON {} bytes), encoded in {:?}",
        encoded.len(),
        OPENAPI.builtin().v2.bytes.len(),
        start.elapsed()
    );
    let served = get("/openapi/v2", &[("accept", V2_PROTOBUF_DEPRECATED)]);
    let bytes = futures::executor::block_on(served.into_body().collect())
        .unwrap()
        .to_bytes();
    assert_eq!(&bytes[..], &encoded[..]);

    assert_eq!(pb_str(&bytes, 1), "2.0");
    assert_eq!(pb_str(pb_one(&bytes, 2), 1), "Kubernetes");
    // Definitions: every one, in the JSON's key order.
    let definitions = pb_one(&bytes, 9);
    let names: Vec<&str> = pb_all(definitions, 1)
        .iter()
        .map(|pair| pb_str(pair, 1))
        .collect();
    let json_names: Vec<&str> = json["definitions"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, json_names);
    let deployment = pb_named(definitions, 1, "io.k8s.api.apps.v1.Deployment");
    assert_eq!(
        pb_extension(deployment, 31, "x-kubernetes-group-version-kind"),
        "- group: apps\n  kind: Deployment\n  version: v1\n"
    );
    assert_eq!(pb_str(pb_one(deployment, 22), 1), "object");
    let properties = pb_one(deployment, 25);
    let spec = pb_named(properties, 1, "spec");
    assert_eq!(
        pb_str(spec, 1),
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    // A list with merge keys: PodSpec.containers.
    let pod_spec = pb_named(definitions, 1, "io.k8s.api.core.v1.PodSpec");
    let containers = pb_named(pb_one(pod_spec, 25), 1, "containers");
    assert_eq!(pb_str(pb_one(containers, 22), 1), "array");
    assert_eq!(
        pb_str(pb_one(pb_one(containers, 23), 1), 1),
        "#/definitions/io.k8s.api.core.v1.Container"
    );
    assert_eq!(
        pb_extension(containers, 31, "x-kubernetes-patch-merge-key"),
        "name\n"
    );
    assert_eq!(
        pb_extension(containers, 31, "x-kubernetes-patch-strategy"),
        "merge\n"
    );
    assert_eq!(
        pb_extension(containers, 31, "x-kubernetes-list-type"),
        "map\n"
    );
    assert_eq!(
        pb_extension(containers, 31, "x-kubernetes-list-map-keys"),
        "- name\n"
    );
    let container = pb_named(definitions, 1, "io.k8s.api.core.v1.Container");
    assert_eq!(pb_all(container, 19).as_slice(), [b"name".as_slice()]);

    // Paths: every one; the PATCH of a deployment carries its GVK and fieldValidation.
    let paths = pb_one(&bytes, 8);
    assert_eq!(
        pb_all(paths, 2).len(),
        json["paths"].as_object().unwrap().len()
    );
    let item = pb_named(
        paths,
        2,
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    );
    let patch = pb_one(item, 8);
    assert_eq!(pb_extension(patch, 13, "x-kubernetes-action"), "patch\n");
    assert_eq!(
        pb_extension(patch, 13, "x-kubernetes-group-version-kind"),
        "group: apps\nkind: Deployment\nversion: v1\n"
    );
    let parameters: Vec<&[u8]> = pb_all(patch, 8)
        .into_iter()
        .map(|item| pb_one(item, 1))
        .collect();
    let body = parameters
        .iter()
        .flat_map(|p| pb_all(p, 1))
        .next()
        .expect("a body parameter");
    assert_eq!(pb_str(body, 3), "body");
    let query_names: Vec<&str> = parameters
        .iter()
        .flat_map(|p| pb_all(p, 2))
        .flat_map(|non_body| pb_all(non_body, 3))
        .map(|query| pb_str(query, 4))
        .collect();
    assert!(query_names.contains(&"fieldValidation"), "{query_names:?}");
    assert!(query_names.contains(&"dryRun"), "{query_names:?}");
    let responses = pb_one(patch, 9);
    let ok = pb_one(pb_named(responses, 1, "200"), 1);
    assert_eq!(
        pb_str(pb_one(pb_one(ok, 2), 1), 1),
        "#/definitions/io.k8s.api.apps.v1.Deployment"
    );
    // Security: the bearer-token API key scheme and the document-wide requirement.
    let bearer = pb_named(pb_one(&bytes, 13), 1, "BearerToken");
    assert_eq!(pb_str(pb_one(bearer, 2), 1), "apiKey");
    assert_eq!(pb_str(pb_one(pb_one(&bytes, 12), 1), 1), "BearerToken");
}

#[test]
fn http_dates_are_rfc1123_in_gmt() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_136_214_245);
    assert_eq!(http_date(at), "Mon, 02 Jan 2006 15:04:05 GMT");
    let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
}

/// Discovery and these documents served over plain HTTP, every other path a 404, and a kubectl
/// home whose kubeconfig is empty (the server is given on the command line).
pub(super) struct KubectlHarness {
    server: String,
    /// `METHOD URI` of every request, in order.
    pub(super) seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    home: tempfile::TempDir,
    /// A Deployment manifest.
    manifest: std::path::PathBuf,
}

impl KubectlHarness {
    async fn start() -> Self {
        Self::start_with(&OPENAPI, Vec::new()).await
    }

    /// Serves `openapi`, and discovery of the built-in kinds plus `extra`.
    pub(super) async fn start_with(openapi: &'static OpenApi, extra: Vec<ResourceInfo>) -> Self {
        use hyper_util::rt::TokioIo;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut infos: Vec<ResourceInfo> = crate::registry::kinds::builtin()
            .iter()
            .map(|s| s.info().clone())
            .collect();
        infos.extend(extra);
        let discovery = std::sync::Arc::new(crate::endpoints::discovery::Discovery::new(
            addr.to_string(),
        ));
        discovery.add(infos);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let discovery = discovery.clone();
                let record = record.clone();
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let req = req.map(|b| b.map_err(Into::into).boxed_unsync());
                        record
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", req.method(), req.uri()));
                        let response = openapi
                            .serve(&req)
                            .or_else(|| discovery.serve(&req))
                            .unwrap_or_else(|| ApiError::not_found_path().into_response());
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service),
                );
            }
        });
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config"), "").unwrap();
        let manifest = home.path().join("deploy.yaml");
        std::fs::write(
            &manifest,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\n\
             spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n\
             \x20   spec: {containers: [{name: web, image: nginx}]}\n",
        )
        .unwrap();
        KubectlHarness {
            server: format!("http://{addr}"),
            seen,
            home,
            manifest,
        }
    }

    /// Runs `binary` with `args` against the server, off the runtime's threads.
    pub(super) async fn run(&self, binary: &str, args: &[&str]) -> std::process::Output {
        let mut command = std::process::Command::new(binary);
        command
            .args(args)
            .args(["--server", &self.server])
            .env("KUBECONFIG", self.home.path().join("config"))
            .env("HOME", self.home.path());
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }
}

/// Runs the real kubectl against [`KubectlHarness`]: `explain` of a
/// nested field takes the path every kubectl ≥ 1.27 takes (aggregated discovery, the v3 root, the
/// hashed group-version document, the GVK lookup, `$ref`s), and `create --validate=strict` sends
/// `fieldValidation=Strict` only when the v3 document shows the parameter on the PATCH operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kubectl_explains_deployment_fields_from_these_documents() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl not found; skipping");
        return;
    }
    let harness = KubectlHarness::start().await;
    let output = harness
        .run(
            "kubectl",
            &["explain", "deployments.spec.template.spec.containers.ports"],
        )
        .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("GROUP:      apps"), "{stdout}");
    assert!(stdout.contains("KIND:       Deployment"), "{stdout}");
    assert!(
        stdout.contains("containerPort\t<integer> -required-"),
        "{stdout}"
    );

    // The server here has no REST handlers, so the create itself fails with a 404; what matters
    // is the query kubectl sent.
    let manifest = harness.manifest.display().to_string();
    let _ = harness
        .run("kubectl", &["create", "--validate=strict", "-f", &manifest])
        .await;
    let seen = harness.seen.lock().unwrap();
    assert!(
        seen.iter().any(
            |r| r.starts_with("POST /apis/apps/v1/namespaces/default/deployments?")
                && r.contains("fieldValidation=Strict")
        ),
        "{seen:#?}"
    );
    // Client-side validation would have fetched v2; the server-side parameter check on v3 made
    // it unnecessary.
    assert!(!seen.iter().any(|r| r.contains("/openapi/v2")), "{seen:#?}");
    eprintln!("{seen:#?}");
}

/// kubectl 1.27 still reads /openapi/v2 as gnostic protobuf: its query-parameter verifier
/// looks for `fieldValidation` on the PATCH operation of the kind, and client-side `apply`
/// builds its schema from it. A 406 there made it fall back to `/swagger-2.0.0.pb-v1` and fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27_applies_and_explains_with_the_v2_protobuf_document() {
    const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.27";
    if !std::path::Path::new(KUBECTL).exists() {
        eprintln!("{KUBECTL} not found; skipping");
        return;
    }
    let harness = KubectlHarness::start().await;
    let manifest = harness.manifest.display().to_string();
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
        let output = harness.run(KUBECTL, args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{args:?}\nstdout: {stdout}\nstderr: {stderr}\n{:#?}",
            harness.seen.lock().unwrap()
        );
        eprintln!("kubectl 1.27 {args:?}:\n{stdout}");
        outputs.push(stdout);
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
    // v2 document, so the create asks the server to validate. It fails here (no REST handlers).
    let _ = harness
        .run(KUBECTL, &["create", "--validate=strict", "-f", &manifest])
        .await;
    let seen = harness.seen.lock().unwrap();
    eprintln!("{seen:#?}");
    assert!(
        seen.iter().any(
            |r| r.starts_with("POST /apis/apps/v1/namespaces/default/deployments?")
                && r.contains("fieldValidation=Strict")
        ),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|r| r.starts_with("GET /openapi/v2")),
        "{seen:#?}"
    );
}

#[test]
fn every_builtin_kind_and_subresource_has_a_definition_and_paths() {
    let definitions = Definitions::builtin();
    for strategy in crate::registry::kinds::builtin() {
        let info = strategy.info();
        assert!(
            definitions
                .definition_of(&info.group, &info.version, &info.kind)
                .is_some(),
            "{} has no definition: its type is not in registry::kinds::schemas()",
            info.qualified_kind()
        );
        for sub in &info.subresources {
            assert!(
                definitions
                    .definition_of(&sub.group, &sub.version, &sub.kind)
                    .is_some(),
                "{}/{}",
                info.resource,
                sub.name
            );
        }
    }
    let doc = v3("api/v1");
    assert!(
        doc["paths"]
            .get("/api/v1/namespaces/{name}/finalize")
            .is_some()
    );
    assert!(doc["paths"].get("/api/v1/pods").is_some());
}
