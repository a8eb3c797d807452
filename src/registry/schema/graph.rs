//! The field → type graph of the built-in API types, which tells the strategic merge engine
//! where it is inside an object and which patch strategy each field has.
//!
//! The graph is derived at first use from k8s-openapi's `schemars` impls: they carry the
//! OpenAPI definition names (`io.k8s.api.core.v1.PodSpec`) and every `$ref`, which is all the
//! engine needs, and cost one dependency (schemars without its derive macros) instead of a
//! build script that would have to find and parse k8s-openapi's generated source.

use super::patch_meta;
use super::schemas::Schemas;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The shape of a value in the graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// A string, number, boolean, or a type the graph knows nothing about.
    Scalar,
    /// An object of a named definition.
    Object(String),
    /// A list of values of the inner shape.
    List(Box<Shape>),
    /// A map with arbitrary keys and values of the inner shape.
    Map(Box<Shape>),
}

/// The patch metadata of one field, parsed from `x-kubernetes-patch-strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FieldMeta<'a> {
    /// `patchStrategy` contains `merge`.
    pub merge: bool,
    /// `patchStrategy` contains `replace`.
    pub replace: bool,
    /// `patchMergeKey`, for lists of objects merged by key.
    pub merge_key: Option<&'a str>,
}

impl<'a> FieldMeta<'a> {
    /// Parses an upstream strategy string such as `merge,retainKeys`.
    pub(crate) fn parse(strategy: &str, merge_key: Option<&'a str>) -> Self {
        // retainKeys only matters to patch generation; applying reads `$retainKeys` from the patch.
        let mut meta = FieldMeta {
            merge_key,
            ..Default::default()
        };
        for part in strategy.split(',') {
            match part.trim() {
                "merge" => meta.merge = true,
                "replace" => meta.replace = true,
                _ => {}
            }
        }
        meta
    }
}

#[derive(Debug)]
struct Field {
    shape: Shape,
    strategy: Option<String>,
    merge_key: Option<String>,
}

/// A set of definitions with their fields' shapes and patch metadata.
#[derive(Debug, Default)]
pub struct Graph {
    definitions: HashMap<String, HashMap<String, Field>>,
    kinds: HashMap<(String, String, String), String>,
}

impl Graph {
    /// Builds a graph from JSON-schema definitions (`properties` with `$ref`, `items`,
    /// `additionalProperties`) and a lookup of the patch metadata of `(definition, field)`.
    pub fn from_definitions(
        definitions: &Map<String, Value>,
        meta: impl Fn(&str, &str) -> Option<(String, Option<String>)>,
    ) -> Self {
        let mut graph = Graph::default();
        for (name, schema) in definitions {
            let mut fields = HashMap::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (field, property) in properties {
                    let (strategy, merge_key) = match meta(name, field) {
                        Some((s, k)) => (Some(s), k),
                        None => (None, None),
                    };
                    let shape = shape_of(property);
                    fields.insert(
                        field.clone(),
                        Field {
                            shape,
                            strategy,
                            merge_key,
                        },
                    );
                }
            }
            graph.definitions.insert(name.clone(), fields);
        }
        graph
    }

    /// The graph of `schemas`, with the built-in types' patch metadata and kinds.
    pub(super) fn of(schemas: &Schemas) -> Self {
        let mut graph = Graph::from_definitions(&schemas.definitions, |d, f| {
            patch_meta::patch_meta(d, f).map(|(s, k)| (s.to_string(), k.map(str::to_string)))
        });
        for ((group, version, kind), definition) in &schemas.kinds {
            graph.kinds.insert(
                (group.to_string(), version.to_string(), kind.to_string()),
                definition.clone(),
            );
        }
        graph
    }

    /// The root of the kind `group`/`version`/`kind`, if the graph has it.
    pub(super) fn kind_root(
        &'static self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<SchemaRef> {
        let definition =
            self.kinds
                .get(&(group.to_string(), version.to_string(), kind.to_string()))?;
        self.root(definition)
    }

    /// The root of `definition` in this graph, if the graph has it.
    pub fn root(&'static self, definition: &str) -> Option<SchemaRef> {
        let (name, _) = self.definitions.get_key_value(definition)?;
        Some(SchemaRef {
            graph: self,
            definition: name,
        })
    }
}

fn shape_of(schema: &Value) -> Shape {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        // References look like `#/$defs/io.k8s.api.core.v1.PodSpec`; names contain no '/'.
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return Shape::Object(name.to_string());
    }
    if let Some(first) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|all| all.first())
    {
        return shape_of(first);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => Shape::List(Box::new(
            schema.get("items").map(shape_of).unwrap_or(Shape::Scalar),
        )),
        Some("object") => match schema.get("additionalProperties") {
            Some(inner @ Value::Object(_)) => Shape::Map(Box::new(shape_of(inner))),
            _ => Shape::Scalar,
        },
        _ => Shape::Scalar,
    }
}

/// A handle on a type of the graph: the root of a kind, passed to `apply_patch`.
#[derive(Debug, Clone, Copy)]
pub struct SchemaRef {
    graph: &'static Graph,
    definition: &'static str,
}

impl SchemaRef {
    /// The OpenAPI definition name of this type, e.g. `io.k8s.api.core.v1.Pod`.
    pub fn definition(&self) -> &'static str {
        self.definition
    }

    pub(crate) fn ty(&self) -> Ty {
        Ty {
            graph: self.graph,
            shape: TyShape::Definition(self.definition),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum TyShape {
    Definition(&'static str),
    Shape(&'static Shape),
}

/// A position in the graph while walking an object: the type of the value at hand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ty {
    graph: &'static Graph,
    shape: TyShape,
}

impl Ty {
    fn resolved(&self) -> Option<&'static Shape> {
        match self.shape {
            TyShape::Shape(shape) => Some(shape),
            TyShape::Definition(_) => None,
        }
    }

    fn at(&self, shape: &'static Shape) -> Ty {
        Ty {
            graph: self.graph,
            shape: TyShape::Shape(shape),
        }
    }

    /// The type of `field` of this object and its patch metadata; `None` when unknown, which
    /// makes the engine fall back to merging maps and replacing lists, as for any untyped value.
    pub(crate) fn field(&self, field: &str) -> (Option<Ty>, FieldMeta<'static>) {
        let definition = match (self.shape, self.resolved()) {
            (TyShape::Definition(name), _) => name,
            (_, Some(Shape::Object(name))) => name.as_str(),
            // Values of a map[string]T all have type T, as upstream's LookupPatchMetadata says.
            (_, Some(Shape::Map(inner))) => return (Some(self.at(inner)), FieldMeta::default()),
            _ => return (None, FieldMeta::default()),
        };
        let Some(found) = self
            .graph
            .definitions
            .get(definition)
            .and_then(|fields| fields.get(field))
        else {
            return (None, FieldMeta::default());
        };
        let meta = match &found.strategy {
            Some(strategy) => FieldMeta::parse(strategy, found.merge_key.as_deref()),
            None => FieldMeta::default(),
        };
        (Some(self.at(&found.shape)), meta)
    }

    /// The type of the elements of this list.
    pub(crate) fn element(&self) -> Option<Ty> {
        match self.resolved() {
            Some(Shape::List(inner)) => Some(self.at(inner)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_for_kind(group: &str, version: &str, kind: &str) -> Option<SchemaRef> {
        super::super::schemas::tests::schemas().schema_for_kind(group, version, kind)
    }

    #[test]
    fn pod_spec_containers_are_merged_by_name_and_their_env_by_name() {
        let pod = schema_for_kind("", "v1", "Pod").expect("Pod is built in");
        assert_eq!(pod.definition(), "io.k8s.api.core.v1.Pod");
        let (spec, _) = pod.ty().field("spec");
        let (containers, meta) = spec.unwrap().field("containers");
        assert!(meta.merge);
        assert_eq!(meta.merge_key, Some("name"));
        let (_, env) = containers.unwrap().element().unwrap().field("env");
        assert_eq!(env.merge_key, Some("name"));
    }

    #[test]
    fn deployment_template_reaches_the_pod_spec_through_nested_references() {
        let deployment = schema_for_kind("apps", "v1", "Deployment").unwrap();
        let (spec, _) = deployment.ty().field("spec");
        let (template, _) = spec.unwrap().field("template");
        let (pod_spec, _) = template.unwrap().field("spec");
        let (_, volumes) = pod_spec.unwrap().field("volumes");
        assert!(volumes.merge);
        assert_eq!(volumes.merge_key, Some("name"));
    }

    #[test]
    fn map_valued_fields_give_their_value_type_to_every_key() {
        let pod = schema_for_kind("", "v1", "Pod").unwrap();
        let (metadata, _) = pod.ty().field("metadata");
        let (labels, _) = metadata.unwrap().field("labels");
        let (value, meta) = labels.unwrap().field("anything");
        assert!(value.is_some());
        assert_eq!(meta, FieldMeta::default());
    }
}
