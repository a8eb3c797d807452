//! The Swagger 2.0 document as gnostic's protobuf `openapi.v2.Document`, the body of
//! `/openapi/v2` for `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
//!
//! kube-openapi builds it by feeding the JSON to gnostic's compiler (`openapi_v2.NewDocument`),
//! and client-go (kubectl's client-side validation, its query-parameter verifier) reads it back
//! with the same generated types. This module does the compiler's mapping directly from the
//! rendered `serde_json::Value`, field numbers from `openapiv2/OpenAPIv2.proto`:
//! - every JSON object kept as a list of `Named*` pairs keeps the document's key order;
//! - `x-` keys become `NamedAny { name, value: Any { yaml } }` where `yaml` is the value as
//!   YAML text (gnostic marshals the YAML node; readers `yaml.Unmarshal` it again);
//! - oneofs pick the alternative gnostic's compiler would match first (`in: body` is a body
//!   parameter, `$ref` a JSON reference, the `type` and `flow` of a security scheme its kind);
//! - proto3 zero scalars are left out as Go's marshaller does, sub-messages always written.

use crate::protobuf::wire::{FIXED64, put_bytes, put_key, put_varint_field};
use serde_json::{Map, Value};

/// Encodes a Swagger 2.0 document.
pub(super) fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Msg::default();
    let Some(m) = doc.as_object() else {
        return out.0;
    };
    out.string(1, m, "swagger");
    out.message_of(2, m, "info", info);
    out.string(3, m, "host");
    out.string(4, m, "basePath");
    out.strings(5, m, "schemes");
    out.strings(6, m, "consumes");
    out.strings(7, m, "produces");
    out.message_of(8, m, "paths", paths);
    out.named(9, m, "definitions", schema);
    out.named(10, m, "parameters", parameter);
    out.named(11, m, "responses", response);
    out.each(12, m, "security", security_requirement);
    out.named(13, m, "securityDefinitions", security_scheme);
    out.each(14, m, "tags", tag);
    out.message_of(15, m, "externalDocs", external_docs);
    out.extensions(16, m);
    out.0
}

/// A message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    /// A `string` field; absent or empty strings are proto3 zeros and left out.
    fn string(&mut self, number: u32, m: &Map<String, Value>, key: &str) {
        if let Some(s) = m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
            put_bytes(&mut self.0, number, s.as_bytes());
        }
    }

    /// A `repeated string` field from a JSON array of strings.
    fn strings(&mut self, number: u32, m: &Map<String, Value>, key: &str) {
        for s in m.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                put_bytes(&mut self.0, number, s.as_bytes());
            }
        }
    }

    fn bool(&mut self, number: u32, m: &Map<String, Value>, key: &str) {
        if m.get(key).and_then(Value::as_bool) == Some(true) {
            put_varint_field(&mut self.0, number, 1);
        }
    }

    /// An `int64` field: negative values are ten-byte varints, as in Go.
    fn int64(&mut self, number: u32, m: &Map<String, Value>, key: &str) {
        if let Some(v) = m.get(key).and_then(Value::as_i64).filter(|v| *v != 0) {
            put_varint_field(&mut self.0, number, v as u64);
        }
    }

    fn double(&mut self, number: u32, m: &Map<String, Value>, key: &str) {
        if let Some(v) = m.get(key).and_then(Value::as_f64).filter(|v| *v != 0.0) {
            put_key(&mut self.0, number, FIXED64);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn message(&mut self, number: u32, child: Msg) {
        put_bytes(&mut self.0, number, &child.0);
    }

    /// A sub-message built from the JSON object at `key`, if there is one.
    fn message_of(
        &mut self,
        number: u32,
        m: &Map<String, Value>,
        key: &str,
        build: fn(&Map<String, Value>) -> Msg,
    ) {
        if let Some(child) = m.get(key).and_then(Value::as_object) {
            self.message(number, build(child));
        }
    }

    /// A `repeated` message field built from each object of the JSON array at `key`.
    fn each(
        &mut self,
        number: u32,
        m: &Map<String, Value>,
        key: &str,
        build: fn(&Map<String, Value>) -> Msg,
    ) {
        for item in m.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(item) = item.as_object() {
                self.message(number, build(item));
            }
        }
    }

    /// A map message (`Definitions`, `Properties`, …: `repeated Named* additional_properties
    /// = 1`) built from the JSON object at `key`, each value by `build`.
    fn named(
        &mut self,
        number: u32,
        m: &Map<String, Value>,
        key: &str,
        build: fn(&Map<String, Value>) -> Msg,
    ) {
        if let Some(map) = m.get(key).and_then(Value::as_object) {
            let mut pairs = Msg::default();
            for (name, value) in map {
                if let Some(value) = value.as_object() {
                    pairs.message(1, named(name, build(value)));
                }
            }
            self.message(number, pairs);
        }
    }

    /// The `repeated NamedAny vendor_extension` field: every `x-` key, in document order.
    fn extensions(&mut self, number: u32, m: &Map<String, Value>) {
        for (name, value) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.message(number, named(name, any(value)));
        }
    }

    /// A `repeated Any` field (`enum`).
    fn anys(&mut self, number: u32, m: &Map<String, Value>, key: &str) {
        for value in m.get(key).and_then(Value::as_array).into_iter().flatten() {
            self.message(number, any(value));
        }
    }

    /// A singular `Any` field (`default`, `example`).
    fn any(&mut self, number: u32, m: &Map<String, Value>, key: &str) {
        if let Some(value) = m.get(key) {
            self.message(number, any(value));
        }
    }
}

/// A `Named*` pair: `name = 1`, `value = 2`.
fn named(name: &str, value: Msg) -> Msg {
    let mut out = Msg::default();
    if !name.is_empty() {
        put_bytes(&mut out.0, 1, name.as_bytes());
    }
    out.message(2, value);
    out
}

/// `Any { yaml = 2 }`; `value` (a `google.protobuf.Any`) is only set by compiler extensions.
fn any(value: &Value) -> Msg {
    let mut out = Msg::default();
    put_bytes(&mut out.0, 2, yaml(value).as_bytes());
    out
}

fn info(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "title");
    out.string(2, m, "version");
    out.string(3, m, "description");
    out.string(4, m, "termsOfService");
    out.message_of(5, m, "contact", contact);
    out.message_of(6, m, "license", license);
    out.extensions(7, m);
    out
}

fn contact(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "name");
    out.string(2, m, "url");
    out.string(3, m, "email");
    out.extensions(4, m);
    out
}

fn license(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "name");
    out.string(2, m, "url");
    out.extensions(3, m);
    out
}

fn external_docs(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "description");
    out.string(2, m, "url");
    out.extensions(3, m);
    out
}

fn tag(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "name");
    out.string(2, m, "description");
    out.message_of(3, m, "externalDocs", external_docs);
    out.extensions(4, m);
    out
}

/// `Paths`: `x-` keys are extensions (field 1), every other key a `NamedPathItem` (field 2).
fn paths(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.extensions(1, m);
    for (path, item) in m.iter().filter(|(k, _)| k.starts_with('/')) {
        if let Some(item) = item.as_object() {
            out.message(2, named(path, path_item(item)));
        }
    }
    out
}

fn path_item(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "$ref");
    for (number, verb) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        out.message_of(number, m, verb, operation);
    }
    out.each(9, m, "parameters", parameters_item);
    out.extensions(10, m);
    out
}

fn operation(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.strings(1, m, "tags");
    out.string(2, m, "summary");
    out.string(3, m, "description");
    out.message_of(4, m, "externalDocs", external_docs);
    out.string(5, m, "operationId");
    out.strings(6, m, "produces");
    out.strings(7, m, "consumes");
    out.each(8, m, "parameters", parameters_item);
    out.message_of(9, m, "responses", responses);
    out.strings(10, m, "schemes");
    out.bool(11, m, "deprecated");
    out.each(12, m, "security", security_requirement);
    out.extensions(13, m);
    out
}

/// `ParametersItem`: a `$ref` is a `JsonReference` (2), anything else a `Parameter` (1).
fn parameters_item(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    if m.contains_key("$ref") {
        out.message(2, json_reference(m));
    } else {
        out.message(1, parameter(m));
    }
    out
}

fn json_reference(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "$ref");
    out.string(2, m, "description");
    out
}

/// `Parameter`: `BodyParameter` (1) for `in: body`, otherwise `NonBodyParameter` (2) whose
/// oneof is chosen by `in`.
fn parameter(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    let location = m.get("in").and_then(Value::as_str).unwrap_or("");
    if location == "body" {
        let mut body = Msg::default();
        body.string(1, m, "description");
        body.string(2, m, "name");
        body.string(3, m, "in");
        body.bool(4, m, "required");
        body.message_of(5, m, "schema", schema);
        body.extensions(6, m);
        out.message(1, body);
        return out;
    }
    // Header and path sub-schemas lack `allowEmptyValue`, which shifts every later field by one.
    let (number, allows_empty) = match location {
        "header" => (1, false),
        "formData" => (2, true),
        "query" => (3, true),
        "path" => (4, false),
        // gnostic's compiler rejects the document here; keep the rest of it readable.
        _ => return out,
    };
    let mut sub = Msg::default();
    sub.bool(1, m, "required");
    sub.string(2, m, "in");
    sub.string(3, m, "description");
    sub.string(4, m, "name");
    let base = if allows_empty {
        sub.bool(5, m, "allowEmptyValue");
        6
    } else {
        5
    };
    primitive_fields(&mut sub, m, base);
    sub.extensions(base + 17, m);
    let mut non_body = Msg::default();
    non_body.message(number, sub);
    out.message(2, non_body);
    out
}

/// The run of fields every primitive-typed message (`PrimitivesItems`, `Header`, the non-body
/// parameter sub-schemas) shares, from `type` at `base` to `multipleOf` at `base + 16`.
fn primitive_fields(out: &mut Msg, m: &Map<String, Value>, base: u32) {
    out.string(base, m, "type");
    out.string(base + 1, m, "format");
    out.message_of(base + 2, m, "items", primitives_items);
    out.string(base + 3, m, "collectionFormat");
    out.any(base + 4, m, "default");
    out.double(base + 5, m, "maximum");
    out.bool(base + 6, m, "exclusiveMaximum");
    out.double(base + 7, m, "minimum");
    out.bool(base + 8, m, "exclusiveMinimum");
    out.int64(base + 9, m, "maxLength");
    out.int64(base + 10, m, "minLength");
    out.string(base + 11, m, "pattern");
    out.int64(base + 12, m, "maxItems");
    out.int64(base + 13, m, "minItems");
    out.bool(base + 14, m, "uniqueItems");
    out.anys(base + 15, m, "enum");
    out.double(base + 16, m, "multipleOf");
}

fn primitives_items(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    primitive_fields(&mut out, m, 1);
    out.extensions(18, m);
    out
}

fn header(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    primitive_fields(&mut out, m, 1);
    out.string(18, m, "description");
    out.extensions(19, m);
    out
}

/// `Responses`: status codes and `default` are `NamedResponseValue`s (1), `x-` keys extensions.
fn responses(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    for (code, value) in m.iter().filter(|(k, _)| !k.starts_with("x-")) {
        if let Some(value) = value.as_object() {
            let mut item = Msg::default();
            if value.contains_key("$ref") {
                item.message(2, json_reference(value));
            } else {
                item.message(1, response(value));
            }
            out.message(1, named(code, item));
        }
    }
    out.extensions(2, m);
    out
}

fn response(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "description");
    if let Some(s) = m.get("schema").and_then(Value::as_object) {
        // gnostic tries `Schema` before `FileSchema`, and every schema object matches it.
        let mut item = Msg::default();
        item.message(1, schema(s));
        out.message(2, item);
    }
    out.named(3, m, "headers", header);
    if let Some(examples) = m.get("examples").and_then(Value::as_object) {
        let mut pairs = Msg::default();
        for (name, value) in examples {
            pairs.message(1, named(name, any(value)));
        }
        out.message(4, pairs);
    }
    out.extensions(5, m);
    out
}

fn schema(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "$ref");
    out.string(2, m, "format");
    out.string(3, m, "title");
    out.string(4, m, "description");
    out.any(5, m, "default");
    out.double(6, m, "multipleOf");
    out.double(7, m, "maximum");
    out.bool(8, m, "exclusiveMaximum");
    out.double(9, m, "minimum");
    out.bool(10, m, "exclusiveMinimum");
    out.int64(11, m, "maxLength");
    out.int64(12, m, "minLength");
    out.string(13, m, "pattern");
    out.int64(14, m, "maxItems");
    out.int64(15, m, "minItems");
    out.bool(16, m, "uniqueItems");
    out.int64(17, m, "maxProperties");
    out.int64(18, m, "minProperties");
    out.strings(19, m, "required");
    out.anys(20, m, "enum");
    match m.get("additionalProperties") {
        Some(Value::Object(s)) => {
            let mut item = Msg::default();
            item.message(1, schema(s));
            out.message(21, item);
        }
        Some(Value::Bool(b)) => {
            // A oneof member is written even when false: `false` forbids extra properties.
            let mut item = Msg::default();
            put_varint_field(&mut item.0, 2, u64::from(*b));
            out.message(21, item);
        }
        _ => {}
    }
    // `TypeItem` holds one type or, for a JSON array, several.
    match m.get("type") {
        Some(Value::String(t)) => {
            let mut item = Msg::default();
            put_bytes(&mut item.0, 1, t.as_bytes());
            out.message(22, item);
        }
        Some(Value::Array(_)) => {
            let mut item = Msg::default();
            item.strings(1, m, "type");
            out.message(22, item);
        }
        _ => {}
    }
    // `ItemsItem` holds one schema or, for a JSON array (tuple items), several.
    match m.get("items") {
        Some(Value::Object(s)) => {
            let mut item = Msg::default();
            item.message(1, schema(s));
            out.message(23, item);
        }
        Some(Value::Array(_)) => {
            let mut item = Msg::default();
            item.each(1, m, "items", schema);
            out.message(23, item);
        }
        _ => {}
    }
    out.each(24, m, "allOf", schema);
    out.named(25, m, "properties", schema);
    out.string(26, m, "discriminator");
    out.bool(27, m, "readOnly");
    out.message_of(28, m, "xml", xml);
    out.message_of(29, m, "externalDocs", external_docs);
    out.any(30, m, "example");
    out.extensions(31, m);
    out
}

fn xml(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    out.string(1, m, "name");
    out.string(2, m, "namespace");
    out.string(3, m, "prefix");
    out.bool(4, m, "attribute");
    out.bool(5, m, "wrapped");
    out.extensions(6, m);
    out
}

/// `SecurityRequirement`: scheme name → `StringArray` of scopes.
fn security_requirement(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    for (name, scopes) in m {
        let mut array = Msg::default();
        for scope in scopes.as_array().into_iter().flatten() {
            if let Some(scope) = scope.as_str() {
                put_bytes(&mut array.0, 1, scope.as_bytes());
            }
        }
        out.message(1, named(name, array));
    }
    out
}

/// `SecurityDefinitionsItem`, whose oneof gnostic matches by `type` (and `flow` for OAuth 2).
fn security_scheme(m: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    let mut scheme = Msg::default();
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
    let flow = m.get("flow").and_then(Value::as_str).unwrap_or("");
    let number = match (kind, flow) {
        ("basic", _) => {
            scheme.string(1, m, "type");
            scheme.string(2, m, "description");
            scheme.extensions(3, m);
            1
        }
        ("apiKey", _) => {
            scheme.string(1, m, "type");
            scheme.string(2, m, "name");
            scheme.string(3, m, "in");
            scheme.string(4, m, "description");
            scheme.extensions(5, m);
            2
        }
        ("oauth2", "implicit" | "password" | "application" | "accessCode") => {
            scheme.string(1, m, "type");
            scheme.string(2, m, "flow");
            if let Some(scopes) = m.get("scopes").and_then(Value::as_object) {
                let mut pairs = Msg::default();
                for (name, text) in scopes {
                    let mut pair = Msg::default();
                    put_bytes(&mut pair.0, 1, name.as_bytes());
                    if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
                        put_bytes(&mut pair.0, 2, text.as_bytes());
                    }
                    pairs.message(1, pair);
                }
                scheme.message(3, pairs);
            }
            let (fields, number): (&[&str], u32) = match flow {
                "implicit" => (&["authorizationUrl"], 3),
                "password" => (&["tokenUrl"], 4),
                "application" => (&["tokenUrl"], 5),
                _ => (&["authorizationUrl", "tokenUrl"], 6),
            };
            let mut next = 4;
            for field in fields.iter().chain(&["description"]) {
                scheme.string(next, m, field);
                next += 1;
            }
            scheme.extensions(next, m);
            number
        }
        _ => return out,
    };
    out.message(number, scheme);
    out
}

/// `value` as YAML text in block style, the shape of gnostic's `yaml.Marshal` of the node:
/// `- group: apps\n  kind: Deployment\n  version: v1\n`. Strings that a YAML reader would take
/// for another type, or that need escapes, are double-quoted (JSON's escapes are YAML's).
pub(super) fn yaml(value: &Value) -> String {
    let mut out = String::new();
    write_yaml(&mut out, value, 0);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn write_yaml(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (i, (k, v)) in m.iter().enumerate() {
                // The first key of a mapping inside a sequence entry sits after its `- `.
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str(&scalar(k));
                out.push(':');
                match v {
                    Value::Object(c) if !c.is_empty() => {
                        out.push('\n');
                        out.push_str(&" ".repeat(indent + 4));
                        write_yaml(out, v, indent + 4);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        out.push_str(&" ".repeat(indent + 4));
                        write_yaml(out, v, indent + 4);
                    }
                    _ => {
                        out.push(' ');
                        write_yaml(out, v, indent);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str("- ");
                write_yaml(out, v, indent + 2);
            }
        }
        Value::Object(_) => out.push_str("{}\n"),
        Value::Array(_) => out.push_str("[]\n"),
        Value::String(s) => {
            out.push_str(&scalar(s));
            out.push('\n');
        }
        other => {
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

/// A string as a YAML scalar: plain when unambiguous, otherwise JSON-quoted.
fn scalar(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        // YAML 1.1 readers (yaml.v2) resolve these words to booleans or null.
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
        );
    if plain {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_of_a_group_version_kind_list_is_a_block_sequence_of_mappings() {
        let gvk = json!([{"group": "apps", "kind": "Deployment", "version": "v1"}]);
        assert_eq!(
            yaml(&gvk),
            "- group: apps\n  kind: Deployment\n  version: v1\n"
        );
        assert_eq!(
            yaml(&json!([{"group": "", "kind": "Pod", "version": "v1"}])),
            "- group: \"\"\n  kind: Pod\n  version: v1\n"
        );
        assert_eq!(yaml(&json!("merge")), "merge\n");
        assert_eq!(yaml(&json!("retainKeys,merge")), "\"retainKeys,merge\"\n");
        assert_eq!(yaml(&json!(["name", "protocol"])), "- name\n- protocol\n");
        assert_eq!(yaml(&json!(true)), "true\n");
        assert_eq!(yaml(&json!("true")), "\"true\"\n");
        assert_eq!(yaml(&json!({"a": {"b": [1, 2]}, "c": []})), {
            "a:\n    b:\n        - 1\n        - 2\nc: []\n"
        });
    }
}
