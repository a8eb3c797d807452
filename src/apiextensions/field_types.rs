//! The field types server-side apply merges custom objects by, from the CRD's structural schema:
//! `x-kubernetes-list-type` / `x-kubernetes-list-map-keys` / `x-kubernetes-map-type` as
//! upstream's CRD type converter reads them (lists atomic unless marked, objects granular).

use crate::registry::managed_fields::{Field, ListType, Node, Schema, TypeId, TypeRef};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The type of objects described by `props` (the root of a CRD version's schema).
pub fn type_ref(props: &JSONSchemaProps) -> TypeRef {
    let mut schema = Schema::new();
    let root = add(&mut schema, props, true);
    TypeRef::new(Arc::new(schema), root)
}

fn items(props: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match props.items.as_ref()? {
        JSONSchemaPropsOrArray::Schema(s) => Some(s),
        JSONSchemaPropsOrArray::Schemas(list) => list.first(),
    }
}

fn add(schema: &mut Schema, props: &JSONSchemaProps, root: bool) -> TypeId {
    if props.x_kubernetes_int_or_string == Some(true) {
        return Schema::LEAF;
    }
    match props.type_.as_deref() {
        Some("array") => {
            let item = items(props).map_or(Schema::UNTYPED, |i| add(schema, i, false));
            let list_type = match props.x_kubernetes_list_type.as_deref() {
                Some("set") => ListType::Set,
                Some("map") => ListType::Map(
                    props
                        .x_kubernetes_list_map_keys
                        .iter()
                        .flatten()
                        .map(|k| {
                            let default = items(props)
                                .and_then(|i| i.properties.as_ref())
                                .and_then(|p| p.get(k))
                                .and_then(|p| p.default.as_ref())
                                .map(|d| d.0.clone());
                            (k.clone(), default)
                        })
                        .collect(),
                ),
                _ => ListType::Atomic,
            };
            schema.add(Node::List(item, list_type))
        }
        Some("object") if props.x_kubernetes_map_type.as_deref() == Some("atomic") => Schema::LEAF,
        Some("object") | None => {
            if let Some(JSONSchemaPropsOrBool::Schema(value)) = &props.additional_properties {
                let value = add(schema, value, false);
                return schema.add(Node::Map(value));
            }
            let Some(properties) = props.properties.as_ref().filter(|p| !p.is_empty()) else {
                // No declared fields: unknown content (preserve-unknown-fields or none).
                return Schema::UNTYPED;
            };
            let mut fields: HashMap<String, Field> = properties
                .iter()
                .map(|(name, p)| {
                    let ty = add(schema, p, false);
                    (
                        name.clone(),
                        Field {
                            ty,
                            always_present: false,
                        },
                    )
                })
                .collect();
            if root || props.x_kubernetes_embedded_resource == Some(true) {
                // metadata is an ObjectMeta whatever the schema says: labels and annotations
                // merge key by key.
                fields.insert(
                    "metadata".into(),
                    Field {
                        ty: Schema::UNTYPED,
                        always_present: false,
                    },
                );
            }
            schema.add(Node::Struct(fields))
        }
        _ => Schema::LEAF,
    }
}
