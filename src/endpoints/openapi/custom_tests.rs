//! Tests of the documents of CustomResourceDefinitions: published beside the built-in ones,
//! merged into v2, withdrawn again.

use super::*;
use crate::endpoints::full;
use crate::registry::strategy::SubresourceInfo;
use http_body_util::BodyExt;
use std::sync::LazyLock;

/// One instance for these tests, apart from `tests::OPENAPI` whose documents must not change
/// under its tests; each test publishes CRDs of its own group.
static OPENAPI: LazyLock<OpenApi> = LazyLock::new(|| {
    let infos: Vec<ResourceInfo> = crate::registry::kinds::builtin()
        .iter()
        .map(|s| s.info().clone())
        .collect();
    OpenApi::build(&infos)
});

fn get(uri: &str, headers: &[(&str, &str)]) -> Option<Response> {
    let mut builder = http::Request::get(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    OPENAPI.serve(&builder.body(full("")).unwrap())
}

fn bytes(response: Response) -> Bytes {
    futures::executor::block_on(response.into_body().collect())
        .unwrap()
        .to_bytes()
}

fn body(uri: &str) -> Value {
    let response = get(uri, &[]).expect("an OpenAPI path");
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    serde_json::from_slice(&bytes(response)).unwrap()
}

/// The served version of a namespaced `Widget` of `group`/v1 with status and scale.
fn widget(group: &'static str, schema: Option<Value>) -> CustomResourceSchema {
    let mut info = crate::registry::kinds::test_support::info(group, "Widget", "widgets");
    info.subresources = vec![
        SubresourceInfo {
            name: "status",
            group: group.into(),
            version: "v1".into(),
            kind: "Widget".into(),
            verbs: std::borrow::Cow::Borrowed(&["get", "patch", "update"]),
            connect: false,
        },
        SubresourceInfo {
            name: "scale",
            group: "autoscaling".into(),
            version: "v1".into(),
            kind: "Scale".into(),
            verbs: std::borrow::Cow::Borrowed(&["get", "patch", "update"]),
            connect: false,
        },
    ];
    CustomResourceSchema {
        info,
        list_kind: "WidgetList".into(),
        schema,
        selectable_fields: vec![".spec.color".into()],
    }
}

fn widget_schema() -> Value {
    // Shared with the e2e test that has kubectl explain the same schema.
    serde_json::from_str(include_str!("../../../tests/testdata/widget-schema.json"))
        .expect("valid JSON")
}

/// Every `$ref` of `value`, without its prefix, checked to start with `prefix`.
fn refs(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.strip_prefix(prefix).expect(r).to_string());
                    }
                    _ => refs(v, prefix, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, prefix, out)),
        _ => {}
    }
}

#[test]
fn a_published_crd_is_listed_in_the_v3_root_and_served_as_a_self_contained_document() {
    OPENAPI.set_custom_resource(
        "widgets.example.com",
        vec![widget("example.com", Some(widget_schema()))],
    );
    let root = body("/openapi/v3");
    let url = root["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .expect("the CRD's group-version in the root");
    let hash = url
        .strip_prefix("/openapi/v3/apis/example.com/v1?hash=")
        .unwrap();
    assert_eq!(hash.len(), 128);
    assert!(root["paths"].get("apis/apps/v1").is_some());

    let hashed = get(url, &[]).unwrap();
    assert_eq!(hashed.headers()[header::CACHE_CONTROL], "public, immutable");
    assert_eq!(hashed.headers()[header::ETAG], format!("\"{hash}\""));
    let stale = get("/openapi/v3/apis/example.com/v1?hash=ABC", &[]).unwrap();
    assert_eq!(stale.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(stale.headers()[header::LOCATION], url);

    let doc = body("/openapi/v3/apis/example.com/v1");
    let schemas = &doc["components"]["schemas"];
    let widget = &schemas["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        widget["x-kubernetes-selectable-fields"],
        json!([{"fieldPath": "spec.color"}])
    );
    assert_eq!(widget["description"], "A widget.");
    let spec = &widget["properties"]["spec"];
    assert_eq!(
        spec["properties"]["size"],
        json!({"type": "integer", "minimum": 1, "default": 3})
    );
    assert_eq!(spec["properties"]["color"]["enum"], json!(["red", "blue"]));
    assert_eq!(spec["properties"]["note"]["nullable"], true);
    assert_eq!(spec["required"], json!(["size", "note"]));
    assert_eq!(
        spec["properties"]["port"]["anyOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert!(spec["properties"]["either"].get("oneOf").is_some());
    assert!(spec.get("example").is_none(), "not a structural keyword");
    let template = &spec["properties"]["template"];
    assert_eq!(template["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(template["required"], json!(["kind", "apiVersion"]));
    // OpenAPI 3 ignores a $ref's siblings: the description sits beside an allOf.
    let metadata = json!({
        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    });
    assert_eq!(template["properties"]["metadata"], metadata);
    assert_eq!(widget["properties"]["metadata"], metadata);
    assert_eq!(widget["properties"]["kind"]["type"], "string");
    assert!(
        widget["properties"]["apiVersion"]["description"]
            .as_str()
            .unwrap()
            .starts_with("APIVersion defines")
    );
    let list = &schemas["com.example.v1.WidgetList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "WidgetList", "version": "v1"}])
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/com.example.v1.Widget"
    );
    assert_eq!(list["description"], "WidgetList is a list of Widget");

    let paths = doc["paths"].as_object().unwrap();
    let collection = &paths["/apis/example.com/v1/namespaces/{namespace}/widgets"];
    assert_eq!(
        collection["get"]["operationId"],
        "listExampleComV1NamespacedWidget"
    );
    assert_eq!(collection["get"]["tags"], json!(["exampleCom_v1"]));
    assert_eq!(
        collection["post"]["x-kubernetes-group-version-kind"],
        json!({"group": "example.com", "kind": "Widget", "version": "v1"})
    );
    assert_eq!(
        paths["/apis/example.com/v1/widgets"]["get"]["operationId"],
        "listExampleComV1WidgetForAllNamespaces"
    );
    let item = &paths["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"];
    let patch_types = item["patch"]["requestBody"]["content"].as_object().unwrap();
    assert!(patch_types.contains_key("application/merge-patch+json"));
    assert!(!patch_types.contains_key("application/strategic-merge-patch+json"));
    let status = &paths["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status"];
    assert_eq!(
        status["put"]["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/com.example.v1.Widget"
    );
    let scale = &paths["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/scale"];
    assert_eq!(
        scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
    // Upstream tags every operation of a custom resource with the resource's own kind.
    assert_eq!(
        scale["get"]["x-kubernetes-group-version-kind"]["kind"],
        "Widget"
    );
    assert!(
        !paths.keys().any(|p| p.contains("/watch/")),
        "upstream publishes no watch paths for custom resources"
    );
    assert!(!paths.contains_key("/apis/example.com/v1/"));

    let mut referenced = BTreeSet::new();
    refs(&doc, "#/components/schemas/", &mut referenced);
    for name in [
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.api.autoscaling.v1.Scale",
    ] {
        assert!(referenced.contains(name), "{name}");
    }
    for name in &referenced {
        assert!(schemas.get(name).is_some(), "unresolved {name}");
    }
    assert!(
        schemas
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry")
            .is_some()
    );
}

#[test]
fn v2_merges_the_crd_definitions_and_paths_into_the_builtin_document() {
    OPENAPI.set_custom_resource(
        "widgets.v2.example.com",
        vec![widget("v2.example.com", Some(widget_schema()))],
    );
    let v2 = body("/openapi/v2");
    let definitions = v2["definitions"].as_object().unwrap();
    assert!(definitions.contains_key("io.k8s.api.apps.v1.Deployment"));
    assert!(
        v2["paths"]
            .get("/apis/apps/v1/namespaces/{namespace}/deployments")
            .is_some()
    );
    let widget = &definitions["com.example.v2.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "v2.example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        widget["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    let spec = &widget["properties"]["spec"];
    // v2 has no nullable: the field is untyped and no longer required; no junctors, no
    // defaults; unknown-field-preserving objects are untyped, without the embedded fields.
    assert_eq!(spec["properties"]["note"], json!({}));
    assert_eq!(spec["required"], json!(["size"]));
    assert_eq!(
        spec["properties"]["size"],
        json!({"type": "integer", "minimum": 1})
    );
    assert_eq!(spec["properties"]["either"], json!({"type": "string"}));
    assert_eq!(
        spec["properties"]["template"],
        json!({
            "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true,
        })
    );
    assert!(definitions.contains_key("com.example.v2.v1.WidgetList"));
    let collection = &v2["paths"]["/apis/v2.example.com/v1/namespaces/{namespace}/widgets"];
    assert_eq!(
        collection["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["in"] == "body")
            .unwrap()["schema"]["$ref"],
        "#/definitions/com.example.v2.v1.Widget"
    );
    let mut referenced = BTreeSet::new();
    refs(&v2, "#/definitions/", &mut referenced);
    for name in &referenced {
        assert!(definitions.contains_key(name), "unresolved {name}");
    }

    // The protobuf form carries them too (other tests may publish CRDs meanwhile, so the two
    // forms are compared by this CRD's parts only).
    use super::tests::{pb_all, pb_extension, pb_named, pb_one, pb_str};
    let proto = get("/openapi/v2", &[("accept", V2_PROTOBUF)]).unwrap();
    assert_eq!(proto.headers()[header::CONTENT_TYPE], V2_PROTOBUF);
    let served = bytes(proto);
    let proto_definitions = pb_one(&served, 9);
    let widget = pb_named(proto_definitions, 1, "com.example.v2.v1.Widget");
    assert_eq!(
        pb_extension(widget, 31, "x-kubernetes-group-version-kind"),
        "- group: v2.example.com\n  kind: Widget\n  version: v1\n"
    );
    let spec = pb_named(pb_one(widget, 25), 1, "spec");
    assert_eq!(pb_all(spec, 19), [b"size".as_slice()]);
    assert!(
        pb_all(proto_definitions, 1)
            .iter()
            .any(|pair| pb_str(pair, 1) == "io.k8s.api.apps.v1.Deployment")
    );
    pb_named(
        pb_one(&served, 8),
        2,
        "/apis/v2.example.com/v1/namespaces/{namespace}/widgets/{name}/scale",
    );
}

#[test]
fn removing_a_crd_withdraws_its_group_version_from_v3_and_its_kinds_from_v2() {
    OPENAPI.set_custom_resource(
        "widgets.gone.example.com",
        vec![widget("gone.example.com", Some(widget_schema()))],
    );
    assert!(
        body("/openapi/v3")["paths"]
            .get("apis/gone.example.com/v1")
            .is_some()
    );
    assert!(
        body("/openapi/v2")["definitions"]
            .get("com.example.gone.v1.Widget")
            .is_some()
    );

    OPENAPI.remove_custom_resource("widgets.gone.example.com");
    assert!(
        body("/openapi/v3")["paths"]
            .get("apis/gone.example.com/v1")
            .is_none()
    );
    assert!(get("/openapi/v3/apis/gone.example.com/v1", &[]).is_none());
    let v2 = body("/openapi/v2");
    assert!(
        v2["definitions"]
            .get("com.example.gone.v1.Widget")
            .is_none()
    );
    assert!(
        v2["definitions"]
            .get("com.example.gone.v1.WidgetList")
            .is_none()
    );
    assert!(
        !v2["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|p| p.starts_with("/apis/gone.example.com/"))
    );
    assert!(
        v2["definitions"]
            .get("io.k8s.api.apps.v1.Deployment")
            .is_some()
    );
}

#[test]
fn builtin_v3_documents_keep_their_hash_when_crds_change_while_v2_and_the_root_do_not() {
    let hash_of = |gv: &str| body("/openapi/v3")["paths"][gv]["serverRelativeURL"].clone();
    let etag = |uri: &str| get(uri, &[]).unwrap().headers()[header::ETAG].clone();
    let (apps, core) = (hash_of("apis/apps/v1"), hash_of("api/v1"));
    let (v2, root) = (etag("/openapi/v2"), etag("/openapi/v3"));
    OPENAPI.set_custom_resource(
        "widgets.hash.example.com",
        vec![widget("hash.example.com", None)],
    );
    assert_eq!(hash_of("apis/apps/v1"), apps);
    assert_eq!(hash_of("api/v1"), core);
    assert_ne!(etag("/openapi/v2"), v2);
    assert_ne!(etag("/openapi/v3"), root);
    OPENAPI.remove_custom_resource("widgets.hash.example.com");
    assert_eq!(hash_of("apis/apps/v1"), apps);
}

#[test]
fn a_crd_without_a_schema_is_published_as_an_object_keeping_unknown_fields() {
    let crd = widget("any.example.com", None);
    for format in [Format::V2, Format::V3] {
        let [(name, schema), (list_name, _)] = custom::definitions(&crd, format);
        assert_eq!(name, "com.example.any.v1.Widget");
        assert_eq!(list_name, "com.example.any.v1.WidgetList");
        let mut expected = json!({
            "type": "object",
            "x-kubernetes-group-version-kind":
                [{"group": "any.example.com", "kind": "Widget", "version": "v1"}],
            "x-kubernetes-selectable-fields": [{"fieldPath": "spec.color"}],
        });
        // Swagger 2.0 has no extension for it: a bare object, as upstream.
        if format == Format::V3 {
            expected["x-kubernetes-preserve-unknown-fields"] = json!(true);
        }
        assert_eq!(schema, expected, "{format:?}");
    }
}

#[test]
fn a_crd_with_a_preserving_root_keeps_its_properties_in_v3_only() {
    let schema = json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {"spec": {"type": "object"}},
    });
    let crd = widget("keep.example.com", Some(schema));
    let [(_, v3), _] = custom::definitions(&crd, Format::V3);
    assert_eq!(v3["properties"]["spec"], json!({"type": "object"}));
    assert!(v3["properties"].get("metadata").is_some());
    let [(_, v2), _] = custom::definitions(&crd, Format::V2);
    assert!(v2.get("properties").is_none());
    assert_eq!(v2["type"], "object");
}

#[test]
fn custom_definition_names_reverse_the_group() {
    assert_eq!(
        custom::definition_name("stable.example.com", "v1beta1", "CronTab"),
        "com.example.stable.v1beta1.CronTab"
    );
    assert_eq!(custom::definition_name("foo", "v1", "Bar"), "foo.v1.Bar");
}
