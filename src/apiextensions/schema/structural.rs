//! The checks a CRD version's `openAPIV3Schema` must pass: upstream's structural schema invariants
//! and completeness (`ValidateStructural`), default validation (`ValidateDefaults`) and the OpenAPI
//! schema restrictions of `ValidateCustomResourceDefinitionOpenAPISchema`.

use super::validate::{child_path, validate_embedded_tree};
use super::{Structural, formats, prune};
use crate::registry::errors::{ErrorList, FieldError};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, JSONSchemaPropsOrStringArray,
};
use serde_json::Value;

/// Checks that a CRD schema is structural and uses only allowed constructs, as upstream's
/// `ValidateCustomResourceDefinitionOpenAPISchema` plus the structural schema checks
/// (`ValidateStructural`) and default validation (`ValidateDefaults`): e.g. `type: Required value:
/// must not be empty for specified object fields`, forbidden `$ref`, `dependencies`,
/// `additionalItems`, `patternProperties`, `definitions`, `id`, `uniqueItems`, additionalProperties
/// and properties mutually exclusive, x-kubernetes-* rules, metadata at the root restricted to
/// name and generateName, defaults that must validate and be pruned, no types in
/// allOf/anyOf/oneOf/not. `path` is the field path of the schema, e.g.
/// "spec.versions[0].schema.openAPIV3Schema"; error paths continue it as upstream does
/// (`...openAPIV3Schema.properties[spec].properties[replicas].type`).
/// `x-kubernetes-validations` rules are left to the CEL validator.
pub fn validate_structural(props: &JSONSchemaProps, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    if props.nullable == Some(true) {
        errs.push(FieldError::forbidden(
            child_path(path, "nullable"),
            "nullable cannot be true at the root",
        ));
    }

    let mut structural = Vec::new();
    invariants(props, Level::Root, path, &mut structural);
    completeness(props, props, path, path, &mut structural);
    structural.sort_by_key(|e| e.to_string());
    if structural.is_empty() {
        let mut root = Structural::new(props);
        root.embedded_resource = true;
        validate_defaults(path, &root, false, &mut errs);
    } else {
        errs.extend(structural);
    }

    let ssv = OpenApiContext {
        allow_defaults: true,
        reason: String::new(),
        inside_meta: false,
    };
    openapi_schema(props, path, &ssv, true, &mut errs);
    errs
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

fn props_key(path: &str, k: &str) -> String {
    format!("{path}.properties[{k}]")
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

fn flag(b: Option<bool>) -> bool {
    b.unwrap_or(false)
}

fn item_schema(s: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(s)) => Some(s),
        _ => None,
    }
}

fn properties(s: &JSONSchemaProps) -> impl Iterator<Item = (&String, &JSONSchemaProps)> {
    s.properties.iter().flatten()
}

fn type_of(s: &JSONSchemaProps) -> &str {
    s.type_.as_deref().unwrap_or("")
}

/// `anyOf: [{type: integer}, {type: string}]` and nothing else in the two alternatives.
fn is_int_or_string_any_of(any_of: &Option<Vec<JSONSchemaProps>>) -> bool {
    let only = |t: &str| JSONSchemaProps {
        type_: Some(t.to_string()),
        ..Default::default()
    };
    matches!(any_of, Some(v) if v.len() == 2 && v[0] == only("integer") && v[1] == only("string"))
}

/// upstream's `validateStructuralInvariants`.
fn invariants(s: &JSONSchemaProps, lvl: Level, path: &str, errs: &mut ErrorList) {
    let type_ = type_of(s);
    if type_ == "array" && s.items.is_none() {
        errs.push(FieldError::required(
            child_path(path, "items"),
            "must be specified",
        ));
    }
    if let Some(items) = item_schema(s) {
        invariants(items, Level::Item, &child_path(path, "items"), errs);
    }
    for (k, v) in properties(s) {
        invariants(v, Level::Field, &props_key(path, k), errs);
    }
    if let Some(ap) = &s.additional_properties {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                child_path(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let JSONSchemaPropsOrBool::Schema(ap) = ap {
            invariants(
                ap,
                Level::Field,
                &child_path(path, "additionalProperties"),
                errs,
            );
        }
    }

    let int_or_string = flag(s.x_kubernetes_int_or_string);
    let preserve = flag(s.x_kubernetes_preserve_unknown_fields);
    let embedded = flag(s.x_kubernetes_embedded_resource);
    if int_or_string && preserve {
        errs.push(FieldError::invalid(
            child_path(path, "x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errs.push(FieldError::invalid(
            child_path(path, "x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }

    let skip_any_of = is_int_or_string_any_of(&s.any_of);
    let skip_first_all_of_any_of = s
        .all_of
        .as_ref()
        .and_then(|a| a.first())
        .is_some_and(|a| is_int_or_string_any_of(&a.any_of));
    value_validation(s, skip_any_of, skip_first_all_of_any_of, path, errs);

    let check_metadata = lvl == Level::Root || embedded;
    if embedded && type_ != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        errs.push(if type_.is_empty() {
            FieldError::required(child_path(path, "type"), detail)
        } else {
            FieldError::invalid(child_path(path, "type"), type_, detail)
        });
    } else if type_.is_empty() && !int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(child_path(path, "type"), detail));
    }
    if embedded && s.additional_properties.is_some() {
        errs.push(FieldError::forbidden(
            child_path(path, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !type_.is_empty() && type_ != "object" {
        errs.push(FieldError::invalid(
            child_path(path, "type"),
            type_,
            "must be object at the root",
        ));
    }
    if check_metadata {
        for field in ["kind", "apiVersion"] {
            if let Some(p) = s.properties.as_ref().and_then(|p| p.get(field))
                && type_of(p) != "string"
            {
                errs.push(FieldError::invalid(
                    child_path(&props_key(path, field), "type"),
                    type_of(p),
                    "must be string",
                ));
            }
        }
    }
    if let Some(metadata) = s.properties.as_ref().and_then(|p| p.get("metadata")) {
        metadata_invariants(
            metadata,
            check_metadata,
            lvl,
            &props_key(path, "metadata"),
            errs,
        );
    }
    if embedded && !preserve && s.properties.as_ref().is_none_or(|p| p.is_empty()) {
        errs.push(FieldError::required(
            child_path(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Drops false booleans, empty strings, arrays and objects: what a Go zero value would be.
fn strip_zero(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, x| {
            strip_zero(x);
            !matches!(x, Value::Bool(false) | Value::Null)
                && !matches!(x, Value::String(s) if s.is_empty())
                && !matches!(x, Value::Array(a) if a.is_empty())
                && !matches!(x, Value::Object(o) if o.is_empty())
        });
    }
}

/// upstream's `validateStructuralMetadataInvariants`.
fn metadata_invariants(
    s: &JSONSchemaProps,
    check_metadata: bool,
    lvl: Level,
    path: &str,
    errs: &mut ErrorList,
) {
    if check_metadata && type_of(s) != "object" {
        errs.push(FieldError::invalid(
            child_path(path, "type"),
            type_of(s),
            "must be object",
        ));
    }
    if lvl == Level::Root {
        let mut rest = s.clone();
        rest.type_ = None;
        rest.default = None;
        if let Some(p) = &rest.properties {
            let name = p.contains_key("name");
            let generate_name = p.contains_key("generateName");
            if (name && generate_name && p.len() == 2) || ((name || generate_name) && p.len() == 1)
            {
                rest.properties = None;
            }
        }
        let mut v = serde_json::to_value(&rest).unwrap_or(Value::Null);
        strip_zero(&mut v);
        if v.as_object().is_some_and(|o| !o.is_empty()) {
            errs.push(FieldError::forbidden(
                path,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
}

/// upstream's `validateValueValidation` (the junctors and the pattern of a node).
fn value_validation(
    s: &JSONSchemaProps,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &str,
    errs: &mut ErrorList,
) {
    if !skip_any_of {
        for (i, v) in s.any_of.iter().flatten().enumerate() {
            nested(v, false, &format!("{path}.anyOf[{i}]"), errs);
        }
    }
    for (i, v) in s.all_of.iter().flatten().enumerate() {
        nested(
            v,
            skip_first_all_of_any_of && i == 0,
            &format!("{path}.allOf[{i}]"),
            errs,
        );
    }
    for (i, v) in s.one_of.iter().flatten().enumerate() {
        nested(v, false, &format!("{path}.oneOf[{i}]"), errs);
    }
    if let Some(not) = &s.not {
        nested(not, false, &child_path(path, "not"), errs);
    }
    if let Some(pattern) = s.pattern.as_deref().filter(|p| !p.is_empty())
        && let Err(e) = formats::compile_pattern(pattern)
    {
        errs.push(FieldError::invalid(
            child_path(path, "pattern"),
            pattern,
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
}

/// upstream's `validateNestedValueValidation`: what may not appear under allOf/anyOf/oneOf/not.
fn nested(v: &JSONSchemaProps, skip_any_of: bool, path: &str, errs: &mut ErrorList) {
    value_validation(v, skip_any_of, false, path, errs);
    if let Some(items) = item_schema(v) {
        nested(items, false, &child_path(path, "items"), errs);
    }
    for (k, p) in properties(v) {
        nested(p, false, &props_key(path, k), errs);
    }
    let forbid = |errs: &mut ErrorList, field: &str, detail: &str| {
        errs.push(FieldError::forbidden(child_path(path, field), detail));
    };
    if !type_of(v).is_empty() {
        forbid(errs, "type", "must be empty to be structural");
    }
    if v.additional_properties.is_some() {
        forbid(
            errs,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if v.default.is_some() {
        forbid(errs, "default", "must be undefined to be structural");
    }
    if v.title.as_deref().is_some_and(|t| !t.is_empty()) {
        forbid(errs, "title", "must be empty to be structural");
    }
    if v.description.as_deref().is_some_and(|t| !t.is_empty()) {
        forbid(errs, "description", "must be empty to be structural");
    }
    if flag(v.nullable) {
        forbid(errs, "nullable", "must be false to be structural");
    }
    if v.external_docs.is_some() {
        forbid(errs, "externalDocs", "must be undefined to be structural");
    }
    if flag(v.x_kubernetes_preserve_unknown_fields) {
        forbid(
            errs,
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        );
    }
    if flag(v.x_kubernetes_embedded_resource) {
        forbid(
            errs,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        );
    }
    if flag(v.x_kubernetes_int_or_string) {
        forbid(
            errs,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        );
    }
    if v.x_kubernetes_list_map_keys
        .as_ref()
        .is_some_and(|k| !k.is_empty())
    {
        forbid(
            errs,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if v.x_kubernetes_list_type.is_some() {
        forbid(
            errs,
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if v.x_kubernetes_map_type.is_some() {
        forbid(
            errs,
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        );
    }
    if v.x_kubernetes_validations
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        forbid(
            errs,
            "x-kubernetes-validations",
            "must be empty to be structural",
        );
    }
    if v.properties
        .as_ref()
        .is_some_and(|p| p.contains_key("metadata"))
    {
        errs.push(FieldError::forbidden(
            props_key(path, "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// upstream's `validateStructuralCompleteness`: fields and items named under the junctors of the
/// root must be specified in the structural part too.
fn completeness(
    v: &JSONSchemaProps,
    s: &JSONSchemaProps,
    s_path: &str,
    v_path: &str,
    errs: &mut ErrorList,
) {
    if let Some(not) = &v.not {
        nested_completeness(not, Some(s), s_path, &child_path(v_path, "not"), errs);
    }
    for (name, list) in [
        ("allOf", &v.all_of),
        ("anyOf", &v.any_of),
        ("oneOf", &v.one_of),
    ] {
        for (i, alt) in list.iter().flatten().enumerate() {
            nested_completeness(alt, Some(s), s_path, &format!("{v_path}.{name}[{i}]"), errs);
        }
    }
}

fn nested_completeness(
    v: &JSONSchemaProps,
    s: Option<&JSONSchemaProps>,
    s_path: &str,
    v_path: &str,
    errs: &mut ErrorList,
) {
    let Some(s) = s else {
        errs.push(FieldError::required(
            s_path,
            format!("because it is defined in {v_path}"),
        ));
        return;
    };
    completeness(v, s, s_path, v_path, errs);
    if let Some(items) = item_schema(v) {
        nested_completeness(
            items,
            item_schema(s),
            &child_path(s_path, "items"),
            &child_path(v_path, "items"),
            errs,
        );
    }
    for (k, vf) in properties(v) {
        let sp = props_key(s_path, k);
        let vp = props_key(v_path, k);
        match s.properties.as_ref().and_then(|p| p.get(k)) {
            Some(sf) => nested_completeness(vf, Some(sf), &sp, &vp, errs),
            None => errs.push(FieldError::required(
                sp,
                format!("because it is defined in {vp}"),
            )),
        }
    }
}

/// upstream's `ValidateDefaults`: defaults must be pruned and validate against their schema.
fn validate_defaults(path: &str, s: &Structural, inside_meta: bool, errs: &mut ErrorList) {
    let inside_meta = inside_meta && !s.embedded_resource;
    if let Some(default) = &s.default
        && !inside_meta
    {
        let default_path = child_path(path, "default");
        let mut pruned = default.clone();
        let mut unknown = Vec::new();
        prune(
            &mut pruned,
            Some(s as &dyn super::PruneSchema),
            &mut String::new(),
            &mut unknown,
        );
        if &pruned != default {
            errs.push(FieldError::invalid(
                &default_path,
                default.clone(),
                "must not have unknown fields",
            ));
        }
        let meta = validate_embedded_tree(&default_path, default, s, false);
        if meta.is_empty() {
            errs.extend(s.validate_schema_at(&default_path, default, false));
        } else {
            errs.extend(meta);
        }
    }
    if let Some(items) = s.items.as_deref() {
        validate_defaults(&child_path(path, "items"), items, inside_meta, errs);
    }
    for (k, p) in &s.properties {
        let sub_meta =
            inside_meta || (s.embedded_resource && super::META_FIELDS.contains(&k.as_str()));
        validate_defaults(&props_key(path, k), p, sub_meta, errs);
    }
}

/// The state upstream's `specStandardValidatorV3` carries down the schema.
#[derive(Clone)]
struct OpenApiContext {
    allow_defaults: bool,
    reason: String,
    inside_meta: bool,
}

impl OpenApiContext {
    fn forbid_defaults(&self, reason: String) -> Self {
        OpenApiContext {
            allow_defaults: false,
            reason,
            ..self.clone()
        }
    }
}

const OPENAPI_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

/// upstream's `ValidateCustomResourceDefinitionOpenAPISchema` (without the CEL rule checks).
fn openapi_schema(
    s: &JSONSchemaProps,
    path: &str,
    ssv: &OpenApiContext,
    is_root: bool,
    errs: &mut ErrorList,
) {
    let type_ = type_of(s);
    let forbid = |errs: &mut ErrorList, field: &str, detail: &str| {
        errs.push(FieldError::forbidden(child_path(path, field), detail));
    };
    if !type_.is_empty() && !OPENAPI_TYPES.contains(&type_) {
        errs.push(FieldError::not_supported(
            child_path(path, "type"),
            type_,
            &OPENAPI_TYPES,
        ));
    }
    if s.default.is_some() && !ssv.allow_defaults {
        let mut detail = "must not be set".to_string();
        if !ssv.reason.is_empty() {
            detail = format!("{detail} {}", ssv.reason);
        }
        forbid(errs, "default", &detail);
    }
    if s.id.as_deref().is_some_and(|id| !id.is_empty()) {
        forbid(errs, "id", "id is not supported");
    }
    if s.additional_items.is_some() {
        forbid(errs, "additionalItems", "additionalItems is not supported");
    }
    if s.pattern_properties.as_ref().is_some_and(|p| !p.is_empty()) {
        forbid(
            errs,
            "patternProperties",
            "patternProperties is not supported",
        );
    }
    if s.definitions.as_ref().is_some_and(|d| !d.is_empty()) {
        forbid(errs, "definitions", "definitions is not supported");
    }
    if s.dependencies.is_some() {
        forbid(errs, "dependencies", "dependencies is not supported");
    }
    if s.ref_path.is_some() {
        forbid(errs, "$ref", "$ref is not supported");
    }
    if type_ == "null" {
        forbid(
            errs,
            "type",
            "type cannot be set to null, use nullable as an alternative",
        );
    }
    if matches!(&s.items, Some(JSONSchemaPropsOrArray::Schemas(v)) if !v.is_empty()) {
        forbid(
            errs,
            "items",
            "items must be a schema object and not an array",
        );
    }
    if ssv.inside_meta && flag(s.x_kubernetes_embedded_resource) {
        forbid(
            errs,
            "x-kubernetes-embedded-resource",
            "must not be used inside of resource meta",
        );
    }
    if flag(s.unique_items) {
        forbid(
            errs,
            "uniqueItems",
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        );
    }

    let has_properties = s.properties.as_ref().is_some_and(|p| !p.is_empty());
    if let Some(ap) = &s.additional_properties {
        if has_properties && !matches!(ap, JSONSchemaPropsOrBool::Bool(true)) {
            forbid(
                errs,
                "additionalProperties",
                "additionalProperties and properties are mutual exclusive",
            );
        }
        let sub = if ssv.inside_meta {
            ssv.forbid_defaults("inside additionalProperties applying to object metadata".into())
        } else {
            ssv.clone()
        };
        if let JSONSchemaPropsOrBool::Schema(ap) = ap {
            openapi_schema(
                ap,
                &child_path(path, "additionalProperties"),
                &sub,
                false,
                errs,
            );
        }
    }
    let embedded = flag(s.x_kubernetes_embedded_resource);
    for (k, p) in properties(s) {
        let mut sub = ssv.clone();
        if (is_root || embedded) && super::META_FIELDS.contains(&k.as_str()) {
            sub.inside_meta = true;
            if is_root {
                sub = sub.forbid_defaults(format!("in top-level {k}"));
            }
        }
        openapi_schema(p, &props_key(path, k), &sub, false, errs);
    }
    if let Some(not) = &s.not {
        openapi_schema(not, &child_path(path, "not"), ssv, false, errs);
    }
    for (name, list) in [
        ("allOf", &s.all_of),
        ("oneOf", &s.one_of),
        ("anyOf", &s.any_of),
    ] {
        for (i, alt) in list.iter().flatten().enumerate() {
            openapi_schema(alt, &format!("{path}.{name}[{i}]"), ssv, false, errs);
        }
    }
    for (k, d) in s.definitions.iter().flatten() {
        openapi_schema(
            d,
            &key(&child_path(path, "definitions"), k),
            ssv,
            false,
            errs,
        );
    }
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(items)) => {
            openapi_schema(items, &child_path(path, "items"), ssv, false, errs);
        }
        Some(JSONSchemaPropsOrArray::Schemas(list)) => {
            for (i, items) in list.iter().enumerate() {
                openapi_schema(items, &format!("{path}.items[{i}]"), ssv, false, errs);
            }
        }
        None => {}
    }
    for (k, d) in s.dependencies.iter().flatten() {
        if let JSONSchemaPropsOrStringArray::Schema(d) = d {
            openapi_schema(
                d,
                &key(&child_path(path, "dependencies"), k),
                ssv,
                false,
                errs,
            );
        }
    }
    extension_rules(s, path, errs);
}

/// The x-kubernetes-preserve-unknown-fields / map-type / list-type / list-map-keys rules.
fn extension_rules(s: &JSONSchemaProps, path: &str, errs: &mut ErrorList) {
    let type_ = type_of(s);
    if s.x_kubernetes_preserve_unknown_fields == Some(false) {
        errs.push(FieldError::invalid(
            child_path(path, "x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    let type_path = child_path(path, "type");
    let mismatch = |errs: &mut ErrorList, detail: &str| {
        errs.push(if type_.is_empty() {
            FieldError::required(&type_path, detail)
        } else {
            FieldError::invalid(&type_path, type_, detail)
        });
    };
    if let Some(map_type) = &s.x_kubernetes_map_type {
        if type_ != "object" {
            mismatch(errs, "must be object if x-kubernetes-map-type is specified");
        }
        if map_type != "atomic" && map_type != "granular" {
            errs.push(FieldError::not_supported(
                child_path(path, "x-kubernetes-map-type"),
                map_type.as_str(),
                &["atomic", "granular"],
            ));
        }
    }
    let list_type = s.x_kubernetes_list_type.as_deref();
    let items = item_schema(s);
    let items_path = child_path(path, "items");
    if list_type.is_some() && type_ != "array" {
        mismatch(errs, "must be array if x-kubernetes-list-type is specified");
    } else if list_type == Some("set")
        && let Some(is) = items
    {
        let detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
        let item_list_type = is.x_kubernetes_list_type.as_deref();
        match type_of(is) {
            "array" if item_list_type.is_some_and(|t| t != "atomic") => {
                errs.push(FieldError::invalid(
                    child_path(&items_path, "x-kubernetes-list-type"),
                    item_list_type.unwrap_or_default(),
                    detail,
                ));
            }
            "object" if is.x_kubernetes_map_type.as_deref() != Some("atomic") => {
                // upstream reports the item's list type here (usually unset, hence null).
                let value = item_list_type.map_or(Value::Null, Value::from);
                errs.push(FieldError::invalid(
                    child_path(&items_path, "x-kubernetes-map-type"),
                    value,
                    detail,
                ));
            }
            _ => {}
        }
    }
    if let Some(lt) = list_type
        && !["atomic", "set", "map"].contains(&lt)
    {
        errs.push(FieldError::not_supported(
            child_path(path, "x-kubernetes-list-type"),
            lt,
            &["atomic", "set", "map"],
        ));
    }
    let map_keys = s.x_kubernetes_list_map_keys.clone().unwrap_or_default();
    let keys_path = child_path(path, "x-kubernetes-list-map-keys");
    if !map_keys.is_empty() {
        let detail = "must be map if x-kubernetes-list-map-keys is non-empty";
        match list_type {
            None => errs.push(FieldError::required(
                child_path(path, "x-kubernetes-list-type"),
                detail,
            )),
            Some(lt) if lt != "map" => errs.push(FieldError::invalid(
                child_path(path, "x-kubernetes-list-type"),
                lt,
                detail,
            )),
            _ => {}
        }
    }
    if list_type == Some("map") {
        if map_keys.is_empty() {
            errs.push(FieldError::required(
                &keys_path,
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match &s.items {
            None => errs.push(FieldError::required(
                &items_path,
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(JSONSchemaPropsOrArray::Schemas(list)) => errs.push(FieldError::invalid(
                &items_path,
                serde_json::to_value(list).unwrap_or(Value::Null),
                "must only have a single schema if x-kubernetes-list-type is map",
            )),
            Some(JSONSchemaPropsOrArray::Schema(is)) if type_of(is) != "object" => {
                errs.push(FieldError::invalid(
                    child_path(&items_path, "type"),
                    type_of(is),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            }
            Some(JSONSchemaPropsOrArray::Schema(is)) => {
                let mut seen: Vec<&str> = Vec::new();
                for k in &map_keys {
                    match is.properties.as_ref().and_then(|p| p.get(k)) {
                        Some(p) if matches!(type_of(p), "array" | "object") => {
                            errs.push(FieldError::invalid(
                                child_path(&props_key(&items_path, k), "type"),
                                type_of(is),
                                "must be a scalar type if parent array's x-kubernetes-list-type is map",
                            ));
                        }
                        Some(_) => {}
                        None => errs.push(FieldError::invalid(
                            &keys_path,
                            map_keys.clone(),
                            "entries must all be names of item properties",
                        )),
                    }
                    if seen.contains(&k.as_str()) {
                        errs.push(FieldError::invalid(
                            &keys_path,
                            map_keys.clone(),
                            "must not contain duplicate entries",
                        ));
                    }
                    seen.push(k);
                }
            }
        }
    }
    // upstream's validateMapListKeysMapSet
    if let (Some(lt @ ("set" | "map")), Some(is)) = (list_type, items) {
        if flag(is.nullable) {
            errs.push(FieldError::forbidden(
                child_path(&items_path, "nullable"),
                format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            let required = is.required.clone().unwrap_or_default();
            for k in &map_keys {
                let Some(p) = is.properties.as_ref().and_then(|p| p.get(k)) else {
                    continue;
                };
                if !required.contains(k) && p.default.is_none() {
                    errs.push(FieldError::required(
                        child_path(&props_key(&items_path, k), "default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if flag(p.nullable) {
                    errs.push(FieldError::forbidden(
                        child_path(&props_key(&items_path, k), "nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::errors::aggregate;
    use serde_json::json;

    const P: &str = "spec.versions[0].schema.openAPIV3Schema";

    /// The rendered errors of `validate_structural` for schema `v`, "" when valid.
    fn check(v: Value) -> String {
        let errs = validate_structural(&serde_json::from_value(v).unwrap(), P);
        if errs.is_empty() {
            String::new()
        } else {
            aggregate(&errs)
        }
    }

    /// A root object schema with the given `spec` schema.
    fn with_spec(spec: Value) -> Value {
        json!({"type": "object", "properties": {"spec": spec}})
    }

    #[test]
    fn a_typical_schema_is_accepted() {
        assert_eq!(
            check(json!({"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "spec": {"type": "object", "required": ["replicas"], "properties": {
                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})),
            ""
        );
    }

    #[test]
    fn specified_fields_and_items_need_a_type() {
        assert_eq!(
            check(with_spec(
                json!({"type": "object", "properties": {"a": {}}})
            )),
            format!(
                "{P}.properties[spec].properties[a].type: Required value: must not be empty for specified object fields"
            )
        );
        assert_eq!(
            check(with_spec(json!({"type": "array", "items": {}}))),
            format!(
                "{P}.properties[spec].items.type: Required value: must not be empty for specified array items"
            )
        );
        assert_eq!(
            check(with_spec(json!({"type": "array"}))),
            format!("{P}.properties[spec].items: Required value: must be specified")
        );
        assert_eq!(
            check(json!({})),
            format!("{P}.type: Required value: must not be empty at the root")
        );
    }

    #[test]
    fn the_root_must_be_an_object_without_additional_properties_or_nullable() {
        assert_eq!(
            check(
                json!({"type": "object", "nullable": true, "additionalProperties": {"type": "string"}})
            ),
            format!(
                "[{P}.nullable: Forbidden: nullable cannot be true at the root, \
                 {P}.additionalProperties: Forbidden: must not be used at the root]"
            )
        );
        assert_eq!(
            check(json!({"type": "string"})),
            format!(r#"{P}.type: Invalid value: "string": must be object at the root"#)
        );
    }

    #[test]
    fn unsupported_json_schema_constructs_are_forbidden() {
        assert_eq!(
            check(with_spec(
                json!({"type": "object", "$ref": "#/x", "id": "x",
                "dependencies": {"a": ["b"]}, "patternProperties": {"^a": {"type": "string"}},
                "definitions": {"d": {"type": "string"}}, "additionalItems": false})
            )),
            format!(
                "[{}]",
                [
                    "id: Forbidden: id is not supported",
                    "additionalItems: Forbidden: additionalItems is not supported",
                    "patternProperties: Forbidden: patternProperties is not supported",
                    "definitions: Forbidden: definitions is not supported",
                    "dependencies: Forbidden: dependencies is not supported",
                    "$ref: Forbidden: $ref is not supported",
                ]
                .map(|e| format!("{P}.properties[spec].{e}"))
                .join(", ")
            )
        );
    }

    #[test]
    fn unique_items_is_forbidden_for_its_quadratic_cost() {
        assert_eq!(
            check(with_spec(
                json!({"type": "array", "uniqueItems": true, "items": {"type": "string"}})
            )),
            format!(
                "{P}.properties[spec].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
            )
        );
    }

    #[test]
    fn properties_and_additional_properties_are_mutually_exclusive() {
        assert_eq!(
            check(with_spec(
                json!({"type": "object", "properties": {"a": {"type": "string"}},
                "additionalProperties": {"type": "string"}})
            )),
            format!(
                "{P}.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
            )
        );
    }

    #[test]
    fn unknown_types_and_null_are_rejected() {
        assert_eq!(
            check(with_spec(json!({"type": "null"}))),
            format!(
                "[{P}.properties[spec].type: Unsupported value: \"null\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\", \
                 {P}.properties[spec].type: Forbidden: type cannot be set to null, use nullable as an alternative]"
            )
        );
    }

    #[test]
    fn preserve_unknown_fields_must_be_true_or_undefined() {
        assert_eq!(
            check(with_spec(
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": false})
            )),
            format!(
                "{P}.properties[spec].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"
            )
        );
    }

    #[test]
    fn int_or_string_excludes_preserve_unknown_fields_and_embedded_resource() {
        assert_eq!(
            check(with_spec(
                json!({"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true})
            )),
            format!(
                "{P}.properties[spec].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true"
            )
        );
    }

    #[test]
    fn embedded_resources_must_be_objects_with_properties_or_preserved_fields() {
        assert_eq!(
            check(with_spec(json!({"x-kubernetes-embedded-resource": true}))),
            format!(
                "[{P}.properties[spec].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields, \
                 {P}.properties[spec].type: Required value: must be object if x-kubernetes-embedded-resource is true]"
            )
        );
    }

    #[test]
    fn value_validations_may_not_specify_types_or_unknown_fields() {
        assert_eq!(
            check(with_spec(
                json!({"type": "object", "properties": {"a": {"type": "string"}},
                "anyOf": [{"type": "object", "description": "d"}, {"properties": {"b": {"maxLength": 1}}}]})
            )),
            format!(
                "[{P}.properties[spec].anyOf[0].description: Forbidden: must be empty to be structural, \
                 {P}.properties[spec].anyOf[0].type: Forbidden: must be empty to be structural]"
            )
        );
        // Completeness is checked for the junctors of the root schema.
        assert_eq!(
            check(
                json!({"type": "object", "properties": {"spec": {"type": "object"}},
                "allOf": [{"properties": {"status": {"maxProperties": 1}}}]})
            ),
            format!(
                "{P}.properties[status]: Required value: because it is defined in {P}.allOf[0].properties[status]"
            )
        );
    }

    #[test]
    fn metadata_at_the_root_may_only_restrict_name_and_generate_name() {
        assert_eq!(
            check(
                json!({"type": "object", "properties": {"metadata": {"type": "object",
                "properties": {"name": {"type": "string", "maxLength": 10}}}}})
            ),
            ""
        );
        assert_eq!(
            check(
                json!({"type": "object", "properties": {"metadata": {"type": "object",
                "properties": {"labels": {"type": "object"}}}}})
            ),
            format!(
                "{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
            )
        );
        assert_eq!(
            check(
                json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}})
            ),
            format!(
                "{P}.properties[metadata].default: Forbidden: must not be set in top-level metadata"
            )
        );
    }

    #[test]
    fn defaults_must_validate_and_be_pruned() {
        assert_eq!(
            check(with_spec(json!({"type": "object", "properties": {
                "replicas": {"type": "integer", "maximum": 10, "default": 20}}}))),
            format!(
                "{P}.properties[spec].properties[replicas].default: Invalid value: 20:  in body should be less than or equal to 10"
            )
        );
        assert_eq!(
            check(with_spec(
                json!({"type": "object", "default": {"a": "1", "b": 2},
                "properties": {"a": {"type": "string"}}})
            )),
            format!(
                r#"{P}.properties[spec].default: Invalid value: {{"a":"1","b":2}}: must not have unknown fields"#
            )
        );
    }

    #[test]
    fn list_type_rules_are_enforced() {
        assert_eq!(
            check(with_spec(
                json!({"type": "object", "x-kubernetes-list-type": "set"})
            )),
            format!(
                r#"{P}.properties[spec].type: Invalid value: "object": must be array if x-kubernetes-list-type is specified"#
            )
        );
        assert_eq!(
            check(with_spec(
                json!({"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}})
            )),
            format!(
                r#"{P}.properties[spec].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map""#
            )
        );
        assert_eq!(
            check(with_spec(
                json!({"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object",
                "properties": {"name": {"type": "string"}}}})
            )),
            format!(
                "{P}.properties[spec].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
            )
        );
        assert_eq!(
            check(with_spec(
                json!({"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object",
                "properties": {"name": {"type": "string"}}}})
            )),
            format!(
                "{P}.properties[spec].items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
            )
        );
        assert_eq!(
            check(with_spec(
                json!({"type": "array", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object"}})
            )),
            format!(
                "{P}.properties[spec].x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"
            )
        );
    }

    #[test]
    fn map_type_rules_are_enforced() {
        assert_eq!(
            check(with_spec(
                json!({"type": "object", "x-kubernetes-map-type": "loose"})
            )),
            format!(
                r#"{P}.properties[spec].x-kubernetes-map-type: Unsupported value: "loose": supported values: "atomic", "granular""#
            )
        );
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        assert_eq!(
            check(with_spec(json!({"type": "string", "pattern": "(a"}))),
            format!(
                "{P}.properties[spec].pattern: Invalid value: \"(a\": must be a valid regular expression, but isn't: error parsing regexp: missing closing ): `(a`"
            )
        );
    }
}
