//! Structural schemas for CustomResourceDefinitions, as upstream's
//! `apiextensions-apiserver/pkg/apiserver/schema`: a CRD version's `openAPIV3Schema` compiled once
//! into a [`Structural`] that prunes, defaults and validates custom objects, and
//! [`validate_structural`], the checks a schema must pass before a CRD is accepted.
//!
//! CEL (`x-kubernetes-validations`) is not handled here.

mod formats;
mod structural;
mod validate;

pub use structural::validate_structural;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;

/// A structural schema compiled from a CRD version's openAPIV3Schema.
#[derive(Clone, Debug, Default)]
pub struct Structural {
    type_: String,
    nullable: bool,
    /// The format if upstream's validator knows it, else "" (upstream strips unknown formats).
    format: String,
    int_or_string: bool,
    preserve_unknown_fields: bool,
    embedded_resource: bool,
    list_type: Option<String>,
    list_map_keys: Vec<String>,
    map_type: Option<String>,
    default: Option<Value>,
    properties: BTreeMap<String, Structural>,
    additional_properties: Option<AdditionalProperties>,
    items: Option<Box<Structural>>,
    value: Box<ValueValidation>,
}

/// `additionalProperties`: a boolean or a schema.
#[derive(Clone, Debug)]
enum AdditionalProperties {
    Allows(bool),
    Schema(Box<Structural>),
}

/// The value validations of a schema node (those that never change the shape of an object).
#[derive(Clone, Debug, Default)]
struct ValueValidation {
    maximum: Option<f64>,
    exclusive_maximum: bool,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    multiple_of: Option<f64>,
    max_length: Option<i64>,
    min_length: Option<i64>,
    /// The pattern as written and its compiled form (an error text when it does not compile).
    pattern: Option<(String, Result<Regex, String>)>,
    max_items: Option<i64>,
    min_items: Option<i64>,
    unique_items: bool,
    max_properties: Option<i64>,
    min_properties: Option<i64>,
    required: Vec<String>,
    enum_: Option<Vec<Value>>,
    all_of: Vec<Structural>,
    any_of: Vec<Structural>,
    one_of: Vec<Structural>,
    not: Option<Box<Structural>>,
}

impl Structural {
    /// Compiles `props` (which should have passed [`validate_structural`]); patterns are compiled here once.
    pub fn new(props: &JSONSchemaProps) -> Structural {
        let format = props.format.clone().unwrap_or_default();
        let format = if formats::is_supported(&format) {
            format
        } else {
            String::new()
        };
        let pattern = props.pattern.as_ref().filter(|p| !p.is_empty()).map(|p| {
            let compiled = formats::compile_pattern(p);
            (p.clone(), compiled)
        });
        let all = |v: &Option<Vec<JSONSchemaProps>>| {
            v.iter().flatten().map(Structural::new).collect::<Vec<_>>()
        };
        let value = ValueValidation {
            maximum: props.maximum,
            exclusive_maximum: props.exclusive_maximum.unwrap_or(false),
            minimum: props.minimum,
            exclusive_minimum: props.exclusive_minimum.unwrap_or(false),
            multiple_of: props.multiple_of,
            max_length: props.max_length,
            min_length: props.min_length,
            pattern,
            max_items: props.max_items,
            min_items: props.min_items,
            unique_items: props.unique_items.unwrap_or(false),
            max_properties: props.max_properties,
            min_properties: props.min_properties,
            required: props.required.clone().unwrap_or_default(),
            enum_: props
                .enum_
                .as_ref()
                .map(|e| e.iter().map(|j| j.0.clone()).collect()),
            all_of: all(&props.all_of),
            any_of: all(&props.any_of),
            one_of: all(&props.one_of),
            not: props.not.as_ref().map(|n| Box::new(Structural::new(n))),
        };
        Structural {
            type_: props.type_.clone().unwrap_or_default(),
            nullable: props.nullable.unwrap_or(false),
            format,
            int_or_string: props.x_kubernetes_int_or_string.unwrap_or(false),
            preserve_unknown_fields: props.x_kubernetes_preserve_unknown_fields.unwrap_or(false),
            embedded_resource: props.x_kubernetes_embedded_resource.unwrap_or(false),
            list_type: props.x_kubernetes_list_type.clone(),
            list_map_keys: props.x_kubernetes_list_map_keys.clone().unwrap_or_default(),
            map_type: props.x_kubernetes_map_type.clone(),
            default: props.default.as_ref().map(|d| d.0.clone()),
            properties: props
                .properties
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Structural::new(v)))
                .collect(),
            additional_properties: props.additional_properties.as_ref().map(|a| match a {
                JSONSchemaPropsOrBool::Bool(b) => AdditionalProperties::Allows(*b),
                JSONSchemaPropsOrBool::Schema(s) => {
                    AdditionalProperties::Schema(Box::new(Structural::new(s)))
                }
            }),
            items: match &props.items {
                Some(JSONSchemaPropsOrArray::Schema(s)) => Some(Box::new(Structural::new(s))),
                // A list of item schemas is rejected by validate_structural; take the first.
                Some(JSONSchemaPropsOrArray::Schemas(v)) => {
                    v.first().map(|s| Box::new(Structural::new(s)))
                }
                None => None,
            },
            value: Box::new(value),
        }
    }

    /// The schema of property `field`, or of additionalProperties when `field` is not a property.
    pub fn child(&self, field: &str) -> Option<&Structural> {
        self.properties
            .get(field)
            .or_else(|| self.additional_schema())
    }

    /// The schema of array items.
    pub fn items(&self) -> Option<&Structural> {
        self.items.as_deref()
    }

    /// The declared type: "object", "array", "string", "integer", "number", "boolean" or "".
    pub fn type_name(&self) -> &str {
        &self.type_
    }

    /// `x-kubernetes-list-type`: "atomic", "set" or "map".
    pub fn list_type(&self) -> Option<&str> {
        self.list_type.as_deref()
    }

    /// `x-kubernetes-list-map-keys`.
    pub fn list_map_keys(&self) -> &[String] {
        &self.list_map_keys
    }

    /// `x-kubernetes-map-type`: "atomic" or "granular".
    pub fn map_type(&self) -> Option<&str> {
        self.map_type.as_deref()
    }

    /// `x-kubernetes-int-or-string`.
    pub fn is_int_or_string(&self) -> bool {
        self.int_or_string
    }

    /// `x-kubernetes-preserve-unknown-fields`.
    pub fn preserves_unknown_fields(&self) -> bool {
        self.preserve_unknown_fields
    }

    /// `x-kubernetes-embedded-resource`.
    pub fn is_embedded_resource(&self) -> bool {
        self.embedded_resource
    }

    /// The `default` value, if any.
    pub fn default_value(&self) -> Option<&Value> {
        self.default.as_ref()
    }

    fn additional_schema(&self) -> Option<&Structural> {
        match &self.additional_properties {
            Some(AdditionalProperties::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// Removes fields the schema does not specify, as upstream's pruning; returns the removed paths
    /// (e.g. "spec.foo", sorted) for fieldValidation=Strict/Warn ("unknown field \"spec.foo\"").
    /// At the root, apiVersion/kind/metadata are kept; metadata is left to the caller;
    /// x-kubernetes-preserve-unknown-fields keeps unknowns below it; x-kubernetes-embedded-resource
    /// keeps apiVersion/kind/metadata of the embedded object. Like upstream's decoder it then drops
    /// `null`s of non-nullable fields that have no default.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let root = RootView {
            s: self,
            embedded_resource: true,
        };
        let mut pruned = Vec::new();
        let mut path = String::new();
        prune(obj, Some(&root), &mut path, &mut pruned);
        prune_nulls(obj, Some(self), true);
        pruned.sort();
        pruned
    }

    /// Applies `default`s as upstream (defaults of properties of present objects, recursively;
    /// items of arrays; additionalProperties; non-nullable nulls with a default are replaced),
    /// so it can run on create, update and on read. Metadata at the root is left alone.
    pub fn apply_defaults(&self, obj: &mut Value) {
        if let Value::Object(map) = obj {
            for (k, prop) in &self.properties {
                if k == "metadata" {
                    continue;
                }
                default_property(map, k, prop);
            }
            for (k, v) in map.iter_mut() {
                if k == "metadata" {
                    continue;
                }
                default_child(self, k, v);
            }
        }
    }
}

/// The root schema seen with `x-kubernetes-embedded-resource` forced on (upstream clones the root
/// with that flag so apiVersion/kind/metadata survive pruning).
struct RootView<'a> {
    s: &'a Structural,
    embedded_resource: bool,
}

/// A schema node as pruning sees it.
trait PruneSchema {
    fn preserve(&self) -> bool;
    fn embedded(&self) -> bool;
    fn node(&self) -> &Structural;
}

impl PruneSchema for Structural {
    fn preserve(&self) -> bool {
        self.preserve_unknown_fields
    }
    fn embedded(&self) -> bool {
        self.embedded_resource
    }
    fn node(&self) -> &Structural {
        self
    }
}

impl PruneSchema for RootView<'_> {
    fn preserve(&self) -> bool {
        self.s.preserve_unknown_fields
    }
    fn embedded(&self) -> bool {
        self.embedded_resource
    }
    fn node(&self) -> &Structural {
        self.s
    }
}

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn push_key(path: &mut String, key: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
    len
}

fn push_index(path: &mut String, i: usize) -> usize {
    let len = path.len();
    path.push_str(&format!("[{i}]"));
    len
}

fn prune(x: &mut Value, s: Option<&dyn PruneSchema>, path: &mut String, pruned: &mut Vec<String>) {
    if let Some(s) = s
        && s.preserve()
    {
        skip_prune(x, s, path, pruned);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                for k in std::mem::take(map).keys() {
                    let len = push_key(path, k);
                    pruned.push(path.clone());
                    path.truncate(len);
                }
                return;
            };
            let node = s.node();
            let mut remove = Vec::new();
            for (k, v) in map.iter_mut() {
                if s.embedded() && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let len = push_key(path, k);
                if let Some(prop) = node.properties.get(k) {
                    prune(v, Some(prop), path, pruned);
                } else if let Some(ap) = &node.additional_properties {
                    let sub = match ap {
                        AdditionalProperties::Schema(s) => Some(s.as_ref() as &dyn PruneSchema),
                        AdditionalProperties::Allows(_) => None,
                    };
                    prune(v, sub, path, pruned);
                } else {
                    pruned.push(path.clone());
                    remove.push(k.clone());
                }
                path.truncate(len);
            }
            for k in remove {
                map.remove(&k);
            }
        }
        Value::Array(items) => {
            let sub = s.and_then(|s| s.node().items.as_deref());
            for (i, v) in items.iter_mut().enumerate() {
                let len = push_index(path, i);
                prune(v, sub.map(|s| s as &dyn PruneSchema), path, pruned);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn skip_prune(x: &mut Value, s: &dyn PruneSchema, path: &mut String, pruned: &mut Vec<String>) {
    let node = s.node();
    match x {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if s.embedded() && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let len = push_key(path, k);
                if let Some(prop) = node.properties.get(k) {
                    prune(v, Some(prop), path, pruned);
                } else if let Some(ap) = &node.additional_properties {
                    let sub = match ap {
                        AdditionalProperties::Schema(s) => Some(s.as_ref() as &dyn PruneSchema),
                        AdditionalProperties::Allows(_) => None,
                    };
                    prune(v, sub, path, pruned);
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = node.items.as_deref() {
                for (i, v) in items.iter_mut().enumerate() {
                    let len = push_index(path, i);
                    skip_prune(v, item_schema, path, pruned);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// Upstream's `PruneNonNullableNullsWithoutDefaults`: drops `null` values of non-nullable fields
/// without a default (those with a default are defaulted later).
fn prune_nulls(x: &mut Value, s: Option<&Structural>, root: bool) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                if root && k == "metadata" {
                    return true;
                }
                let schema = s.and_then(|s| s.child(k));
                if v.is_null()
                    && let Some(schema) = schema
                    && !schema.nullable
                    && schema.default.is_none()
                {
                    return false;
                }
                prune_nulls(v, schema, false);
                true
            });
        }
        Value::Array(items) => {
            let schema = s.and_then(|s| s.items.as_deref());
            for v in items {
                prune_nulls(v, schema, false);
            }
        }
        _ => {}
    }
}

fn is_non_nullable_null(x: &Value, s: &Structural) -> bool {
    x.is_null() && !s.nullable
}

/// Sets property `k` of `map` to its default when absent (or a non-nullable null).
fn default_property(map: &mut serde_json::Map<String, Value>, k: &str, prop: &Structural) {
    let Some(d) = &prop.default else { return };
    match map.get(k) {
        Some(v) if !is_non_nullable_null(v, prop) => {}
        _ => {
            map.insert(k.to_string(), d.clone());
        }
    }
}

/// Recurses defaulting into value `v` of key `k` of an object with schema `s`.
fn default_child(s: &Structural, k: &str, v: &mut Value) {
    if let Some(prop) = s.properties.get(k) {
        default_value(v, prop);
    } else if let Some(ap) = s.additional_schema() {
        if is_non_nullable_null(v, ap)
            && let Some(d) = &ap.default
        {
            *v = d.clone();
        }
        default_value(v, ap);
    }
}

/// Upstream's defaulting algorithm (`defaulting.Default`).
fn default_value(x: &mut Value, s: &Structural) {
    match x {
        Value::Object(map) => {
            for (k, prop) in &s.properties {
                default_property(map, k, prop);
            }
            for (k, v) in map.iter_mut() {
                default_child(s, k, v);
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = s.items.as_deref() else {
                return;
            };
            for v in items {
                if is_non_nullable_null(v, item_schema)
                    && let Some(d) = &item_schema.default
                {
                    *v = d.clone();
                }
                default_value(v, item_schema);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Structural {
        Structural::new(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn pruning_removes_unknown_nested_fields_and_reports_their_paths() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "a": {"type": "string"},
            "inner": {"type": "object", "properties": {"b": {"type": "integer"}}}}}}}),
        );
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
            "spec": {"a": "1", "foo": true, "inner": {"b": 2, "c": 3}}, "extra": {}});
        let pruned = s.prune(&mut obj);
        assert_eq!(pruned, vec!["extra", "spec.foo", "spec.inner.c"]);
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
            "spec": {"a": "1", "inner": {"b": 2}}})
        );
    }

    #[test]
    fn pruning_walks_arrays_of_objects_with_indexed_paths() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}}}}}}),
        );
        let mut obj = json!({"spec": {"ports": [{"port": 1}, {"port": 2, "name": "x"}]}});
        assert_eq!(s.prune(&mut obj), vec!["spec.ports[1].name"]);
        assert_eq!(obj, json!({"spec": {"ports": [{"port": 1}, {"port": 2}]}}));
    }

    #[test]
    fn preserve_unknown_fields_keeps_unknowns_but_prunes_specified_children() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true, "properties": {
                "known": {"type": "object", "properties": {"a": {"type": "string"}}}}}}}),
        );
        let mut obj = json!({"spec": {"free": {"x": 1}, "known": {"a": "1", "b": 2}}});
        assert_eq!(s.prune(&mut obj), vec!["spec.known.b"]);
        assert_eq!(
            obj,
            json!({"spec": {"free": {"x": 1}, "known": {"a": "1"}}})
        );
    }

    #[test]
    fn embedded_resources_keep_type_and_object_meta() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object"}}}}}}}),
        );
        let mut obj = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"}, "spec": {"x": 1}, "status": {}}}});
        assert_eq!(
            s.prune(&mut obj),
            vec!["spec.template.spec.x", "spec.template.status"]
        );
        assert_eq!(
            obj,
            json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"}, "spec": {}}}})
        );
    }

    #[test]
    fn additional_properties_keep_keys_and_prune_their_values() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}}}}}),
        );
        let mut obj = json!({"spec": {"k1": {"a": "x", "b": "y"}}});
        assert_eq!(s.prune(&mut obj), vec!["spec.k1.b"]);
        assert_eq!(obj, json!({"spec": {"k1": {"a": "x"}}}));
    }

    #[test]
    fn pruning_drops_nulls_of_non_nullable_fields_without_default() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string", "nullable": true},
            "c": {"type": "string", "default": "d"}}}}}),
        );
        let mut obj = json!({"spec": {"a": null, "b": null, "c": null}});
        assert!(s.prune(&mut obj).is_empty());
        assert_eq!(obj, json!({"spec": {"b": null, "c": null}}));
        s.apply_defaults(&mut obj);
        assert_eq!(obj, json!({"spec": {"b": null, "c": "d"}}));
    }

    #[test]
    fn defaults_apply_to_nested_objects_that_are_present() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "default": 1},
            "strategy": {"type": "object", "default": {}, "properties": {
                "type": {"type": "string", "default": "Rolling"}}},
            "absent": {"type": "object", "properties": {"x": {"type": "string", "default": "y"}}}}}}}),
        );
        let mut obj = json!({"spec": {}});
        s.apply_defaults(&mut obj);
        // A defaulted object is itself defaulted; an absent object without default stays absent.
        assert_eq!(
            obj,
            json!({"spec": {"replicas": 1, "strategy": {"type": "Rolling"}}})
        );
        let mut obj = json!({"spec": {"replicas": 5}});
        s.apply_defaults(&mut obj);
        assert_eq!(obj["spec"]["replicas"], 5);
    }

    #[test]
    fn defaults_do_not_create_a_missing_parent() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "default": 1}}}}}),
        );
        let mut obj = json!({"metadata": {"name": "x"}});
        s.apply_defaults(&mut obj);
        assert_eq!(obj, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn defaults_apply_inside_array_items_and_additional_properties() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "protocol": {"type": "string", "default": "TCP"}}}},
            "limits": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "max": {"type": "integer", "default": 10}}}}}}}}),
        );
        let mut obj =
            json!({"spec": {"ports": [{"port": 1}, {"protocol": "UDP"}], "limits": {"cpu": {}}}});
        s.apply_defaults(&mut obj);
        assert_eq!(
            obj,
            json!({"spec": {"ports": [{"port": 1, "protocol": "TCP"}, {"protocol": "UDP"}],
            "limits": {"cpu": {"max": 10}}}})
        );
    }

    #[test]
    fn accessors_walk_the_schema() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "x-kubernetes-map-type": "atomic"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}),
        );
        let ports = s.child("spec").and_then(|s| s.child("ports")).unwrap();
        assert_eq!(ports.type_name(), "array");
        assert_eq!(ports.list_type(), Some("map"));
        assert_eq!(ports.list_map_keys(), ["name".to_string()]);
        assert_eq!(ports.items().and_then(|i| i.map_type()), Some("atomic"));
        assert_eq!(
            s.child("labels")
                .and_then(|l| l.child("anything"))
                .map(|v| v.type_name()),
            Some("string")
        );
        assert!(s.child("nope").is_none());
    }

    #[test]
    fn structural_is_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug>() {}
        assert_traits::<Structural>();
    }
}
