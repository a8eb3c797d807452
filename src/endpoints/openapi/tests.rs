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
    use crate::protobuf::wire::{Reader, WireValue};
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
        for sub in info.subresources.iter().filter(|s| !s.connect) {
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
