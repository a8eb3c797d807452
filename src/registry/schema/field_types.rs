//! The structured-merge field types of the built-in kinds, for server-side apply and
//! managedFields: derived once from the same OpenAPI definitions and patch metadata as the
//! strategic merge graph.
//!
//! Upstream reads `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
//! `x-kubernetes-map-type` from its OpenAPI; k8s-openapi drops them, so they come from
//! [`super::tags`].

use super::schemas::{Gvk, Schemas};
use super::tags::{self, ATOMIC_MAPS, ATOMIC_STRUCTS};
use crate::registry::managed_fields::{Field, ListType, Node, Schema, TypeId, TypeRef};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

struct Builder<'a> {
    schema: Schema,
    definitions: &'a serde_json::Map<String, Value>,
    ids: HashMap<&'a str, TypeId>,
}

impl<'a> Builder<'a> {
    fn definition(&mut self, name: &'a str) -> TypeId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let Some(def) = self.definitions.get(name) else {
            return Schema::LEAF;
        };
        let Some(properties) = def.get("properties").and_then(Value::as_object) else {
            // IntOrString, Quantity, Time, RawExtension: scalars or opaque values.
            self.ids.insert(name, Schema::LEAF);
            return Schema::LEAF;
        };
        if ATOMIC_STRUCTS.contains(&name) {
            self.ids.insert(name, Schema::LEAF);
            return Schema::LEAF;
        }
        // Registered before its fields, so that recursive types (JSONSchemaProps) terminate.
        let id = self.schema.add(Node::Leaf);
        self.ids.insert(name, id);
        // Required fields have no omitempty in Go: upstream's objects always carry them.
        let required: Vec<&str> = def
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = HashMap::with_capacity(properties.len());
        for (field, property) in properties {
            let ty = self.property(name, field, property);
            let always_present = required.contains(&field.as_str());
            fields.insert(field.clone(), Field { ty, always_present });
        }
        self.schema.set(id, Node::Struct(fields));
        id
    }

    fn property(&mut self, definition: &'a str, field: &str, property: &'a Value) -> TypeId {
        if type_of(property) == "array" {
            let items = property
                .get("items")
                .map(|i| self.shape(i))
                .unwrap_or(Schema::LEAF);
            let list = tags::list_type(definition, field);
            return self.schema.add(Node::List(items, list));
        }
        if ATOMIC_MAPS.contains(&(definition, field)) {
            return Schema::LEAF;
        }
        self.shape(property)
    }

    fn shape(&mut self, schema: &'a Value) -> TypeId {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or(reference);
            return self.definition(name);
        }
        if let Some(first) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|all| all.first())
        {
            return self.shape(first);
        }
        match type_of(schema) {
            "array" => {
                let items = schema
                    .get("items")
                    .map(|i| self.shape(i))
                    .unwrap_or(Schema::LEAF);
                self.schema.add(Node::List(items, ListType::Atomic))
            }
            "object" => match schema.get("additionalProperties") {
                Some(inner @ Value::Object(_)) => {
                    let values = self.shape(inner);
                    self.schema.add(Node::Map(values))
                }
                _ => Schema::LEAF,
            },
            _ => Schema::LEAF,
        }
    }
}

/// The JSON type a schema names, ignoring `null` in a list of types.
fn type_of(schema: &Value) -> &str {
    match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or(""),
        _ => "",
    }
}

/// The field types of a set of schemas: one type graph, and the root of each kind in it.
pub(super) struct FieldTypes {
    schema: Arc<Schema>,
    kinds: HashMap<Gvk, TypeId>,
}

impl FieldTypes {
    /// The field types of the kinds of `schemas`.
    pub(super) fn of(schemas: &Schemas) -> Self {
        let mut b = Builder {
            schema: Schema::new(),
            definitions: &schemas.definitions,
            ids: HashMap::new(),
        };
        let mut kinds = HashMap::new();
        for (gvk, definition) in &schemas.kinds {
            kinds.insert(*gvk, b.definition(definition));
        }
        FieldTypes {
            schema: Arc::new(b.schema),
            kinds,
        }
    }

    /// The field types of a kind, or `None` for kinds not in the set.
    pub(super) fn for_kind(&self, group: &str, version: &str, kind: &str) -> Option<TypeRef> {
        let root = *self.kinds.get(&(group, version, kind))?;
        Some(TypeRef::new(self.schema.clone(), root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_types_for_kind(group: &str, version: &str, kind: &str) -> Option<TypeRef> {
        super::super::schemas::tests::schemas().field_types_for_kind(group, version, kind)
    }
    use crate::registry::managed_fields::{Operation, Scope, Writer, record_update};
    use serde_json::json;

    fn created_fields(group: &str, version: &str, kind: &str, obj: Value) -> Value {
        let writer = Writer {
            manager: "m".into(),
            operation: Operation::Update,
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            subresource: String::new(),
            types: field_types_for_kind(group, version, kind).unwrap(),
        };
        let mut obj = obj;
        record_update(
            None,
            &mut obj,
            &writer,
            Scope::Main { has_status: true },
            "t",
        );
        obj["metadata"]["managedFields"][0]["fieldsV1"].clone()
    }

    #[test]
    fn containers_are_keyed_by_name_ports_by_port_and_protocol_and_selectors_are_atomic() {
        let fields = created_fields(
            "apps",
            "v1",
            "Deployment",
            json!({"metadata": {"name": "d"}, "spec": {
                "selector": {"matchLabels": {"app": "a"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}}
            }, "status": {"replicas": 1}}),
        );
        assert_eq!(
            fields,
            json!({"f:spec": {
                "f:selector": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                    ".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                }}}}
            }})
        );
    }

    #[test]
    fn finalizers_are_a_set_and_labels_a_granular_map() {
        let fields = created_fields(
            "",
            "v1",
            "ConfigMap",
            json!({"metadata": {"name": "c", "labels": {"a": "b"}, "finalizers": ["x"]}, "data": {"k": "v"}}),
        );
        assert_eq!(
            fields,
            json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {
                "f:finalizers": {".": {}, "v:\"x\"": {}},
                "f:labels": {".": {}, "f:a": {}}
            }})
        );
    }
}
