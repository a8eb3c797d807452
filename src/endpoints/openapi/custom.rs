//! The definitions of custom resources, as apiextensions-apiserver's OpenAPI builder
//! (`pkg/controller/openapi/builder`) publishes them: the version's structural schema with
//! ObjectMeta and TypeMeta put in, a `<ListKind>` beside it, and for Swagger 2.0 the schema
//! cut down to what v2 and kubectl can read (`pkg/controller/openapi/v2`).

use super::CustomResourceSchema;
use super::definitions::{Definitions, Format, LIST_META, OBJECT_META};
use super::paths::ResourceDefinitions;
use serde_json::{Map, Value, json};

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const EMBEDDED_API_VERSION_DESCRIPTION: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND_DESCRIPTION: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
/// PartialObjectMetadata's and PartialObjectMetadataList's `metadata` descriptions.
const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The keywords a structural schema keeps (`schema.Structural` and its `ToKubeOpenAPI`); the
/// rest (`example`, `externalDocs`, `patternProperties`, …) is not published.
const STRUCTURAL_KEYS: &[&str] = &[
    "description",
    "type",
    "title",
    "default",
    "nullable",
    "format",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "items",
    "properties",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Upstream's definition name of a custom kind: the group reversed, then version and kind
/// (`example.com`, `v1`, `Widget` → `com.example.v1.Widget`).
pub(super) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{kind}", parts.join("."))
}

/// The definitions the operations of a custom resource refer to: its own and its list's, the
/// resource itself for status and autoscaling/v1 Scale (a built-in) for scale.
pub(super) fn resource_definitions(
    crd: &CustomResourceSchema,
    builtin: &Definitions,
) -> ResourceDefinitions {
    let info = &crd.info;
    let object = definition_name(&info.group, &info.version, &info.kind);
    let subresources = info
        .subresources
        .iter()
        .filter_map(|sub| {
            let own = sub.name == "status"
                || (sub.group == info.group
                    && sub.version == info.version
                    && sub.kind == info.kind);
            let definition = if own {
                object.clone()
            } else {
                builtin
                    .definition_of(&sub.group, &sub.version, &sub.kind)?
                    .to_string()
            };
            Some((sub.name, definition))
        })
        .collect();
    ResourceDefinitions {
        list: definition_name(&info.group, &info.version, &crd.list_kind),
        object,
        subresources,
        custom: true,
    }
}

/// The kind's definition and its list's, by name, for `format`.
pub(super) fn definitions(crd: &CustomResourceSchema, format: Format) -> [(String, Value); 2] {
    let info = &crd.info;
    let object = definition_name(&info.group, &info.version, &info.kind);
    let list = definition_name(&info.group, &info.version, &crd.list_kind);
    let list_schema = list_schema(crd, &object, format);
    [(object, kind_schema(crd, format)), (list, list_schema)]
}

fn gvk(crd: &CustomResourceSchema, kind: &str) -> Value {
    let info = &crd.info;
    json!([{"group": info.group, "kind": kind, "version": info.version}])
}

fn string_property(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

/// A described reference: OpenAPI 3 ignores siblings of `$ref`, so there upstream wraps the
/// reference in `allOf` beside the description (which `kubectl explain` then prints).
fn reference(format: Format, definition: &str, description: &str) -> Value {
    match format {
        Format::V2 => {
            let mut reference = format.reference(definition);
            reference["description"] = json!(description);
            reference
        }
        Format::V3 => json!({"description": description, "allOf": [format.reference(definition)]}),
    }
}

/// `buildKubeNative`: the published schema with metadata, apiVersion and kind, or an object of
/// any fields when there is no schema (or, for v2, when the root keeps unknown fields).
fn kind_schema(crd: &CustomResourceSchema, format: Format) -> Value {
    let schema = crd.schema.clone().filter(|schema| {
        format == Format::V3
            || schema.get("x-kubernetes-preserve-unknown-fields") != Some(&json!(true))
    });
    let mut schema = match schema {
        Some(mut schema) if schema.is_object() => {
            structural(&mut schema);
            match format {
                Format::V2 => to_v2(&mut schema),
                Format::V3 => unfold(&mut schema),
            }
            let properties = properties_of(&mut schema);
            properties.insert(
                "metadata".into(),
                reference(format, OBJECT_META, METADATA_DESCRIPTION),
            );
            properties.insert(
                "apiVersion".into(),
                string_property(API_VERSION_DESCRIPTION),
            );
            properties.insert("kind".into(), string_property(KIND_DESCRIPTION));
            add_embedded_properties(&mut schema, format);
            schema
        }
        // Swagger 2.0 has no way to say "any fields": a bare object there.
        _ if format == Format::V2 => json!({"type": "object"}),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    schema["x-kubernetes-group-version-kind"] = gvk(crd, &crd.info.kind);
    let selectable: Vec<Value> = crd
        .selectable_fields
        .iter()
        .map(|path| json!({"fieldPath": path.trim_start_matches('.')}))
        .collect();
    schema["x-kubernetes-selectable-fields"] = Value::Array(selectable);
    schema
}

/// `buildListSchema` (which, unlike built-in lists, gives no `type`).
fn list_schema(crd: &CustomResourceSchema, object: &str, format: Format) -> Value {
    json!({
        "description": format!("{} is a list of {}", crd.list_kind, crd.info.kind),
        "properties": {
            "apiVersion": string_property(API_VERSION_DESCRIPTION),
            "items": {
                "description": format!(
                    "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                    crd.info.resource
                ),
                "items": format.reference(object),
                "type": "array",
            },
            "kind": string_property(KIND_DESCRIPTION),
            "metadata": reference(format, LIST_META, LIST_METADATA_DESCRIPTION),
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": gvk(crd, &crd.list_kind),
    })
}

/// The `properties` of an object schema, created when missing.
fn properties_of(schema: &mut Value) -> &mut Map<String, Value> {
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    schema["properties"]
        .as_object_mut()
        .expect("just made an object")
}

fn is_true(object: &Map<String, Value>, key: &str) -> bool {
    object.get(key) == Some(&Value::Bool(true))
}

/// Calls `f` on each schema directly nested in `object`: items, properties, additional
/// properties and the junctors.
fn each_subschema(object: &mut Map<String, Value>, f: &mut impl FnMut(&mut Value)) {
    if let Some(items) = object.get_mut("items") {
        f(items);
    }
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        properties.values_mut().for_each(&mut *f);
    }
    if let Some(additional @ Value::Object(_)) = object.get_mut("additionalProperties") {
        f(additional);
    }
    for junctor in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(schemas)) = object.get_mut(junctor) {
            schemas.iter_mut().for_each(&mut *f);
        }
    }
    if let Some(not) = object.get_mut("not") {
        f(not);
    }
}

/// Keeps what a structural schema holds: its keywords, and the boolean extensions only when set.
fn structural(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    object.retain(|key, value| {
        STRUCTURAL_KEYS.contains(&key.as_str())
            && !(matches!(
                key.as_str(),
                "x-kubernetes-preserve-unknown-fields"
                    | "x-kubernetes-embedded-resource"
                    | "x-kubernetes-int-or-string"
            ) && *value != Value::Bool(true))
    });
    each_subschema(object, &mut structural);
}

/// `Structural.Unfold` for v3: an int-or-string without junctors becomes `anyOf` integer or
/// string, as the validator reads it.
fn unfold(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    each_subschema(object, &mut unfold);
    if is_true(object, "x-kubernetes-int-or-string") && !object.contains_key("anyOf") {
        object.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
}

/// `ToStructuralOpenAPIV2` plus `PruneDefaults`: no junctors, nullable or defaults; nullable
/// and unknown-field-preserving values lose their properties and items (untyped, since kubectl
/// misreads them), and nullable fields are not required.
fn to_v2(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    for key in ["allOf", "oneOf", "anyOf", "not", "default"] {
        object.remove(key);
    }
    let preserve = is_true(object, "x-kubernetes-preserve-unknown-fields");
    if object.remove("nullable") == Some(Value::Bool(true)) {
        object.remove("type");
        object.remove("items");
        object.remove("properties");
    }
    if preserve {
        object.remove("items");
        object.remove("properties");
    }
    let ty = object.get("type").and_then(Value::as_str);
    if (ty == Some("array") && !object.contains_key("items")) || (preserve && ty == Some("object"))
    {
        object.remove("type");
    }
    let nullable_values = object
        .get("additionalProperties")
        .and_then(Value::as_object)
        .is_some_and(|additional| is_true(additional, "nullable"));
    if nullable_values {
        object.remove("required");
    } else if let Some(Value::Object(properties)) = object.get("properties") {
        let nullable: Vec<String> = properties
            .iter()
            .filter(|(_, p)| p.as_object().is_some_and(|p| is_true(p, "nullable")))
            .map(|(name, _)| name.clone())
            .collect();
        if let Some(Value::Array(required)) = object.get_mut("required") {
            required.retain(|r| !r.as_str().is_some_and(|r| nullable.iter().any(|n| n == r)));
            if required.is_empty() {
                object.remove("required");
            }
        }
    }
    each_subschema(object, &mut to_v2);
}

/// `addEmbeddedProperties`: embedded resources get apiVersion, kind and metadata, the first
/// two required (not in v2 below unknown-field-preserving values, which kubectl would then
/// check).
fn add_embedded_properties(schema: &mut Value, format: Format) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    each_subschema(object, &mut |s| add_embedded_properties(s, format));
    if format == Format::V2 && is_true(object, "x-kubernetes-preserve-unknown-fields") {
        return;
    }
    if !is_true(object, "x-kubernetes-embedded-resource") {
        return;
    }
    let properties = properties_of(schema);
    properties.insert(
        "apiVersion".into(),
        string_property(EMBEDDED_API_VERSION_DESCRIPTION),
    );
    properties.insert("kind".into(), string_property(EMBEDDED_KIND_DESCRIPTION));
    properties.insert(
        "metadata".into(),
        reference(format, OBJECT_META, METADATA_DESCRIPTION),
    );
    if !schema["required"].is_array() {
        schema["required"] = json!([]);
    }
    let required = schema["required"]
        .as_array_mut()
        .expect("just made an array");
    for field in ["kind", "apiVersion"] {
        if !required.iter().any(|r| r == field) {
            required.push(json!(field));
        }
    }
}
